// Launchers of the CUDA kernels (ops.cu, attention.cu). Each mirrors one reference in src/ops/
// (same name, same semantics, same argument order where it makes sense) and is tested against it
// in tests/test_cuda.cu. T is the activation type: float (fp32 path) or bf16; every kernel
// computes in fp32 and rounds only when it stores a T. All run on `st` and do not synchronise.
// No kernel uses atomics unless its name says so: reductions run in a fixed order.
#pragma once
#include <cstdint>
#include <cuda_runtime.h>
#include "cuda/common.cuh"

namespace flame { namespace cuda {

// x[t] = emb[tok[t]]                                                         (fp32 residual stream)
void embedding_forward(float* x, const float* emb, const int32_t* tok, int T, int h, cudaStream_t st);
// gemb[ids[i]] += sum of dres[pos[p]] for p in [start[i], start[i+1]), in that order (ops/permute.h)
void embedding_backward(float* gemb, const float* dres, const int32_t* ids, const int32_t* start, const int32_t* pos, int nIds, int h,
                        cudaStream_t st);
void embedding_backward_atomic(float* gemb, const float* dres, const int32_t* tok, int T, int h, cudaStream_t st);

// ops/rmsnorm.h. dwPartial: scratch of rmsnorm_partial_rows(T) * C floats (unused when atomic).
template <typename T> void rmsnorm_forward(T* y, float* rstd, const float* x, const float* w, int Tn, int C, double eps, cudaStream_t st);
int rmsnorm_partial_rows(int Tn);
void rmsnorm_backward(float* dx, float* dw, float* dwPartial, const float* dy, const float* x, const float* w, const float* rstd, int Tn,
                      int C, bool atomic, cudaStream_t st);

// ops/rope.h, in place on the q (col0 = 0) or k (col0 = h) columns; sign -1 = backward.
template <typename T> void rope(T* x, const float* cosT, const float* sinT, int B, int S, int ld, int col0, int H, int d, float sign,
                                cudaStream_t st);
// ops/swiglu.h
template <typename T> void swiglu_forward(T* act, const T* h, long N, int f, cudaStream_t st);
template <typename T> void swiglu_backward(T* dh, const T* dact, const T* h, long N, int f, cudaStream_t st);

// out = a + b (fp32)
void add(float* out, const float* a, const float* b, size_t n, cudaStream_t st);
template <typename TI, typename TO> void convert(TO* out, const TI* in, size_t n, cudaStream_t st);

// ops/router.h, the per-token part: softmax over E (<= 256), lse, top-k (ties -> lower id).
void router_forward(const float* logits, float* probs, float* lse, int32_t* idx, float* gate, int T, int E, int k, cudaStream_t st);
// out[0..E) = column sums of probs, out[E] = sum_t lse[t]^2; in double, fixed chunks summed in order.
// partial: scratch of router_partial_rows(T) * (E + 1) doubles.
int router_partial_rows(int T);
void router_sums(double* out, double* partial, const float* probs, const float* lse, int T, int E, cudaStream_t st);
void router_backward(float* dlogits, const float* probs, const float* lse, const int32_t* idx, const float* dgate, const int32_t* counts,
                     int T, int E, int k, float auxc, float zc, cudaStream_t st);

// ops/moe.h, grouped implementation (cpu/moe.cpp): gather rows by expert, weighted combine.
template <typename T> void permute_rows(T* xg, const T* x, const int32_t* rowTok, int Tk, int h, cudaStream_t st);
// xout[t] = xmid[t] + (sum_j gate[t,j] y[tokRow[t,j]] + shared[t]); shared may be null
template <typename T> void combine_residual(float* xout, const float* xmid, const T* y, const float* gate, const int32_t* tokRow,
                                           const float* shared, int nTok, int k, int h, cudaStream_t st);
// dgate[t,j] = <dout[t], y[r]>, dy[r] = gate[t,j] dout[t] with r = tokRow[t,j]
template <typename T> void gate_backward(float* dgate, T* dy, const float* dout, const T* y, const float* gate, const int32_t* tokRow,
                                        int nTok, int k, int h, cudaStream_t st);
// dx[t] += sum_j dxg[tokRow[t,j]] (slot order)
template <typename T> void unpermute_add(float* dx, const T* dxg, const int32_t* tokRow, int nTok, int k, int h, cudaStream_t st);

// ops/crossentropy.h on n rows of fp32 logits: rowLoss[i] = lse - z[target], argmax (lowest id on
// ties, may be null), and with dlogits != null the gradient (softmax - onehot) * scale.
template <typename TG> void crossentropy(TG* dlogits, double* rowLoss, int32_t* argmax, const float* logits, const int32_t* targets, int n,
                                         int V, float scale, cudaStream_t st);

// ops/adamw.h on one tensor, the gradient scaled by clip first (clip = 1: none); with pb != null the
// updated weights are also written as bf16 (the GEMM copy).
void adamw(float* p, const float* g, float* m, float* v, bf16* pb, size_t n, float lr, float b1, float b2, float eps, float wd, float bc1,
           float bc2, float clip, cudaStream_t st);
// sum of squares of g in double, fixed 4096-element chunks, combined in a fixed order -> *out
size_t sumsq_partials(size_t n);
void sumsq(double* out, double* partial, const float* g, size_t n, cudaStream_t st);

// ops/attention.h. Flash: no score matrix; lse [B,H,S]; rowdot: scratch [B,H,S].
template <typename T> void attention_forward_flash(T* out, float* lse, const T* qkv, int B, int S, int H, int d, cudaStream_t st);
template <typename T> void attention_backward_flash(T* dqkv, float* rowdot, const T* dout, const T* qkv, const T* out, const float* lse, int B,
                                                   int S, int H, int d, cudaStream_t st);
// flash dispatches: bf16 with head dim 16 / 32 / 64 / 96 / 128 runs on tensor cores (attention_mma.cu,
// mma.sync), everything else on the SIMT kernels (attention.cuh), which can also be called directly.
template <typename T> void attention_forward_flash_simt(T* out, float* lse, const T* qkv, int B, int S, int H, int d, cudaStream_t st);
template <typename T> void attention_backward_flash_simt(T* dqkv, float* rowdot, const T* dout, const T* qkv, const T* out, const float* lse,
                                                        int B, int S, int H, int d, cudaStream_t st);
bool flash_mma_supports(int d);
void attention_forward_mma(bf16* out, float* lse, const bf16* qkv, int B, int S, int H, int d, cudaStream_t st);
// rowdot [B,H,S] = <dO_i, O_i> must be computed already (attention_backward_flash does it).
void attention_backward_mma(bf16* dqkv, const float* rowdot, const bf16* dout, const bf16* qkv, const float* lse, int B, int S, int H, int d,
                            cudaStream_t st);
// Plain: materialises P (and dP) [B,H,S,S] in the scratch `P` (2 * B*H*S*S floats).
template <typename T> void attention_forward_plain(T* out, float* lse, float* P, const T* qkv, int B, int S, int H, int d, cudaStream_t st);
template <typename T> void attention_backward_plain(T* dqkv, float* P, const T* dout, const T* qkv, int B, int S, int H, int d, cudaStream_t st);
bool flash_supports(int d);  // head dims the flash kernels are instantiated for (<= 128)

}}  // namespace flame::cuda
