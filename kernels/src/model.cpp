#include "model.h"
#include "cpu/gemm.h"
#include "ops/attention.h"
#include "ops/crossentropy.h"
#include "ops/rmsnorm.h"
#include "ops/swiglu.h"
#include <cmath>
#include <cstring>

namespace flame {

using cpu::gemm;

ParamCounts count_params(const ModelConfig& m) {
  ParamCounts c;
  double h = m.hiddenSize, V = m.vocabSize;
  c.embedding = V * h; c.output = V * h;
  c.norms = h;  // final norm
  for (long l = 0; l < m.numLayers; l++) {
    c.attention += 4 * h * h;
    c.norms += 2 * h;
    if (m.moeLayers[l]) {
      double e1 = 3 * h * m.moeFfnHiddenSize;
      c.router += m.numExperts * h;
      c.experts += m.numExperts * e1;
      c.activeExperts += m.topK * e1;
      c.shared += 3 * h * m.sharedExpertSize;
    } else {
      c.dense += 3 * h * m.ffnHiddenSize;
    }
  }
  double common = c.embedding + c.output + c.norms + c.attention + c.dense + c.router + c.shared;
  c.total = common + c.experts;
  c.active = common + c.activeExperts;
  return c;
}

Model::Model(const ModelConfig& m) : cfg(m) {
  auto add = [&](const std::string& name, std::vector<long> shape, bool expert = false) {
    TensorInfo t; t.name = name; t.shape = shape; t.numel = 1;
    for (long s : shape) t.numel *= (size_t)s;
    t.offset = size; t.decay = shape.size() > 1; t.expert = expert;
    size += (t.numel + 15) / 16 * 16;
    tensors.push_back(t);
  };
  long h = m.hiddenSize;
  embIdx_ = tensors.size();
  add("embedding.weight", {m.vocabSize, h});
  for (long l = 0; l < m.numLayers; l++) {
    std::string p = "layers." + std::to_string(l) + ".";
    layerBase_.push_back(tensors.size());
    add(p + "attn_norm.weight", {h});
    add(p + "attn.qkv.weight", {3 * h, h});
    add(p + "attn.proj.weight", {h, h});
    add(p + "mlp_norm.weight", {h});
    if (m.moeLayers[l]) {
      moeLayerIds_.push_back((int)l);
      add(p + "moe.router.weight", {m.numExperts, h});
      add(p + "moe.experts.fc1.weight", {m.numExperts, 2 * m.moeFfnHiddenSize, h}, true);
      add(p + "moe.experts.fc2.weight", {m.numExperts, h, m.moeFfnHiddenSize}, true);
      if (m.sharedExpertSize > 0) {
        add(p + "moe.shared.fc1.weight", {2 * m.sharedExpertSize, h});
        add(p + "moe.shared.fc2.weight", {h, m.sharedExpertSize});
      }
    } else {
      add(p + "mlp.fc1.weight", {2 * m.ffnHiddenSize, h});
      add(p + "mlp.fc2.weight", {h, m.ffnHiddenSize});
    }
  }
  finalNormIdx_ = tensors.size();
  add("final_norm.weight", {h});
  outputIdx_ = tensors.size();
  add("output.weight", {m.vocabSize, h});
  params.assign(size, 0);
  grads.assign(size, 0);
  rope_.build((int)m.seqLength, (int)m.headDim(), m.ropeBase);
  acts_.layers.resize(m.numLayers);
}

const TensorInfo* Model::find(const std::string& name) const {
  for (auto& t : tensors) if (t.name == name) return &t;
  return nullptr;
}
real* Model::tensor(real* base, const std::string& name) const {
  const TensorInfo* t = find(name);
  return t ? base + t->offset : nullptr;
}

LayerPtrs Model::layer(real* base, int l) const {
  LayerPtrs p{}; size_t i = layerBase_[l];
  p.attn_norm = base + tensors[i].offset; p.qkv = base + tensors[i + 1].offset;
  p.proj = base + tensors[i + 2].offset; p.mlp_norm = base + tensors[i + 3].offset;
  if (cfg.moeLayers[l]) {
    p.router = base + tensors[i + 4].offset; p.efc1 = base + tensors[i + 5].offset; p.efc2 = base + tensors[i + 6].offset;
    if (cfg.sharedExpertSize > 0) { p.sfc1 = base + tensors[i + 7].offset; p.sfc2 = base + tensors[i + 8].offset; }
  } else {
    p.fc1 = base + tensors[i + 4].offset; p.fc2 = base + tensors[i + 5].offset;
  }
  return p;
}

// splitmix64 -> Box-Muller normals, one independent stream per tensor (seeded by the tensor
// name), so initialisation is independent of thread count and tensor order.
static uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull; z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
void Model::init(uint64_t seed) {
  double outStd = cfg.initStd / std::sqrt(2.0 * cfg.numLayers);
  for (auto& t : tensors) {
    real* p = params.data() + t.offset;
    if (!t.decay) { for (size_t i = 0; i < t.numel; i++) p[i] = 1; continue; }
    bool isOut = t.name.find("proj.weight") != std::string::npos || t.name.find("fc2.weight") != std::string::npos;
    double std = isOut ? outStd : cfg.initStd;
    uint64_t s = seed * 0x100000001B3ull;
    for (char c : t.name) s = (s ^ (uint8_t)c) * 0x100000001B3ull;
    for (size_t i = 0; i < t.numel; i += 2) {
      double u1 = ((splitmix(s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);  // (0, 1]
      double u2 = (splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
      double r = std::sqrt(-2.0 * std::log(u1));
      p[i] = (real)(std * r * std::cos(2 * M_PI * u2));
      if (i + 1 < t.numel) p[i + 1] = (real)(std * r * std::sin(2 * M_PI * u2));
    }
  }
}

void Model::zero_grad() {
  real* g = grads.data(); size_t n = size;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) g[i] = 0;
}

StepResult Model::step(const int32_t* inputs, const int32_t* targets, int B, int S, const StepOptions& opt) {
  const ModelConfig& m = cfg;
  const int T = B * S, h = (int)m.hiddenSize, H = (int)m.numAttentionHeads, d = (int)m.headDim();
  const int V = (int)m.vocabSize, L = (int)m.numLayers;
  if (S > m.seqLength) fail(EXIT_OTHER, "internal: sequence longer than seqLength");
  Acts& A = acts_;
  A.B = B; A.S = S;
  auto sz = [](std::vector<real>& v, size_t n) { if (v.size() != n) v.assign(n, 0); };
  StepResult res;

  // ---- forward ----
  sz(A.x_final, (size_t)T * h);
  const real* emb = params.data() + tensors[embIdx_].offset;
  for (int l = 0; l < L; l++) sz(A.layers[l].x_in, (size_t)T * h);
  {
    real* x0 = A.layers[0].x_in.data();
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) memcpy(x0 + (size_t)t * h, emb + (size_t)inputs[t] * h, h * sizeof(real));
  }
  for (int l = 0; l < L; l++) {
    LayerActs& a = A.layers[l];
    LayerPtrs w = layer(params.data(), l);
    sz(a.rstd1, T); sz(a.xn1, (size_t)T * h); sz(a.qkv, (size_t)T * 3 * h); sz(a.att, (size_t)T * h);
    sz(a.lse, (size_t)B * H * S); sz(a.x_mid, (size_t)T * h); sz(a.rstd2, T); sz(a.xn2, (size_t)T * h);
    rmsnorm_forward(a.xn1.data(), a.rstd1.data(), a.x_in.data(), w.attn_norm, T, h, m.normEps);
    gemm<real>(false, true, T, 3 * h, h, a.xn1.data(), h, w.qkv, h, a.qkv.data(), 3 * h, false);
    rope_forward(a.qkv.data(), B, S, 3 * h, 0, H, d, rope_);
    rope_forward(a.qkv.data(), B, S, 3 * h, h, H, d, rope_);
    cpu::attention_forward(a.att.data(), a.lse.data(), a.qkv.data(), B, S, H, d);
    // x_mid = x_in + att W_proj^T
    memcpy(a.x_mid.data(), a.x_in.data(), (size_t)T * h * sizeof(real));
    gemm<real>(false, true, T, h, h, a.att.data(), h, w.proj, h, a.x_mid.data(), h, true);
    rmsnorm_forward(a.xn2.data(), a.rstd2.data(), a.x_mid.data(), w.mlp_norm, T, h, m.normEps);
    real* xout = l + 1 < L ? A.layers[l + 1].x_in.data() : A.x_final.data();
    sz(A.tmp, (size_t)T * h);
    if (!m.moeLayers[l]) {
      int F = (int)m.ffnHiddenSize;
      sz(a.h1, (size_t)T * 2 * F); sz(a.act, (size_t)T * F);
      gemm<real>(false, true, T, 2 * F, h, a.xn2.data(), h, w.fc1, h, a.h1.data(), 2 * F, false);
      swiglu_forward(a.act.data(), a.h1.data(), T, F);
      gemm<real>(false, true, T, h, F, a.act.data(), F, w.fc2, F, A.tmp.data(), h, false);
    } else {
      MoeWeights mw{w.router, w.efc1, w.efc2, w.sfc1, w.sfc2};
      MoeDims md{T, h, (int)m.numExperts, (int)m.topK, (int)m.moeFfnHiddenSize, (int)m.sharedExpertSize, m.auxLossCoeff, m.zLossCoeff};
      cpu::moe_forward(A.tmp.data(), a.moe, a.xn2.data(), mw, md);
      res.aux += a.moe.losses.aux; res.z += a.moe.losses.z;
      res.counts.push_back(a.moe.counts);
    }
    const real* xm = a.x_mid.data(); const real* tp = A.tmp.data();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < (size_t)T * h; i++) xout[i] = xm[i] + tp[i];
  }
  sz(A.rstdf, T); sz(A.xnf, (size_t)T * h);
  const real* wf = params.data() + tensors[finalNormIdx_].offset;
  const real* wout = params.data() + tensors[outputIdx_].offset;
  rmsnorm_forward(A.xnf.data(), A.rstdf.data(), A.x_final.data(), wf, T, h, m.normEps);

  // ---- output layer + cross-entropy, fused with their backward, in token chunks so the
  // [T, V] logits never exist at once ----
  const int CH = 192;
  if (A.logits.size() < (size_t)CH * V) A.logits.assign((size_t)CH * V, 0);
  if (opt.grad) sz(A.dxnf, (size_t)T * h);
  real* gout = grads.data() + tensors[outputIdx_].offset;
  std::vector<double> rowLoss(T);
  for (int t0 = 0; t0 < T; t0 += CH) {
    int n = std::min(CH, T - t0);
    real* lg = A.logits.data();
    gemm<real>(false, true, n, V, h, A.xnf.data() + (size_t)t0 * h, h, wout, h, lg, V, false);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
      int am = 0;
      int tgt = targets[t0 + i];
      rowLoss[t0 + i] = crossentropy_row(lg + (size_t)i * V, V, tgt, (real)opt.lmScale, opt.grad, &am);
      if (opt.tokenArgmax) opt.tokenArgmax[t0 + i] = am;
    }
    if (opt.grad) {
      gemm<real>(false, false, n, h, V, lg, V, wout, h, A.dxnf.data() + (size_t)t0 * h, h, false);
      gemm<real>(true, false, V, h, n, lg, V, A.xnf.data() + (size_t)t0 * h, h, gout, h, true);
    }
  }
  for (int t = 0; t < T; t++) { res.lmLossSum += rowLoss[t]; if (opt.tokenLoss) opt.tokenLoss[t] = rowLoss[t]; }
  if (!opt.grad) return res;

