// The CUDA engine: Model::step (src/model.cpp) on the GPU, operation for operation, plus the
// optimizer. Mixed precision as Megatron trains FLAME-MoE: fp32 master weights, gradients, Adam
// moments and residual stream; GEMM operands and saved activations in T (bf16, or fp32 for the
// parity path) with fp32 accumulation; the router (logits, softmax, top-k, aux and z) in fp32 from
// the fp32 master router weights. After every optimizer step the weights are rounded to a bf16
// copy that the GEMMs read.
//
// Synchronisation: each MoE layer copies its top-k ids to the host (the expert permutation is
// built there by the same code as the CPU's, ops/permute.h, and the per-expert GEMM sizes must be
// known on the host anyway); the step's losses come back at its end. Everything else is queued on
// one stream.
#include "cuda/engine.h"
#include "cuda/common.cuh"
#include "cuda/gemm.h"
#include "cuda/kernels.h"
#include "ops/permute.h"
#include "protocol.h"
#include <algorithm>
#include <cmath>
#include <type_traits>

#ifndef FLAME_CUDA_ARCHS
#define FLAME_CUDA_ARCHS ""
#endif

namespace flame { namespace cuda {

namespace {

template <typename T>
class CudaEngine final : public Engine {
 public:
  CudaEngine(const Config& cfg, Model& model);
  ~CudaEngine() override {
    blas_.reset();
    if (st_) cudaStreamDestroy(st_);
  }
  std::string describe() const override;
  void upload(const Model& model, const Optimizer* opt) override;
  void download(Model& model, Optimizer* opt) override;
  void zero_grad() override;
  StepResult step(const int32_t* inputs, const int32_t* targets, int B, int S, const StepOptions& opt) override;
  double grad_norm() override;
  void optimizer_step(double lr, double clipCoeff, const TrainConfig& tc, long adamStep) override;
  void routing(int j, std::vector<int32_t>& idx, std::vector<float>& gate) override;
  void download_grads(std::vector<real>& out) override {
    out.assign(model_.size, 0);
    if (!gradsReady_) return;
    CUDA_CHECK(cudaMemcpyAsync(out.data(), grads_.get(), model_.size * 4, cudaMemcpyDeviceToHost, st_));
    sync();
  }

 private:
  static constexpr bool kF32 = std::is_same<T, float>::value;
  struct Off { size_t attn_norm = 0, qkv = 0, proj = 0, mlp_norm = 0, fc1 = 0, fc2 = 0, router = 0, efc1 = 0, efc2 = 0, sfc1 = 0, sfc2 = 0; };
  struct MoeBufs {
    DeviceBuffer<float> xr, logits, probs, lse, gate, shout;
    DeviceBuffer<int32_t> idx, rowTok, tokRow, counts;
    DeviceBuffer<T> xg, h1, act, y, sh1, sact;
    std::vector<int32_t> hIdx, hCounts, hOffsets, hRowTok, hTokRow;
  };
  struct LayerBufs {
    DeviceBuffer<float> x_in, rstd1, lse, x_mid, rstd2;
    DeviceBuffer<T> xn1, qkv, att, xn2, h1, act;
    MoeBufs moe;
  };

  const T* w(size_t off) const {
    if constexpr (kF32) return params_.get() + off; else return wbf_.get() + off;
  }
  float* g(size_t off) { return grads_.get() + off; }
  const float* p32(size_t off) const { return params_.get() + off; }
  template <typename TA, typename TB, typename TC>
  void mm(bool ta, bool tb, int M, int N, int K, const TA* A, int lda, const TB* B, int ldb, TC* C, int ldc, bool acc) {
    blas_->gemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, acc);
  }
  template <typename TA, typename TB, typename TC>
  void mm_batch(bool ta, bool tb, const std::vector<Blas::Desc>& ds, bool acc) {
    blas_->gemm_batch(ta, tb, ds, DTypeOf<TA>::value, DTypeOf<TB>::value, DTypeOf<TC>::value, acc);
  }
  // T view of an fp32 gradient (a copy in bf16 mode, the buffer itself in fp32 mode)
  const T* as_t(const float* x, DeviceBuffer<T>& buf, size_t n) {
    if constexpr (kF32) { (void)buf; (void)n; return x; }
    else { convert<float, T>(buf.ensure(n), x, n, st_); return buf.get(); }
  }
  void moe_forward(LayerBufs& a, const Off& o, float* xout, int T_, StepResult& res);
  void moe_backward(LayerBufs& a, const Off& o, const T* dresT, int T_, double lossScale);
  void attention_forward(LayerBufs& a, int B, int S);
  void attention_backward(LayerBufs& a, const T* datt, int B, int S);
  void sync() { CUDA_CHECK(cudaStreamSynchronize(st_)); }

