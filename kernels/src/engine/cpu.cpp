// The CPU engine: Model::step and the fp32 AdamW reference on the host buffers, in place.
#include "engine/engine.h"
#include "ops/adamw.h"
#include "protocol.h"
#include <algorithm>
#include <cmath>
#include <omp.h>

namespace flame {

namespace {

// Sum of squares in double over fixed 4096-element chunks, chunks combined in order: the result is
// independent of the thread count.
double grad_norm_fixed(const std::vector<real>& g) {
  const size_t CH = 4096, n = g.size(), nc = (n + CH - 1) / CH;
  std::vector<double> part(nc);
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < nc; c++) {
    double s = 0; size_t e = std::min(n, (c + 1) * CH);
    for (size_t i = c * CH; i < e; i++) s += (double)g[i] * g[i];
    part[c] = s;
  }
  double s = 0; for (double p : part) s += p;
  return std::sqrt(s);
}

class CpuEngine : public Engine {
 public:
  CpuEngine(Model& m, Optimizer* o) : model_(m), opt_(o) {}
  std::string describe() const override { return "cpu (" + std::to_string(omp_get_max_threads()) + " threads, fp32)"; }
  void upload(const Model&, const Optimizer*) override {}
  void download(Model&, Optimizer*) override {}
  void zero_grad() override { model_.zero_grad(); }
  StepResult step(const int32_t* in, const int32_t* tg, int B, int S, const StepOptions& o) override { return model_.step(in, tg, B, S, o); }
  double grad_norm() override { return grad_norm_fixed(model_.grads); }
  void optimizer_step(double lr, double coeff, const TrainConfig& tc, long adamStep) override {
    if (!opt_) fail(EXIT_OTHER, "internal: optimizer step without optimizer state");
    if (coeff < 1.0) { real c = (real)coeff; for (auto& g : model_.grads) g *= c; }
    for (auto& t : model_.tensors)
      adamw_update(model_.params.data() + t.offset, model_.grads.data() + t.offset, opt_->m.data() + t.offset, opt_->v.data() + t.offset,
                   t.numel, lr, tc.beta1, tc.beta2, tc.eps, t.decay ? tc.weightDecay : 0.0, adamStep);
  }
  void download_grads(std::vector<real>& g) override { g = model_.grads; }
  void routing(int j, std::vector<int32_t>& idx, std::vector<float>& gate) override {
    const cpu::MoeActs& a = model_.routing(j);
    idx.assign(a.idx.begin(), a.idx.end());
    gate.assign(a.gate.begin(), a.gate.end());
  }

 private:
  Model& model_;
  Optimizer* opt_;
};

}  // namespace

const CudaBackend* g_cuda_backend = nullptr;

std::unique_ptr<Engine> make_engine(const Config& cfg, Model& model, Optimizer* opt) {
  const std::string& b = cfg.runtime.backend;
  if (b == "cuda" || b == "auto") {
    std::string why = g_cuda_backend ? g_cuda_backend->unavailable(cfg)
                                     : "this flame-worker binary was built without the CUDA backend and no flame-worker-cuda was found next "
                                       "to it (build it with `make -C kernels cuda`, which needs nvcc)";
    if (why.empty()) return g_cuda_backend->create(cfg, model);
    if (b == "cuda") fail(EXIT_CONFIG, "config.runtime.backend: \"cuda\" cannot run: " + why);
    proto::log("info", "runtime.backend auto: using the CPU (" + why + ")");
  }
  return std::unique_ptr<Engine>(new CpuEngine(model, opt));
}

}  // namespace flame
