// Causal multi-head attention on the GPU (semantics: ref::attention_* in src/ops/attention.cpp;
// qkv rows [q | k | v], H heads of d values each, scale 1/sqrt(d), lse [B,H,S] of scaled scores).
//
// plain: the readable version. Materialises the scores P [B,H,S,S] in scratch memory, one thread
//        per element of each product; the backward recomputes P from qkv.
// flash: never stores a score. Forward: one thread per query row, K/V tiles in shared memory,
//        online softmax (running max and sum, output rescaled per tile), saves lse. Backward as
//        FlashAttention-2 without atomics: rowdot D_i = <dO_i, O_i>, then one kernel with one
//        thread per key row (dK, dV over all later queries) and one with one thread per query row
//        (dQ over all earlier keys), P recomputed from lse. Every sum has a fixed order.
// Both compute in fp32 (inputs converted on load) and round once when they store a T.
// The templates live here; attention_fp32.cu and attention_bf16.cu instantiate them for each
// activation type (two translation units, so a two-core build compiles them in parallel).
#pragma once
#include "cuda/kernels.h"
#include <cfloat>
#include <type_traits>

namespace flame { namespace cuda {

namespace {

struct Geo {
  int S, H, d, h, ld;  // ld = 3h (qkv row stride)
  float scale;
};
__device__ __forceinline__ size_t qrow(const Geo& g, int b, int i) { return ((size_t)b * g.S + i) * g.ld; }

// ---------------------------------------------------------------- plain
template <typename T>
__global__ void k_plain_scores(float* P, const T* qkv, Geo g) {
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H;
  const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (size_t)g.S * g.S) return;
  const int i = (int)(e / g.S), j = (int)(e % g.S);
  float s = -INFINITY;
  if (j <= i) {
    const T* q = qkv + qrow(g, b, i) + hd * g.d;
    const T* k = qkv + qrow(g, b, j) + g.h + hd * g.d;
    float a = 0;
    for (int c = 0; c < g.d; c++) a += to_f(q[c]) * to_f(k[c]);
    s = a * g.scale;
  }
  P[(size_t)bh * g.S * g.S + e] = s;
}
// In place: scores -> probabilities, one block per (bh, i) row; lse may be null.
__global__ void k_plain_softmax(float* P, float* lse, int S) {
  __shared__ float sh[32];
  const size_t row = blockIdx.x;
  const int i = (int)(row % S);
  float* p = P + row * S;
  float m = -INFINITY;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, p[j]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = m;
  __syncthreads();
  m = -INFINITY;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) m = fmaxf(m, sh[w]);
  __syncthreads();
  float l = 0;
  for (int j = threadIdx.x; j <= i; j += blockDim.x) l += expf(p[j] - m);
  for (int o = 16; o > 0; o >>= 1) l += __shfl_xor_sync(0xffffffffu, l, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = l;
  __syncthreads();
  l = 0;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) l += sh[w];
  for (int j = threadIdx.x; j < S; j += blockDim.x) p[j] = j <= i ? expf(p[j] - m) / l : 0.0f;
  if (lse && threadIdx.x == 0) lse[row] = m + logf(l);
}
// out[i, c] = sum_j P[i, j] v_j[c]
template <typename T>
__global__ void k_plain_pv(T* out, const float* P, const T* qkv, Geo g) {
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H;
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= g.S * g.d) return;
  const int i = e / g.d, c = e % g.d;
  const float* p = P + ((size_t)bh * g.S + i) * g.S;
  float a = 0;
  for (int j = 0; j <= i; j++) a += p[j] * to_f(qkv[qrow(g, b, j) + 2 * g.h + hd * g.d + c]);
  out[((size_t)b * g.S + i) * g.h + hd * g.d + c] = from_f<T>(a);
}
// dP[i, j] = <dO_i, v_j> for j <= i
template <typename T>
__global__ void k_plain_dp(float* dP, const T* dout, const T* qkv, Geo g) {
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H;
  const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= (size_t)g.S * g.S) return;
  const int i = (int)(e / g.S), j = (int)(e % g.S);
  float a = 0;
  if (j <= i) {
    const T* dO = dout + ((size_t)b * g.S + i) * g.h + hd * g.d;
    const T* v = qkv + qrow(g, b, j) + 2 * g.h + hd * g.d;
    for (int c = 0; c < g.d; c++) a += to_f(dO[c]) * to_f(v[c]);
  }
  dP[(size_t)bh * g.S * g.S + e] = a;
}
// dS = P (dP - sum_j dP P) * scale, in place on dP, one block per row
__global__ void k_plain_ds(float* dP, const float* P, int S, float scale) {
  __shared__ float sh[32];
  const size_t row = blockIdx.x;
  const float* p = P + row * S;
  float* dp = dP + row * S;
  float r = 0;
  for (int j = threadIdx.x; j < S; j += blockDim.x) r += dp[j] * p[j];
  for (int o = 16; o > 0; o >>= 1) r += __shfl_xor_sync(0xffffffffu, r, o);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = r;
  __syncthreads();
  r = 0;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) r += sh[w];
  for (int j = threadIdx.x; j < S; j += blockDim.x) dp[j] = p[j] * (dp[j] - r) * scale;
}
// which = 0: dq_i = sum_j dS[i,j] k_j;  1: dk_j = sum_i dS[i,j] q_i;  2: dv_j = sum_i P[i,j] dO_i
template <typename T>
__global__ void k_plain_grad(T* dqkv, const float* P, const float* dS, const T* dout, const T* qkv, Geo g, int which) {
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H;
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  if (e >= g.S * g.d) return;
  const int r = e / g.d, c = e % g.d;
  const size_t base = (size_t)bh * g.S * g.S;
  float a = 0;
  if (which == 0) {
    for (int j = 0; j <= r; j++) a += dS[base + (size_t)r * g.S + j] * to_f(qkv[qrow(g, b, j) + g.h + hd * g.d + c]);
  } else if (which == 1) {
    for (int i = r; i < g.S; i++) a += dS[base + (size_t)i * g.S + r] * to_f(qkv[qrow(g, b, i) + hd * g.d + c]);
  } else {
    for (int i = r; i < g.S; i++) a += P[base + (size_t)i * g.S + r] * to_f(dout[((size_t)b * g.S + i) * g.h + hd * g.d + c]);
  }
  dqkv[qrow(g, b, r) + which * g.h + hd * g.d + c] = from_f<T>(a);
}