  const ModelConfig mc_;
  const RuntimeConfig rt_;
  const Model& model_;
  std::vector<Off> off_;
  size_t emb_ = 0, out_ = 0, fnorm_ = 0;
  std::vector<int> moeIds_;
  cudaStream_t st_ = nullptr;
  std::unique_ptr<Blas> blas_;
  std::string deviceName_;

  DeviceBuffer<float> params_, grads_, m1_, m2_, cos_, sin_;
  DeviceBuffer<bf16> wbf_;
  bool gradsReady_ = false, momentsReady_ = false;
  std::vector<std::unique_ptr<LayerBufs>> L_;
  DeviceBuffer<float> xFinal_, rstdf_, tmpf_, dres_, dxn_, dxnf_, logits_, normPartial_, rowdot_, attnP_, dlogitsR_, dgate_;
  DeviceBuffer<T> xnf_, dresT_, datt_, dqkv_, dl_, dact_, dh1_, dy_, dxg_, dsa_, dsh_;
  DeviceBuffer<double> rowLoss_, red_, partial_;
  DeviceBuffer<int32_t> in_, tg_, argmax_, embIds_, embStart_, embPos_;
  std::vector<int32_t> hInputs_;
};

template <typename T>
CudaEngine<T>::CudaEngine(const Config& cfg, Model& model) : mc_(cfg.model), rt_(cfg.runtime), model_(model) {
  std::string why = unavailable(cfg);
  if (!why.empty()) fail(EXIT_CONFIG, "config.runtime.backend: \"cuda\" cannot run: " + why);
  if (rt_.attention == "flash" && !flash_supports((int)mc_.headDim()))
    fail(EXIT_CONFIG, "config.runtime.attention: \"flash\" supports head dimensions up to 128, the model has " + std::to_string(mc_.headDim()));
  auto at = [&](const std::string& n) {
    const TensorInfo* t = model.find(n);
    if (!t) fail(EXIT_OTHER, "internal: tensor " + n + " missing");
    return t->offset;
  };
  emb_ = at("embedding.weight"); out_ = at("output.weight"); fnorm_ = at("final_norm.weight");
  for (long l = 0; l < mc_.numLayers; l++) {
    std::string p = "layers." + std::to_string(l) + ".";
    Off o;
    o.attn_norm = at(p + "attn_norm.weight"); o.qkv = at(p + "attn.qkv.weight"); o.proj = at(p + "attn.proj.weight");
    o.mlp_norm = at(p + "mlp_norm.weight");
    if (mc_.moeLayers[l]) {
      moeIds_.push_back((int)l);
      o.router = at(p + "moe.router.weight"); o.efc1 = at(p + "moe.experts.fc1.weight"); o.efc2 = at(p + "moe.experts.fc2.weight");
      if (mc_.sharedExpertSize > 0) { o.sfc1 = at(p + "moe.shared.fc1.weight"); o.sfc2 = at(p + "moe.shared.fc2.weight"); }
    } else {
      o.fc1 = at(p + "mlp.fc1.weight"); o.fc2 = at(p + "mlp.fc2.weight");
    }
    off_.push_back(o);
    L_.emplace_back(new LayerBufs());
  }
  CUDA_CHECK(cudaSetDevice(0));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  deviceName_ = prop.name;
  CUDA_CHECK(cudaStreamCreateWithFlags(&st_, cudaStreamNonBlocking));
  blas_.reset(new Blas(st_));
  // RoPE angles from the same host table as the CPU (fp32 angles, as Megatron)
  RopeTable rope;
  rope.build((int)mc_.seqLength, (int)mc_.headDim(), mc_.ropeBase);
  CUDA_CHECK(cudaMemcpyAsync(cos_.ensure(rope.cos.size()), rope.cos.data(), rope.cos.size() * 4, cudaMemcpyHostToDevice, st_));
  CUDA_CHECK(cudaMemcpyAsync(sin_.ensure(rope.sin.size()), rope.sin.data(), rope.sin.size() * 4, cudaMemcpyHostToDevice, st_));
  params_.ensure(model.size);
  if constexpr (!kF32) wbf_.ensure(model.size);
  sync();
}

template <typename T>
std::string CudaEngine<T>::describe() const {
  return "cuda (" + deviceName_ + ", " + (kF32 ? "fp32" : "bf16") + ", " + rt_.attention + " attention" +
         (rt_.deterministic ? ", deterministic" : "") + ", cuBLAS " + Blas::loadedPath() + ")";
}

template <typename T>
void CudaEngine<T>::upload(const Model& model, const Optimizer* opt) {
  static_assert(sizeof(real) == 4, "the CUDA engine is built with real = float");
  const size_t n = model.size;
  CUDA_CHECK(cudaMemcpyAsync(params_.get(), model.params.data(), n * 4, cudaMemcpyHostToDevice, st_));
  if constexpr (!kF32) convert<float, bf16>(wbf_.get(), params_.get(), n, st_);
  if (opt) {
    CUDA_CHECK(cudaMemcpyAsync(m1_.ensure(n), opt->m.data(), n * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(m2_.ensure(n), opt->v.data(), n * 4, cudaMemcpyHostToDevice, st_));
    momentsReady_ = true;
  }
  sync();
}

template <typename T>
void CudaEngine<T>::download(Model& model, Optimizer* opt) {
  const size_t n = model.size;
  CUDA_CHECK(cudaMemcpyAsync(model.params.data(), params_.get(), n * 4, cudaMemcpyDeviceToHost, st_));
  if (opt && momentsReady_) {
    opt->m.resize(n); opt->v.resize(n);
    CUDA_CHECK(cudaMemcpyAsync(opt->m.data(), m1_.get(), n * 4, cudaMemcpyDeviceToHost, st_));
    CUDA_CHECK(cudaMemcpyAsync(opt->v.data(), m2_.get(), n * 4, cudaMemcpyDeviceToHost, st_));
  }
  sync();
}

template <typename T>
void CudaEngine<T>::zero_grad() {
  CUDA_CHECK(cudaMemsetAsync(grads_.ensure(model_.size), 0, model_.size * 4, st_));
  gradsReady_ = true;
}

template <typename T>
void CudaEngine<T>::attention_forward(LayerBufs& a, int B, int S) {
  const int H = (int)mc_.numAttentionHeads, d = (int)mc_.headDim();
  if (rt_.attention == "flash") attention_forward_flash<T>(a.att.get(), a.lse.get(), a.qkv.get(), B, S, H, d, st_);
  else attention_forward_plain<T>(a.att.get(), a.lse.get(), attnP_.ensure((size_t)2 * B * H * S * S), a.qkv.get(), B, S, H, d, st_);
}
template <typename T>
void CudaEngine<T>::attention_backward(LayerBufs& a, const T* datt, int B, int S) {
  const int H = (int)mc_.numAttentionHeads, d = (int)mc_.headDim();
  if (rt_.attention == "flash")
    attention_backward_flash<T>(dqkv_.get(), rowdot_.ensure((size_t)B * H * S), datt, a.qkv.get(), a.att.get(), a.lse.get(), B, S, H, d, st_);
  else attention_backward_plain<T>(dqkv_.get(), attnP_.ensure((size_t)2 * B * H * S * S), datt, a.qkv.get(), B, S, H, d, st_);
}

template <typename T>
void CudaEngine<T>::moe_forward(LayerBufs& a, const Off& o, float* xout, int T_, StepResult& res) {
  MoeBufs& b = a.moe;
  const int h = (int)mc_.hiddenSize, E = (int)mc_.numExperts, k = (int)mc_.topK, f = (int)mc_.moeFfnHiddenSize, s = (int)mc_.sharedExpertSize;
  const int Tk = T_ * k;
  // router in fp32: logits = xn2 W_r^T from the fp32 master weights
  const float* xr;
  if constexpr (kF32) xr = a.xn2.get();
  else { convert<T, float>(b.xr.ensure((size_t)T_ * h), a.xn2.get(), (size_t)T_ * h, st_); xr = b.xr.get(); }
  mm(false, true, T_, E, h, xr, h, p32(o.router), h, b.logits.ensure((size_t)T_ * E), E, false);
  router_forward(b.logits.get(), b.probs.ensure((size_t)T_ * E), b.lse.ensure(T_), b.idx.ensure(Tk), b.gate.ensure(Tk), T_, E, k, st_);
  router_sums(red_.ensure(E + 1), partial_.ensure((size_t)router_partial_rows(T_) * (E + 1)), b.probs.get(), b.lse.get(), T_, E, st_);
  b.hIdx.resize(Tk);
  std::vector<double> sums(E + 1);
  CUDA_CHECK(cudaMemcpyAsync(b.hIdx.data(), b.idx.get(), (size_t)Tk * 4, cudaMemcpyDeviceToHost, st_));
  CUDA_CHECK(cudaMemcpyAsync(sums.data(), red_.get(), (size_t)(E + 1) * 8, cudaMemcpyDeviceToHost, st_));
  sync();
  b.hCounts.resize(E); b.hOffsets.resize(E + 1); b.hRowTok.resize(Tk); b.hTokRow.resize(Tk);
  build_expert_permutation(b.hIdx.data(), T_, k, E, b.hCounts.data(), b.hOffsets.data(), b.hRowTok.data(), b.hTokRow.data());
  double aa = 0;
  for (int e = 0; e < E; e++) aa += sums[e] * b.hCounts[e];
  const double aux = mc_.auxLossCoeff * E / ((double)T_ * T_ * k) * aa, z = mc_.zLossCoeff * sums[E] / T_;
  res.aux += aux; res.z += z;
  res.counts.push_back(b.hCounts);
  CUDA_CHECK(cudaMemcpyAsync(b.rowTok.ensure(Tk), b.hRowTok.data(), (size_t)Tk * 4, cudaMemcpyHostToDevice, st_));
  CUDA_CHECK(cudaMemcpyAsync(b.tokRow.ensure(Tk), b.hTokRow.data(), (size_t)Tk * 4, cudaMemcpyHostToDevice, st_));
  CUDA_CHECK(cudaMemcpyAsync(b.counts.ensure(E), b.hCounts.data(), (size_t)E * 4, cudaMemcpyHostToDevice, st_));
  // experts: gather rows by expert, one GEMM pair per expert
  T* xg = b.xg.ensure((size_t)Tk * h);
  T* h1 = b.h1.ensure((size_t)Tk * 2 * f);
  T* act = b.act.ensure((size_t)Tk * f);
  T* y = b.y.ensure((size_t)Tk * h);
  permute_rows<T>(xg, a.xn2.get(), b.rowTok.get(), Tk, h, st_);
  std::vector<Blas::Desc> fc1, fc2;
  for (int e = 0; e < E; e++) {
    const int r0 = b.hOffsets[e], n = b.hCounts[e];
    if (!n) continue;
    fc1.push_back({n, 2 * f, h, xg + (size_t)r0 * h, h, w(o.efc1) + (size_t)e * 2 * f * h, h, h1 + (size_t)r0 * 2 * f, 2 * f});
    fc2.push_back({n, h, f, act + (size_t)r0 * f, f, w(o.efc2) + (size_t)e * h * f, f, y + (size_t)r0 * h, h});
  }
  mm_batch<T, T, T>(false, true, fc1, false);
  swiglu_forward<T>(act, h1, Tk, f, st_);
  mm_batch<T, T, T>(false, true, fc2, false);
  const float* shared = nullptr;
  if (s > 0) {
    T* sh1 = b.sh1.ensure((size_t)T_ * 2 * s);
    T* sact = b.sact.ensure((size_t)T_ * s);
    mm(false, true, T_, 2 * s, h, a.xn2.get(), h, w(o.sfc1), h, sh1, 2 * s, false);
    swiglu_forward<T>(sact, sh1, T_, s, st_);
    mm(false, true, T_, h, s, sact, s, w(o.sfc2), s, b.shout.ensure((size_t)T_ * h), h, false);
    shared = b.shout.get();
  }
  combine_residual<T>(xout, a.x_mid.get(), y, b.gate.get(), b.tokRow.get(), shared, T_, k, h, st_);
}

template <typename T>
void CudaEngine<T>::moe_backward(LayerBufs& a, const Off& o, const T* dresT, int T_, double lossScale) {
  MoeBufs& b = a.moe;
  const int h = (int)mc_.hiddenSize, E = (int)mc_.numExperts, k = (int)mc_.topK, f = (int)mc_.moeFfnHiddenSize, s = (int)mc_.sharedExpertSize;
  const int Tk = T_ * k;
  float* dxn = dxn_.get();
  if (s > 0) {
    T* dsa = dsa_.ensure((size_t)T_ * s);
    T* dsh = dsh_.ensure((size_t)T_ * 2 * s);
    mm(false, false, T_, s, h, dresT, h, w(o.sfc2), s, dsa, s, false);
    mm(true, false, h, s, T_, dresT, h, b.sact.get(), s, g(o.sfc2), s, true);
    swiglu_backward<T>(dsh, dsa, b.sh1.get(), T_, s, st_);
    mm(true, false, 2 * s, h, T_, dsh, 2 * s, a.xn2.get(), h, g(o.sfc1), h, true);
    mm(false, false, T_, h, 2 * s, dsh, 2 * s, w(o.sfc1), h, dxn, h, true);
  }
  T* dy = dy_.ensure((size_t)Tk * h);
  gate_backward<T>(dgate_.ensure(Tk), dy, dres_.get(), b.y.get(), b.gate.get(), b.tokRow.get(), T_, k, h, st_);
  T* dact = dact_.ensure((size_t)Tk * f);
  T* dh1 = dh1_.ensure((size_t)Tk * 2 * f);
  T* dxg = dxg_.ensure((size_t)Tk * h);
  std::vector<Blas::Desc> dAct, gW2, gW1, dX;
  for (int e = 0; e < E; e++) {
    const int r0 = b.hOffsets[e], n = b.hCounts[e];
    if (!n) continue;
    dAct.push_back({n, f, h, dy + (size_t)r0 * h, h, w(o.efc2) + (size_t)e * h * f, f, dact + (size_t)r0 * f, f});
    gW2.push_back({h, f, n, dy + (size_t)r0 * h, h, b.act.get() + (size_t)r0 * f, f, g(o.efc2) + (size_t)e * h * f, f});
    gW1.push_back({2 * f, h, n, dh1 + (size_t)r0 * 2 * f, 2 * f, b.xg.get() + (size_t)r0 * h, h, g(o.efc1) + (size_t)e * 2 * f * h, h});
    dX.push_back({n, h, 2 * f, dh1 + (size_t)r0 * 2 * f, 2 * f, w(o.efc1) + (size_t)e * 2 * f * h, h, dxg + (size_t)r0 * h, h});
  }
  mm_batch<T, T, T>(false, false, dAct, false);
  mm_batch<T, T, float>(true, false, gW2, true);
  swiglu_backward<T>(dh1, dact, b.h1.get(), Tk, f, st_);
  mm_batch<T, T, float>(true, false, gW1, true);
  mm_batch<T, T, T>(false, false, dX, false);
  unpermute_add<T>(dxn, dxg, b.tokRow.get(), T_, k, h, st_);
  const float auxc = (float)(lossScale * mc_.auxLossCoeff * E / ((double)T_ * T_ * k));
  const float zc = (float)(lossScale * mc_.zLossCoeff * 2.0 / T_);
  float* dlog = dlogitsR_.ensure((size_t)T_ * E);
  router_backward(dlog, b.probs.get(), b.lse.get(), b.idx.get(), dgate_.get(), b.counts.get(), T_, E, k, auxc, zc, st_);
  const float* xr;
  if constexpr (kF32) xr = a.xn2.get(); else xr = b.xr.get();
  mm(true, false, E, h, T_, dlog, E, xr, h, g(o.router), h, true);
  mm(false, false, T_, h, E, dlog, E, p32(o.router), h, dxn, h, true);
}

template <typename T>
StepResult CudaEngine<T>::step(const int32_t* inputs, const int32_t* targets, int B, int S, const StepOptions& opt) {
  const int T_ = B * S, h = (int)mc_.hiddenSize, H = (int)mc_.numAttentionHeads, d = (int)mc_.headDim();
  const int V = (int)mc_.vocabSize, L = (int)mc_.numLayers;
  if (S > mc_.seqLength) fail(EXIT_OTHER, "internal: sequence longer than seqLength");
  if (opt.grad && !gradsReady_) zero_grad();
  const size_t Th = (size_t)T_ * h;
  StepResult res;
  int32_t* din = in_.ensure(T_);
  int32_t* dtg = tg_.ensure(T_);
  CUDA_CHECK(cudaMemcpyAsync(din, inputs, (size_t)T_ * 4, cudaMemcpyHostToDevice, st_));
  CUDA_CHECK(cudaMemcpyAsync(dtg, targets, (size_t)T_ * 4, cudaMemcpyHostToDevice, st_));
  hInputs_.assign(inputs, inputs + T_);

  // ---- forward ----
  for (int l = 0; l < L; l++) L_[l]->x_in.ensure(Th);
  float* xFinal = xFinal_.ensure(Th);
  embedding_forward(L_[0]->x_in.get(), p32(emb_), din, T_, h, st_);
  for (int l = 0; l < L; l++) {
    LayerBufs& a = *L_[l];
    const Off& o = off_[l];
    T* xn1 = a.xn1.ensure(Th);
    T* qkv = a.qkv.ensure(Th * 3);
    a.att.ensure(Th); a.lse.ensure((size_t)B * H * S);
    float* xmid = a.x_mid.ensure(Th);
    T* xn2 = a.xn2.ensure(Th);
    rmsnorm_forward<T>(xn1, a.rstd1.ensure(T_), a.x_in.get(), p32(o.attn_norm), T_, h, mc_.normEps, st_);
    mm(false, true, T_, 3 * h, h, xn1, h, w(o.qkv), h, qkv, 3 * h, false);
    rope<T>(qkv, cos_.get(), sin_.get(), B, S, 3 * h, 0, H, d, 1.0f, st_);
    rope<T>(qkv, cos_.get(), sin_.get(), B, S, 3 * h, h, H, d, 1.0f, st_);
    attention_forward(a, B, S);
    CUDA_CHECK(cudaMemcpyAsync(xmid, a.x_in.get(), Th * 4, cudaMemcpyDeviceToDevice, st_));
    mm(false, true, T_, h, h, a.att.get(), h, w(o.proj), h, xmid, h, true);
    rmsnorm_forward<T>(xn2, a.rstd2.ensure(T_), xmid, p32(o.mlp_norm), T_, h, mc_.normEps, st_);
    float* xout = l + 1 < L ? L_[l + 1]->x_in.get() : xFinal;
    if (!mc_.moeLayers[l]) {
      const int F = (int)mc_.ffnHiddenSize;
      T* h1 = a.h1.ensure((size_t)T_ * 2 * F);
      T* act = a.act.ensure((size_t)T_ * F);
      mm(false, true, T_, 2 * F, h, xn2, h, w(o.fc1), h, h1, 2 * F, false);
      swiglu_forward<T>(act, h1, T_, F, st_);
      mm(false, true, T_, h, F, act, F, w(o.fc2), F, tmpf_.ensure(Th), h, false);
      add(xout, xmid, tmpf_.get(), Th, st_);
    } else {
      moe_forward(a, o, xout, T_, res);
    }
  }
  T* xnf = xnf_.ensure(Th);
  rmsnorm_forward<T>(xnf, rstdf_.ensure(T_), xFinal, p32(fnorm_), T_, h, mc_.normEps, st_);

  // ---- output layer + cross-entropy in token chunks (the [T, V] logits never exist at once) ----
  const size_t budget = (size_t)512 << 20;
  int CH = (int)std::max<size_t>(64, budget / ((size_t)V * (4 + sizeof(T))) / 64 * 64);
  CH = std::min(CH, T_);
  float* logits = logits_.ensure((size_t)CH * V);
  T* dl = opt.grad ? dl_.ensure((size_t)CH * V) : nullptr;
  double* rowLoss = rowLoss_.ensure(T_);
  int32_t* am = opt.tokenArgmax ? argmax_.ensure(T_) : nullptr;
  if (opt.grad) dxnf_.ensure(Th);
  for (int t0 = 0; t0 < T_; t0 += CH) {
    const int n = std::min(CH, T_ - t0);
    mm(false, true, n, V, h, xnf + (size_t)t0 * h, h, w(out_), h, logits, V, false);
    crossentropy<T>(dl, rowLoss + t0, am ? am + t0 : nullptr, logits, dtg + t0, n, V, (float)opt.lmScale, st_);
    if (opt.grad) {
      mm(false, false, n, h, V, dl, V, w(out_), h, dxnf_.get() + (size_t)t0 * h, h, false);
      mm(true, false, V, h, n, dl, V, xnf + (size_t)t0 * h, h, g(out_), h, true);
    }
  }
  std::vector<double> hl(T_);
  CUDA_CHECK(cudaMemcpyAsync(hl.data(), rowLoss, (size_t)T_ * 8, cudaMemcpyDeviceToHost, st_));
  if (am) CUDA_CHECK(cudaMemcpyAsync(opt.tokenArgmax, am, (size_t)T_ * 4, cudaMemcpyDeviceToHost, st_));
  sync();
  for (int t = 0; t < T_; t++) { res.lmLossSum += hl[t]; if (opt.tokenLoss) opt.tokenLoss[t] = hl[t]; }
  if (!opt.grad) return res;

  // ---- backward ----
  float* dres = dres_.ensure(Th);
  float* dxn = dxn_.ensure(Th);
  float* normPartial = normPartial_.ensure((size_t)rmsnorm_partial_rows(T_) * h);
  const bool atomic = !rt_.deterministic;
  CUDA_CHECK(cudaMemsetAsync(dres, 0, Th * 4, st_));
  rmsnorm_backward(dres, g(fnorm_), normPartial, dxnf_.get(), xFinal, p32(fnorm_), rstdf_.get(), T_, h, atomic, st_);
  T* dqkv = dqkv_.ensure(Th * 3);
  T* datt = datt_.ensure(Th);
  for (int l = L - 1; l >= 0; l--) {
    LayerBufs& a = *L_[l];
    const Off& o = off_[l];
    // MLP: dres = d(x_out) = d(mlp_out)
    const T* dresT = as_t(dres, dresT_, Th);
    CUDA_CHECK(cudaMemsetAsync(dxn, 0, Th * 4, st_));
    if (!mc_.moeLayers[l]) {
      const int F = (int)mc_.ffnHiddenSize;
      T* dact = dact_.ensure((size_t)T_ * F);
      T* dh1 = dh1_.ensure((size_t)T_ * 2 * F);
      mm(false, false, T_, F, h, dresT, h, w(o.fc2), F, dact, F, false);
      mm(true, false, h, F, T_, dresT, h, a.act.get(), F, g(o.fc2), F, true);
      swiglu_backward<T>(dh1, dact, a.h1.get(), T_, F, st_);
      mm(true, false, 2 * F, h, T_, dh1, 2 * F, a.xn2.get(), h, g(o.fc1), h, true);
      mm(false, false, T_, h, 2 * F, dh1, 2 * F, w(o.fc1), h, dxn, h, false);
    } else {
      moe_backward(a, o, dresT, T_, opt.auxScale);
    }
    rmsnorm_backward(dres, g(o.mlp_norm), normPartial, dxn, a.x_mid.get(), p32(o.mlp_norm), a.rstd2.get(), T_, h, atomic, st_);
    // attention: dres = d(x_mid)
    dresT = as_t(dres, dresT_, Th);
    mm(false, false, T_, h, h, dresT, h, w(o.proj), h, datt, h, false);
    mm(true, false, h, h, T_, dresT, h, a.att.get(), h, g(o.proj), h, true);
    attention_backward(a, datt, B, S);
    rope<T>(dqkv, cos_.get(), sin_.get(), B, S, 3 * h, 0, H, d, -1.0f, st_);
    rope<T>(dqkv, cos_.get(), sin_.get(), B, S, 3 * h, h, H, d, -1.0f, st_);
    mm(true, false, 3 * h, h, T_, dqkv, 3 * h, a.xn1.get(), h, g(o.qkv), h, true);
    mm(false, false, T_, h, 3 * h, dqkv, 3 * h, w(o.qkv), h, dxn, h, false);
    rmsnorm_backward(dres, g(o.attn_norm), normPartial, dxn, a.x_in.get(), p32(o.attn_norm), a.rstd1.get(), T_, h, atomic, st_);
  }
  if (atomic) {
    embedding_backward_atomic(g(emb_), dres, din, T_, h, st_);
  } else {
    std::vector<int32_t> ids, start, pos;
    build_token_groups(hInputs_.data(), T_, ids, start, pos);
    CUDA_CHECK(cudaMemcpyAsync(embIds_.ensure(ids.size()), ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(embStart_.ensure(start.size()), start.data(), start.size() * 4, cudaMemcpyHostToDevice, st_));
    CUDA_CHECK(cudaMemcpyAsync(embPos_.ensure(pos.size()), pos.data(), pos.size() * 4, cudaMemcpyHostToDevice, st_));
    embedding_backward(g(emb_), dres, embIds_.get(), embStart_.get(), embPos_.get(), (int)ids.size(), h, st_);
    sync();  // the host vectors above are freed when this scope ends
  }
  return res;
}

template <typename T>
double CudaEngine<T>::grad_norm() {
  if (!gradsReady_) return 0;
  const size_t n = model_.size;
  sumsq(red_.ensure(1), partial_.ensure(std::max<size_t>(1, sumsq_partials(n))), grads_.get(), n, st_);
  double s = 0;
  CUDA_CHECK(cudaMemcpyAsync(&s, red_.get(), 8, cudaMemcpyDeviceToHost, st_));
  sync();
  return std::sqrt(s);
}

template <typename T>
void CudaEngine<T>::optimizer_step(double lr, double clipCoeff, const TrainConfig& tc, long adamStep) {
  if (!momentsReady_) fail(EXIT_OTHER, "internal: optimizer step without optimizer state");
  if (!gradsReady_) zero_grad();
  // the same fp32 constants as ops/adamw.h
  const float bc1 = (float)(1.0 - std::pow(tc.beta1, (double)adamStep)), bc2 = (float)(1.0 - std::pow(tc.beta2, (double)adamStep));
  const float clip = clipCoeff < 1.0 ? (float)clipCoeff : 1.0f;
  for (auto& t : model_.tensors) {
    bf16* pb = nullptr;
    if constexpr (!kF32) pb = wbf_.get() + t.offset;
    adamw(params_.get() + t.offset, grads_.get() + t.offset, m1_.get() + t.offset, m2_.get() + t.offset, pb, t.numel, (float)lr,
          (float)tc.beta1, (float)tc.beta2, (float)tc.eps, (float)(t.decay ? tc.weightDecay : 0.0), bc1, bc2, clip, st_);
  }
  sync();
}

template <typename T>
void CudaEngine<T>::routing(int j, std::vector<int32_t>& idx, std::vector<float>& gate) {
  MoeBufs& b = L_[moeIds_[j]]->moe;
  idx = b.hIdx;
  gate.resize(b.hIdx.size());
  CUDA_CHECK(cudaMemcpyAsync(gate.data(), b.gate.get(), gate.size() * 4, cudaMemcpyDeviceToHost, st_));
  sync();
}

}  // namespace

std::string unavailable(const Config& cfg) {
  int n = 0, driver = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess || driver == 0) {
    cudaGetLastError();
    return "no NVIDIA driver is installed (libcuda.so.1 cannot be loaded), so no GPU can be used";
  }
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorString(e) + ")";
  }
  if (n == 0) return "no CUDA device is visible (CUDA_VISIBLE_DEVICES?)";
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "cannot query CUDA device 0";
  if (p.major < 8) return std::string("device 0 (") + p.name + ") has compute capability " + std::to_string(p.major) + "." +
                          std::to_string(p.minor) + "; bf16 kernels need 8.0 or newer";
  return Blas::load(cfg.runtime.cublas);
}

std::unique_ptr<Engine> make_engine(const Config& cfg, Model& model) {
  if (cfg.runtime.precision == "fp32") return std::unique_ptr<Engine>(new CudaEngine<float>(cfg, model));
  return std::unique_ptr<Engine>(new CudaEngine<bf16>(cfg, model));
}

Json version_info() {
  Json j = Json::object();
  int rv = 0, dv = 0;
  cudaRuntimeGetVersion(&rv);
  j.set("runtime", Json::integer(rv));
  if (cudaDriverGetVersion(&dv) == cudaSuccess) j.set("driver", Json::integer(dv));
  j.set("archs", Json::string(FLAME_CUDA_ARCHS));
  Json devs = Json::array();
  int n = 0;
  if (cudaGetDeviceCount(&n) == cudaSuccess) {
    for (int i = 0; i < n; i++) {
      cudaDeviceProp p;
      if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
        devs.push(Json::string(std::string(p.name) + " (sm_" + std::to_string(p.major) + std::to_string(p.minor) + ")"));
    }
  } else {
    cudaGetLastError();
  }
  j.set("devices", devs);
  return j;
}

namespace {
std::unique_ptr<Engine> create(const Config& cfg, Model& model) { return make_engine(cfg, model); }
const CudaBackend kBackend{&unavailable, &create, &version_info};
struct Register {
  Register() { g_cuda_backend = &kBackend; }
} g_register;
}  // namespace

}}  // namespace flame::cuda
