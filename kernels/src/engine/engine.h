// The compute backend behind the commands. train / eval / trace talk to an Engine; the host-side
// Model (tensor table, flat fp32 parameters) and Optimizer (Adam moments) remain the canonical
// state that checkpoints are written from and loaded into, so a checkpoint does not know which
// backend wrote it.
//
//   CPU engine  (engine/cpu.cpp): works on Model::params / grads in place; upload / download are no-ops.
//   CUDA engine (cuda/engine.cu): keeps fp32 master weights, gradients and moments on the GPU;
//                                 upload / download copy them to and from the host mirrors.
#pragma once
#include <memory>
#include <string>
#include <vector>
#include "checkpoint.h"
#include "config.h"
#include "model.h"

namespace flame {

class Engine {
 public:
  virtual ~Engine() = default;
  virtual std::string describe() const = 0;  // e.g. "cpu (2 threads)", "cuda (NVIDIA H100, bf16)"
  // Host mirrors -> engine (after init or checkpoint load); opt may be null (eval / trace).
  virtual void upload(const Model& model, const Optimizer* opt) = 0;
  // Engine -> host mirrors (before a checkpoint is written).
  virtual void download(Model& model, Optimizer* opt) = 0;
  virtual void zero_grad() = 0;
  // One micro-batch, as Model::step (gradients are added to the accumulated ones).
  virtual StepResult step(const int32_t* inputs, const int32_t* targets, int B, int S, const StepOptions& opt) = 0;
  // L2 norm of all gradients, reduced in a fixed order (independent of threads / launch shape).
  virtual double grad_norm() = 0;
  // Scales the gradients by clipCoeff when it is < 1, then one AdamW step at lr with bias
  // correction for step `adamStep` (already incremented).
  virtual void optimizer_step(double lr, double clipCoeff, const TrainConfig& tc, long adamStep) = 0;
  // The accumulated gradients in Model::params layout (tests, audits).
  virtual void download_grads(std::vector<real>& g) = 0;
  // Top-k expert ids and gates of MoE layer j (in layer order) from the last step, [B*S*k].
  virtual void routing(int j, std::vector<int32_t>& idx, std::vector<float>& gate) = 0;
};

// The engine for cfg.runtime.backend ("cpu", "cuda" or "auto"). opt is the host optimizer state
// the CPU engine updates in place (null for eval / trace).
std::unique_ptr<Engine> make_engine(const Config& cfg, Model& model, Optimizer* opt);

// Set by the CUDA objects at static-initialisation time in the binaries that contain them
// (flame-worker-cuda); null in the CPU-only flame-worker.
struct CudaBackend {
  // Why the CUDA backend cannot run with this config (no device, no cuBLAS), or "" when it can.
  std::string (*unavailable)(const Config& cfg);
  std::unique_ptr<Engine> (*create)(const Config& cfg, Model& model);
  // For `flame-worker version`: CUDA runtime / driver versions, compiled architectures, devices.
  Json (*version)();
};
extern const CudaBackend* g_cuda_backend;

}  // namespace flame