  // ---- backward ----
  sz(A.dres, (size_t)T * h); sz(A.dxn, (size_t)T * h); sz(A.tmp2, (size_t)T * 3 * h);
  std::fill(A.dres.begin(), A.dres.end(), 0);
  rmsnorm_backward(A.dres.data(), grads.data() + tensors[finalNormIdx_].offset, A.dxnf.data(), A.x_final.data(), wf, A.rstdf.data(), T, h);
  for (int l = L - 1; l >= 0; l--) {
    LayerActs& a = A.layers[l];
    LayerPtrs w = layer(params.data(), l), g = layer(grads.data(), l);
    // MLP: dres is d(x_out) = d(mlp_out); dxn = d(xn2)
    std::fill(A.dxn.begin(), A.dxn.end(), 0);
    if (!m.moeLayers[l]) {
      int F = (int)m.ffnHiddenSize;
      a.dact.resize((size_t)T * F); a.dh1.resize((size_t)T * 2 * F);
      std::vector<real>& dact = a.dact; std::vector<real>& dh1 = a.dh1;
      gemm<real>(false, false, T, F, h, A.dres.data(), h, w.fc2, F, dact.data(), F, false);
      gemm<real>(true, false, h, F, T, A.dres.data(), h, a.act.data(), F, g.fc2, F, true);
      swiglu_backward(dh1.data(), dact.data(), a.h1.data(), T, F);
      gemm<real>(true, false, 2 * F, h, T, dh1.data(), 2 * F, a.xn2.data(), h, g.fc1, h, true);
      gemm<real>(false, false, T, h, 2 * F, dh1.data(), 2 * F, w.fc1, h, A.dxn.data(), h, false);
    } else {
      MoeWeights mw{w.router, w.efc1, w.efc2, w.sfc1, w.sfc2};
      MoeGrads mg{g.router, g.efc1, g.efc2, g.sfc1, g.sfc2};
      MoeDims md{T, h, (int)m.numExperts, (int)m.topK, (int)m.moeFfnHiddenSize, (int)m.sharedExpertSize, m.auxLossCoeff, m.zLossCoeff};
      cpu::moe_backward(A.dxn.data(), mg, A.dres.data(), a.xn2.data(), mw, a.moe, md, opt.auxScale);
    }
    rmsnorm_backward(A.dres.data(), g.mlp_norm, A.dxn.data(), a.x_mid.data(), w.mlp_norm, a.rstd2.data(), T, h);
    // attention: dres is now d(x_mid)
    real* datt = A.tmp.data();
    gemm<real>(false, false, T, h, h, A.dres.data(), h, w.proj, h, datt, h, false);
    gemm<real>(true, false, h, h, T, A.dres.data(), h, a.att.data(), h, g.proj, h, true);
    real* dqkv = A.tmp2.data();
    cpu::attention_backward(dqkv, datt, a.qkv.data(), a.att.data(), a.lse.data(), B, S, H, d);
    rope_backward(dqkv, B, S, 3 * h, 0, H, d, rope_);
    rope_backward(dqkv, B, S, 3 * h, h, H, d, rope_);
    gemm<real>(true, false, 3 * h, h, T, dqkv, 3 * h, a.xn1.data(), h, g.qkv, h, true);
    gemm<real>(false, false, T, h, 3 * h, dqkv, 3 * h, w.qkv, h, A.dxn.data(), h, false);
    rmsnorm_backward(A.dres.data(), g.attn_norm, A.dxn.data(), a.x_in.data(), w.attn_norm, a.rstd1.data(), T, h);
  }
  // embedding: rows summed in token order (fixed order -> deterministic)
  real* gemb = grads.data() + tensors[embIdx_].offset;
  for (int t = 0; t < T; t++) {
    real* ge = gemb + (size_t)inputs[t] * h; const real* dr = A.dres.data() + (size_t)t * h;
    for (int c = 0; c < h; c++) ge[c] += dr[c];
  }
  return res;
}

}  // namespace flame