// ---------------------------------------------------------------- flash
// Tile shapes per padded head dim D: static shared memory stays under 48 KB and the per-thread
// accumulators (2 D floats) in registers.
template <int D> struct Tiles {
  static constexpr int Q = D >= 128 ? 32 : 64;    // forward / dQ: query rows per block (one per thread)
  static constexpr int K = 32;                    // forward: keys per shared tile
  static constexpr int KV = D >= 128 ? 32 : 64;   // dK/dV: key rows per block (one per thread)
  static constexpr int IN = D >= 128 ? 8 : 16;    // backward: rows per streamed shared tile
};

template <typename T, int D>
__global__ void __launch_bounds__(Tiles<D>::Q) k_flash_forward(T* out, float* lse, const T* qkv, Geo g) {
  constexpr int BQ = Tiles<D>::Q, BK = Tiles<D>::K;
  __shared__ float Ks[BK][D], Vs[BK][D];
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H;
  const int q0 = blockIdx.x * BQ, i = q0 + threadIdx.x;
  const T* base = qkv + qrow(g, b, 0) + hd * g.d;
  float q[D], o[D];
#pragma unroll
  for (int c = 0; c < D; c++) { q[c] = (i < g.S && c < g.d) ? to_f(base[(size_t)i * g.ld + c]) * g.scale : 0.0f; o[c] = 0.0f; }
  float m = -INFINITY, l = 0.0f;
  const int last = min(g.S - 1, q0 + BQ - 1);
  for (int k0 = 0; k0 <= last; k0 += BK) {
    __syncthreads();
    for (int e = threadIdx.x; e < BK * D; e += BQ) {
      const int jj = e / D, c = e % D, j = k0 + jj;
      const bool in = j < g.S && c < g.d;
      Ks[jj][c] = in ? to_f(base[(size_t)j * g.ld + g.h + c]) : 0.0f;
      Vs[jj][c] = in ? to_f(base[(size_t)j * g.ld + 2 * g.h + c]) : 0.0f;
    }
    __syncthreads();
    if (i >= g.S || k0 > i) continue;  // (the first tile always holds key 0 <= i, so m is finite after it)
    float s[BK], mt = -INFINITY;
#pragma unroll
    for (int jj = 0; jj < BK; jj++) {
      float a = 0.0f;
#pragma unroll
      for (int c = 0; c < D; c++) a += q[c] * Ks[jj][c];
      s[jj] = k0 + jj <= i ? a : -INFINITY;
      mt = fmaxf(mt, s[jj]);
    }
    const float mn = fmaxf(m, mt), alpha = expf(m - mn);
    l *= alpha;
#pragma unroll
    for (int c = 0; c < D; c++) o[c] *= alpha;
#pragma unroll
    for (int jj = 0; jj < BK; jj++) {
      const float p = expf(s[jj] - mn);
      l += p;
#pragma unroll
      for (int c = 0; c < D; c++) o[c] += p * Vs[jj][c];
    }
    m = mn;
  }
  if (i >= g.S) return;
  const float inv = 1.0f / l;
  T* dst = out + ((size_t)b * g.S + i) * g.h + hd * g.d;
#pragma unroll
  for (int c = 0; c < D; c++)
    if (c < g.d) dst[c] = from_f<T>(o[c] * inv);
  lse[(size_t)bh * g.S + i] = m + logf(l);
}

