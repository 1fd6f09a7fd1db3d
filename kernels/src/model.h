// The decoder-only MoE transformer: parameters (one flat buffer, named tensors), activations,
// forward + backward for one micro-batch.
//
//   x = embedding[tokens]
//   per layer l: x = x + proj(attn(rope(qkv(rmsnorm(x)))));  x = x + mlp_l(rmsnorm(x))
//     mlp_l = dense SwiGLU (ffnHiddenSize) or MoE (ops/moe.h), chosen by model.moeLayers[l]
//   logits = output(rmsnorm(x)) (untied);  loss = mean cross-entropy (+ aux and z per MoE layer)
#pragma once
#include <string>
#include <vector>
#include "config.h"
#include "ops/moe.h"
#include "ops/rope.h"

namespace flame {

struct TensorInfo {
  std::string name;
  std::vector<long> shape;
  size_t offset = 0, numel = 0;  // into the flat buffer (offsets 16-element aligned)
  bool decay = true;             // weight decay applies (false for 1-D tensors)
  bool expert = false;           // routed-expert weights: only topK/numExperts of them are active
};

struct ParamCounts { double total = 0, active = 0, embedding = 0, output = 0, attention = 0, norms = 0, dense = 0, router = 0, experts = 0, activeExperts = 0, shared = 0; };
ParamCounts count_params(const ModelConfig& m);

struct LayerPtrs { real *attn_norm, *qkv, *proj, *mlp_norm, *fc1, *fc2, *router, *efc1, *efc2, *sfc1, *sfc2; };

struct StepOptions {
  bool grad = false;
  double lmScale = 0;        // gradient scale of the summed token cross-entropy (1 / tokens)
  double auxScale = 1;       // gradient scale of the aux + z losses (1 / micro-batches)
  double* tokenLoss = nullptr;   // optional out [B*S]: -log p(target)
  int32_t* tokenArgmax = nullptr;  // optional out [B*S]
  bool keepRouting = false;  // (activations are always kept; flag reserved)
};
struct StepResult {
  double lmLossSum = 0;      // sum over tokens of -log p
  double aux = 0, z = 0;     // summed over MoE layers (unscaled by auxScale)
  std::vector<std::vector<int32_t>> counts;  // per MoE layer (in layer order) tokens per expert
};

class Model {
 public:
  explicit Model(const ModelConfig& cfg);
  const ModelConfig cfg;
  std::vector<TensorInfo> tensors;
  size_t size = 0;  // flat buffer length
  std::vector<real> params, grads;

  void init(uint64_t seed);  // N(0, initStd); output projections initStd / sqrt(2 L); norms 1
  LayerPtrs layer(real* base, int l) const;
  real* tensor(real* base, const std::string& name) const;
  const TensorInfo* find(const std::string& name) const;

  // One micro-batch of B sequences of S <= seqLength tokens. With opt.grad the gradients are
  // ADDED to `grads` (gradient accumulation); call zero_grad() per iteration.
  StepResult step(const int32_t* inputs, const int32_t* targets, int B, int S, const StepOptions& opt);
  void zero_grad();

  // Routing of the last step (valid after step()): per MoE layer index j (in layer order).
  const cpu::MoeActs& routing(int j) const { return acts_.layers[moeLayerIds_[j]].moe; }
  const std::vector<int>& moeLayerIds() const { return moeLayerIds_; }

 private:
  struct LayerActs {
    std::vector<real> x_in, rstd1, xn1, qkv, att, lse, x_mid, rstd2, xn2, h1, act, dact, dh1;
    cpu::MoeActs moe;
  };
  struct Acts {
    int B = 0, S = 0;
    std::vector<LayerActs> layers;
    std::vector<real> x_final, rstdf, xnf, dxnf, logits, dres, dxn, tmp, tmp2;
  } acts_;
  std::vector<int> moeLayerIds_;
  RopeTable rope_;
  std::vector<size_t> layerBase_;  // index into tensors of each layer's first tensor
  size_t outputIdx_ = 0, embIdx_ = 0, finalNormIdx_ = 0;
};

}  // namespace flame