template <typename T>
__global__ void k_rowdot(float* rowdot, const T* dout, const T* out, Geo g) {
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= g.S) return;
  const size_t o = ((size_t)b * g.S + i) * g.h + hd * g.d;
  float a = 0;
  for (int c = 0; c < g.d; c++) a += to_f(dout[o + c]) * to_f(out[o + c]);
  rowdot[(size_t)bh * g.S + i] = a;
}

// One thread per key row j: dV_j = sum_{i>=j} P_ij dO_i,  dK_j = sum_{i>=j} dS_ij q_i * scale.
template <typename T, int D>
__global__ void __launch_bounds__(Tiles<D>::KV) k_flash_dkdv(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* rowdot, Geo g) {
  constexpr int BKV = Tiles<D>::KV, BI = Tiles<D>::IN;
  __shared__ float Kme[BKV][D + 1], Vme[BKV][D + 1];  // this thread's own key / value row (padded: no bank conflicts)
  __shared__ float Qs[BI][D], dOs[BI][D], Ls[BI], Ds[BI];
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H, t = threadIdx.x;
  const int k0 = blockIdx.x * BKV, j = k0 + t;
  const T* base = qkv + qrow(g, b, 0) + hd * g.d;
  const T* dO = dout + (size_t)b * g.S * g.h + hd * g.d;
  for (int c = 0; c < D; c++) {
    const bool in = j < g.S && c < g.d;
    Kme[t][c] = in ? to_f(base[(size_t)j * g.ld + g.h + c]) : 0.0f;
    Vme[t][c] = in ? to_f(base[(size_t)j * g.ld + 2 * g.h + c]) : 0.0f;
  }
  float dk[D], dv[D];
#pragma unroll
  for (int c = 0; c < D; c++) { dk[c] = 0.0f; dv[c] = 0.0f; }
  for (int i0 = k0; i0 < g.S; i0 += BI) {
    __syncthreads();
    for (int e = t; e < BI * D; e += BKV) {
      const int ii = e / D, c = e % D, i = i0 + ii;
      const bool in = i < g.S && c < g.d;
      Qs[ii][c] = in ? to_f(base[(size_t)i * g.ld + c]) : 0.0f;
      dOs[ii][c] = in ? to_f(dO[(size_t)i * g.h + c]) : 0.0f;
    }
    if (t < BI) {
      const int i = i0 + t;
      Ls[t] = i < g.S ? lse[(size_t)bh * g.S + i] : 0.0f;
      Ds[t] = i < g.S ? rowdot[(size_t)bh * g.S + i] : 0.0f;
    }
    __syncthreads();
    if (j >= g.S) continue;
#pragma unroll 1
    for (int ii = 0; ii < BI; ii++) {
      const int i = i0 + ii;
      if (i >= g.S || i < j) continue;
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int c = 0; c < D; c++) { s += Qs[ii][c] * Kme[t][c]; dp += dOs[ii][c] * Vme[t][c]; }
      const float p = expf(s * g.scale - Ls[ii]);
      const float ds = p * (dp - Ds[ii]) * g.scale;
#pragma unroll
      for (int c = 0; c < D; c++) { dv[c] += p * dOs[ii][c]; dk[c] += ds * Qs[ii][c]; }
    }
  }
  if (j >= g.S) return;
  T* dst = dqkv + qrow(g, b, j) + hd * g.d;
#pragma unroll
  for (int c = 0; c < D; c++)
    if (c < g.d) { dst[g.h + c] = from_f<T>(dk[c]); dst[2 * g.h + c] = from_f<T>(dv[c]); }
}

// One thread per query row i: dQ_i = sum_{j<=i} dS_ij k_j * scale.
template <typename T, int D>
__global__ void __launch_bounds__(Tiles<D>::Q) k_flash_dq(T* dqkv, const T* dout, const T* qkv, const float* lse, const float* rowdot, Geo g) {
  constexpr int BQ = Tiles<D>::Q, BJ = Tiles<D>::IN;
  __shared__ float Qme[BQ][D + 1], dOme[BQ][D + 1];
  __shared__ float Ks[BJ][D], Vs[BJ][D];
  const int bh = blockIdx.y, b = bh / g.H, hd = bh % g.H, t = threadIdx.x;
  const int q0 = blockIdx.x * BQ, i = q0 + t;
  const T* base = qkv + qrow(g, b, 0) + hd * g.d;
  const T* dO = dout + (size_t)b * g.S * g.h + hd * g.d;
  for (int c = 0; c < D; c++) {
    const bool in = i < g.S && c < g.d;
    Qme[t][c] = in ? to_f(base[(size_t)i * g.ld + c]) : 0.0f;
    dOme[t][c] = in ? to_f(dO[(size_t)i * g.h + c]) : 0.0f;
  }
  const float L = i < g.S ? lse[(size_t)bh * g.S + i] : 0.0f, Di = i < g.S ? rowdot[(size_t)bh * g.S + i] : 0.0f;
  float dq[D];
#pragma unroll
  for (int c = 0; c < D; c++) dq[c] = 0.0f;
  const int last = min(g.S - 1, q0 + BQ - 1);
  for (int j0 = 0; j0 <= last; j0 += BJ) {
    __syncthreads();
    for (int e = t; e < BJ * D; e += BQ) {
      const int jj = e / D, c = e % D, j = j0 + jj;
      const bool in = j < g.S && c < g.d;
      Ks[jj][c] = in ? to_f(base[(size_t)j * g.ld + g.h + c]) : 0.0f;
      Vs[jj][c] = in ? to_f(base[(size_t)j * g.ld + 2 * g.h + c]) : 0.0f;
    }
    __syncthreads();
    if (i >= g.S) continue;
#pragma unroll 1
    for (int jj = 0; jj < BJ; jj++) {
      if (j0 + jj > i) break;
      float s = 0.0f, dp = 0.0f;
#pragma unroll
      for (int c = 0; c < D; c++) { s += Qme[t][c] * Ks[jj][c]; dp += dOme[t][c] * Vs[jj][c]; }
      const float p = expf(s * g.scale - L);
      const float ds = p * (dp - Di) * g.scale;
#pragma unroll
      for (int c = 0; c < D; c++) dq[c] += ds * Ks[jj][c];
    }
  }
  if (i >= g.S) return;
  T* dst = dqkv + qrow(g, b, i) + hd * g.d;
#pragma unroll
  for (int c = 0; c < D; c++)
    if (c < g.d) dst[c] = from_f<T>(dq[c]);
}

Geo geo(int S, int H, int d) { return Geo{S, H, d, H * d, 3 * H * d, (float)(1.0 / std::sqrt((double)d))}; }

template <typename T, int D>
void flash_forward_d(T* out, float* lse, const T* qkv, int B, const Geo& g, cudaStream_t st) {
  dim3 grid(blocks_for(g.S, Tiles<D>::Q), B * g.H);
  k_flash_forward<T, D><<<grid, Tiles<D>::Q, 0, st>>>(out, lse, qkv, g);
  CUDA_LAUNCH();
}
template <typename T, int D>
void flash_backward_d(T* dqkv, const float* rowdot, const T* dout, const T* qkv, const float* lse, int B, const Geo& g, cudaStream_t st) {
  k_flash_dkdv<T, D><<<dim3(blocks_for(g.S, Tiles<D>::KV), B * g.H), Tiles<D>::KV, 0, st>>>(dqkv, dout, qkv, lse, rowdot, g);
  CUDA_LAUNCH();
  k_flash_dq<T, D><<<dim3(blocks_for(g.S, Tiles<D>::Q), B * g.H), Tiles<D>::Q, 0, st>>>(dqkv, dout, qkv, lse, rowdot, g);
  CUDA_LAUNCH();
}

}  // namespace

template <typename T> void attention_forward_flash_simt(T* out, float* lse, const T* qkv, int B, int S, int H, int d, cudaStream_t st) {
  if (B * S == 0) return;
  const Geo g = geo(S, H, d);
  if (d <= 16) flash_forward_d<T, 16>(out, lse, qkv, B, g, st);
  else if (d <= 32) flash_forward_d<T, 32>(out, lse, qkv, B, g, st);
  else if (d <= 64) flash_forward_d<T, 64>(out, lse, qkv, B, g, st);
  else if (d <= 128) flash_forward_d<T, 128>(out, lse, qkv, B, g, st);
  else fail(EXIT_CONFIG, "flash attention: head dimension " + std::to_string(d) + " > 128 (use runtime.attention \"plain\")");
}
template <typename T> void attention_backward_flash_simt(T* dqkv, float* rowdot, const T* dout, const T* qkv, const T* out, const float* lse,
                                                        int B, int S, int H, int d, cudaStream_t st) {
  if (B * S == 0) return;
  const Geo g = geo(S, H, d);
  k_rowdot<T><<<dim3(blocks_for(S, 128), B * H), 128, 0, st>>>(rowdot, dout, out, g);
  CUDA_LAUNCH();
  if (d <= 16) flash_backward_d<T, 16>(dqkv, rowdot, dout, qkv, lse, B, g, st);
  else if (d <= 32) flash_backward_d<T, 32>(dqkv, rowdot, dout, qkv, lse, B, g, st);
  else if (d <= 64) flash_backward_d<T, 64>(dqkv, rowdot, dout, qkv, lse, B, g, st);
  else if (d <= 128) flash_backward_d<T, 128>(dqkv, rowdot, dout, qkv, lse, B, g, st);
  else fail(EXIT_CONFIG, "flash attention: head dimension " + std::to_string(d) + " > 128 (use runtime.attention \"plain\")");
}

// bf16 with a head dim the tensor-core kernels cover: attention_mma.cu; otherwise the SIMT kernels.
template <typename T> void attention_forward_flash(T* out, float* lse, const T* qkv, int B, int S, int H, int d, cudaStream_t st) {
  if constexpr (std::is_same<T, bf16>::value) {
    if (flash_mma_supports(d)) { attention_forward_mma(out, lse, qkv, B, S, H, d, st); return; }
  }
  attention_forward_flash_simt<T>(out, lse, qkv, B, S, H, d, st);
}
template <typename T> void attention_backward_flash(T* dqkv, float* rowdot, const T* dout, const T* qkv, const T* out, const float* lse, int B,
                                                   int S, int H, int d, cudaStream_t st) {
  if constexpr (std::is_same<T, bf16>::value) {
    if (flash_mma_supports(d) && B * S > 0) {
      const Geo g = geo(S, H, d);
      k_rowdot<T><<<dim3(blocks_for(S, 128), B * H), 128, 0, st>>>(rowdot, dout, out, g);
      CUDA_LAUNCH();
      attention_backward_mma(dqkv, rowdot, dout, qkv, lse, B, S, H, d, st);
      return;
    }
  }
  attention_backward_flash_simt<T>(dqkv, rowdot, dout, qkv, out, lse, B, S, H, d, st);
}

template <typename T> void attention_forward_plain(T* out, float* lse, float* P, const T* qkv, int B, int S, int H, int d, cudaStream_t st) {
  if (B * S == 0) return;
  const Geo g = geo(S, H, d);
  k_plain_scores<T><<<dim3(blocks_for((size_t)S * S, 256), B * H), 256, 0, st>>>(P, qkv, g);
  CUDA_LAUNCH();
  k_plain_softmax<<<B * H * S, 128, 0, st>>>(P, lse, S);
  CUDA_LAUNCH();
  k_plain_pv<T><<<dim3(blocks_for((size_t)S * d, 128), B * H), 128, 0, st>>>(out, P, qkv, g);
  CUDA_LAUNCH();
}
template <typename T> void attention_backward_plain(T* dqkv, float* P, const T* dout, const T* qkv, int B, int S, int H, int d, cudaStream_t st) {
  if (B * S == 0) return;
  const Geo g = geo(S, H, d);
  float* dP = P + (size_t)B * H * S * S;
  k_plain_scores<T><<<dim3(blocks_for((size_t)S * S, 256), B * H), 256, 0, st>>>(P, qkv, g);
  CUDA_LAUNCH();
  k_plain_softmax<<<B * H * S, 128, 0, st>>>(P, nullptr, S);
  CUDA_LAUNCH();
  k_plain_dp<T><<<dim3(blocks_for((size_t)S * S, 256), B * H), 256, 0, st>>>(dP, dout, qkv, g);
  CUDA_LAUNCH();
  k_plain_ds<<<B * H * S, 128, 0, st>>>(dP, P, S, g.scale);
  CUDA_LAUNCH();
  for (int which = 0; which < 3; which++) {
    k_plain_grad<T><<<dim3(blocks_for((size_t)S * d, 128), B * H), 128, 0, st>>>(dqkv, P, dP, dout, qkv, g, which);
    CUDA_LAUNCH();
  }
}

// Explicit instantiations of the kernels above for one activation type (attention_<type>.cu).
#define FLAME_INSTANTIATE_ATTENTION(T)                                                                                          \
  template void attention_forward_flash<T>(T*, float*, const T*, int, int, int, int, cudaStream_t);                             \
  template void attention_backward_flash<T>(T*, float*, const T*, const T*, const T*, const float*, int, int, int, int, cudaStream_t); \
  template void attention_forward_flash_simt<T>(T*, float*, const T*, int, int, int, int, cudaStream_t);                        \
  template void attention_backward_flash_simt<T>(T*, float*, const T*, const T*, const T*, const float*, int, int, int, int, cudaStream_t); \
  template void attention_forward_plain<T>(T*, float*, float*, const T*, int, int, int, int, cudaStream_t);                     \
  template void attention_backward_plain<T>(T*, float*, const T*, const T*, int, int, int, int, cudaStream_t);

}}  // namespace flame::cuda
