// Element-wise and row-wise kernels of the CUDA backend; the references are in src/ops/.
// Reductions use warp shuffles in a butterfly (xor) pattern and fixed block sizes, so every
// result is a pure function of the inputs: no atomics unless the launcher's name says so.
#include "cuda/kernels.h"
#include <cfloat>
#include <cmath>
#include <cstdio>

namespace flame { namespace cuda {

void cuda_fail(cudaError_t e, const char* what, const char* file, int line) {
  const char* f = strrchr(file, '/');
  fail(EXIT_OTHER, std::string("CUDA error ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") in " + what + " at " +
                       (f ? f + 1 : file) + ":" + std::to_string(line));
}

namespace {

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
template <typename F> __device__ F block_sum(F v, F* sh) {
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  F r = lane < nw ? sh[lane] : F(0);
  return warp_sum(r);
}
__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---------------------------------------------------------------- embedding
__global__ void k_embedding_forward(float* x, const float* emb, const int32_t* tok, int h) {
  const int t = blockIdx.x;
  const float* src = emb + (size_t)tok[t] * h;
  for (int c = threadIdx.x; c < h; c += blockDim.x) x[(size_t)t * h + c] = src[c];
}
__global__ void k_embedding_backward(float* gemb, const float* dres, const int32_t* ids, const int32_t* start, const int32_t* pos, int h) {
  const int i = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= h) return;
  float* g = gemb + (size_t)ids[i] * h + c;
  float acc = *g;  // the CPU adds each token's row into the gradient in token order: same chain
  for (int p = start[i]; p < start[i + 1]; p++) acc += dres[(size_t)pos[p] * h + c];
  *g = acc;
}
__global__ void k_embedding_backward_atomic(float* gemb, const float* dres, const int32_t* tok, int h) {
  const int t = blockIdx.y, c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < h) atomicAdd(gemb + (size_t)tok[t] * h + c, dres[(size_t)t * h + c]);
}

// ---------------------------------------------------------------- rmsnorm
constexpr int NORM_THREADS = 128;
constexpr int NORM_ROWS = 64;  // rows per partial sum of the weight gradient

template <typename T>
__global__ void k_rmsnorm_forward(T* y, float* rstd, const float* x, const float* w, int C, double eps) {
  __shared__ float sh[32];
  const size_t t = blockIdx.x;
  const float* xt = x + t * C;
  float ss = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) ss += xt[c] * xt[c];
  ss = block_sum(ss, sh);
  const float r = (float)(1.0 / sqrt((double)(ss / C) + eps));
  if (threadIdx.x == 0) rstd[t] = r;
  for (int c = threadIdx.x; c < C; c += blockDim.x) y[t * C + c] = from_f<T>(xt[c] * r * w[c]);
}

// dx += r * (dy*w - xhat * mean(dy*w*xhat)), xhat = x * r
__global__ void k_rmsnorm_backward_dx(float* dx, const float* dy, const float* x, const float* w, const float* rstd, int C) {
  __shared__ float sh[32];
  const size_t t = blockIdx.x;
  const float r = rstd[t];
  const float *xt = x + t * C, *dyt = dy + t * C;
  float dot = 0;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dot += dyt[c] * w[c] * xt[c] * r;
  dot = block_sum(dot, sh) / C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) dx[t * C + c] += r * (dyt[c] * w[c] - xt[c] * r * dot);
}
// partial[b, c] = sum over rows [b*NORM_ROWS, (b+1)*NORM_ROWS) of dy * x * r, rows in order
__global__ void k_rmsnorm_dw_partial(float* partial, float* dwAtomic, const float* dy, const float* x, const float* rstd, int Tn, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
  if (c >= C) return;
  const int t0 = b * NORM_ROWS, t1 = min(Tn, t0 + NORM_ROWS);
  float acc = 0;
  for (int t = t0; t < t1; t++) acc += dy[(size_t)t * C + c] * x[(size_t)t * C + c] * rstd[t];
  if (dwAtomic) atomicAdd(dwAtomic + c, acc);
  else partial[(size_t)b * C + c] = acc;
}
__global__ void k_rmsnorm_dw_finish(float* dw, const float* partial, int nb, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float acc = 0;
  for (int b = 0; b < nb; b++) acc += partial[(size_t)b * C + c];
  dw[c] += acc;
}

// ---------------------------------------------------------------- rope, swiglu, element-wise
template <typename T>
__global__ void k_rope(T* x, const float* cosT, const float* sinT, int S, int ld, int col0, int H, int d, float sign) {
  const int half = d / 2;
  const size_t row = blockIdx.x;
  const int p = (int)(row % S);
  for (int i = threadIdx.x; i < H * half; i += blockDim.x) {
    const int hd = i / half, j = i % half;
    T* v = x + row * ld + col0 + hd * d;
    const float c = cosT[(size_t)p * half + j], s = sinT[(size_t)p * half + j];
    const float a = to_f(v[j]), b = to_f(v[j + half]);
    v[j] = from_f<T>(a * c - sign * b * s);
    v[j + half] = from_f<T>(b * c + sign * a * s);
  }
}
template <typename T>
__global__ void k_swiglu_forward(T* act, const T* h, long N, int f) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)N * f) return;
  const size_t n = i / f, j = i % f;
  const float x0 = to_f(h[n * 2 * f + j]), x1 = to_f(h[n * 2 * f + f + j]);
  act[i] = from_f<T>(x0 * sigmoidf(x0) * x1);
}
template <typename T>
__global__ void k_swiglu_backward(T* dh, const T* dact, const T* h, long N, int f) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)N * f) return;
  const size_t n = i / f, j = i % f;
  const float x0 = to_f(h[n * 2 * f + j]), x1 = to_f(h[n * 2 * f + f + j]), da = to_f(dact[i]);
  const float s = sigmoidf(x0), silu = x0 * s;
  dh[n * 2 * f + j] = from_f<T>(da * x1 * s * (1.0f + x0 * (1.0f - s)));
  dh[n * 2 * f + f + j] = from_f<T>(da * silu);
}
__global__ void k_add(float* out, const float* a, const float* b, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}
template <typename TI, typename TO>
__global__ void k_convert(TO* out, const TI* in, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = from_f<TO>(to_f(in[i]));
}

// ---------------------------------------------------------------- router
constexpr int MAX_E_PER_LANE = 8;  // E <= 256
constexpr int ROUTER_ROWS = 256;   // tokens per partial sum

// One warp per token; lane l holds experts l, l+32, ...
__global__ void k_router_forward(const float* logits, float* probs, float* lse, int32_t* idx, float* gate, int T, int E, int k) {
  const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
  if (t >= T) return;
  const float* l = logits + (size_t)t * E;
  float v[MAX_E_PER_LANE];
  float m = -FLT_MAX;
#pragma unroll
  for (int q = 0; q < MAX_E_PER_LANE; q++) {
    const int e = lane + 32 * q;
    v[q] = e < E ? l[e] : -FLT_MAX;
    m = fmaxf(m, v[q]);
  }
  m = warp_max(m);
  float s = 0;
#pragma unroll
  for (int q = 0; q < MAX_E_PER_LANE; q++) {
    const int e = lane + 32 * q;
    v[q] = e < E ? expf(v[q] - m) : 0.0f;
    s += v[q];
  }
  s = warp_sum(s);
  const float inv = 1.0f / s;
#pragma unroll
  for (int q = 0; q < MAX_E_PER_LANE; q++) {
    const int e = lane + 32 * q;
    v[q] *= inv;
    if (e < E) probs[(size_t)t * E + e] = v[q];
  }
  if (lane == 0) lse[t] = m + logf(s);
  // top-k by repeated arg-max over (probability desc, id asc); taken experts get -1
  for (int j = 0; j < k; j++) {
    float best = -1.0f; int bestE = 0x7fffffff;
#pragma unroll
    for (int q = 0; q < MAX_E_PER_LANE; q++) {
      const int e = lane + 32 * q;
      if (e < E && (v[q] > best || (v[q] == best && e < bestE))) { best = v[q]; bestE = e; }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int oe = __shfl_xor_sync(0xffffffffu, bestE, o);
      if (ob > best || (ob == best && oe < bestE)) { best = ob; bestE = oe; }
    }
    if (lane == 0) { idx[(size_t)t * k + j] = bestE; gate[(size_t)t * k + j] = best; }
#pragma unroll
    for (int q = 0; q < MAX_E_PER_LANE; q++)
      if (lane + 32 * q == bestE) v[q] = -1.0f;
  }
}
// partial[b, e] = sum over tokens of chunk b of probs[t, e] (e < E), partial[b, E] = sum lse^2
__global__ void k_router_partial(double* partial, const float* probs, const float* lse, int T, int E) {
  const int e = threadIdx.x, b = blockIdx.x;
  const int t0 = b * ROUTER_ROWS, t1 = min(T, t0 + ROUTER_ROWS);
  if (e > E) return;
  double acc = 0;
  if (e < E) for (int t = t0; t < t1; t++) acc += (double)probs[(size_t)t * E + e];
  else for (int t = t0; t < t1; t++) acc += (double)lse[t] * (double)lse[t];
  partial[(size_t)b * (E + 1) + e] = acc;
}
__global__ void k_router_finish(double* out, const double* partial, int nb, int E) {
  const int e = threadIdx.x;
  if (e > E) return;
  double acc = 0;
  for (int b = 0; b < nb; b++) acc += partial[(size_t)b * (E + 1) + e];
  out[e] = acc;
}
__global__ void k_router_backward(float* dlogits, const float* probs, const float* lse, const int32_t* idx, const float* dgate,
                                  const int32_t* counts, int T, int E, int k, float auxc, float zc) {
  const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
  if (t >= T) return;
  const float* p = probs + (size_t)t * E;
  float dl[MAX_E_PER_LANE];
#pragma unroll
  for (int q = 0; q < MAX_E_PER_LANE; q++) {
    const int e = lane + 32 * q;
    dl[q] = e < E ? auxc * (float)counts[e] : 0.0f;
  }
  for (int j = 0; j < k; j++) {
    const int e = idx[(size_t)t * k + j];
#pragma unroll
    for (int q = 0; q < MAX_E_PER_LANE; q++)
      if (lane + 32 * q == e) dl[q] += dgate[(size_t)t * k + j];
  }
  float dot = 0;
#pragma unroll
  for (int q = 0; q < MAX_E_PER_LANE; q++) {
    const int e = lane + 32 * q;
    if (e < E) dot += p[e] * dl[q];
  }
  dot = warp_sum(dot);
  const float zt = zc * lse[t];
#pragma unroll
  for (int q = 0; q < MAX_E_PER_LANE; q++) {
    const int e = lane + 32 * q;
    if (e < E) dlogits[(size_t)t * E + e] = p[e] * (dl[q] - dot) + zt * p[e];
  }
}

// ---------------------------------------------------------------- MoE permutation and combine
template <typename T>
__global__ void k_permute_rows(T* xg, const T* x, const int32_t* rowTok, int h) {
  const size_t r = blockIdx.x;
  const T* src = x + (size_t)rowTok[r] * h;
  for (int c = threadIdx.x; c < h; c += blockDim.x) xg[r * h + c] = src[c];
}
template <typename T>
__global__ void k_combine_residual(float* xout, const float* xmid, const T* y, const float* gate, const int32_t* tokRow, const float* shared,
                                   int k, int h) {
  const size_t t = blockIdx.x;
  for (int c = threadIdx.x; c < h; c += blockDim.x) {
    float acc = 0;
    for (int j = 0; j < k; j++) acc += gate[t * k + j] * to_f(y[(size_t)tokRow[t * k + j] * h + c]);
    const float o = shared ? acc + shared[t * h + c] : acc;
    xout[t * h + c] = xmid[t * h + c] + o;
  }
}
// one warp per (token, slot)
template <typename T>
__global__ void k_gate_backward(float* dgate, T* dy, const float* dout, const T* y, const float* gate, const int32_t* tokRow, int Tk, int k,
                                int h) {
  const int i = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x & 31;
  if (i >= Tk) return;
  const int t = i / k;
  const size_t r = tokRow[i];
  const float g = gate[i];
  float s = 0;
  for (int c = lane; c < h; c += 32) {
    const float d = dout[(size_t)t * h + c];
    s += d * to_f(y[r * h + c]);
    dy[r * h + c] = from_f<T>(g * d);
  }
  s = warp_sum(s);
  if (lane == 0) dgate[i] = s;
}
template <typename T>
__global__ void k_unpermute_add(float* dx, const T* dxg, const int32_t* tokRow, int k, int h) {
  const size_t t = blockIdx.x;
  for (int c = threadIdx.x; c < h; c += blockDim.x) {
    float o = dx[t * h + c];
    for (int j = 0; j < k; j++) o += to_f(dxg[(size_t)tokRow[t * k + j] * h + c]);
    dx[t * h + c] = o;
  }
}

// ---------------------------------------------------------------- cross-entropy
constexpr int CE_THREADS = 512;
template <typename TG>
__global__ void k_crossentropy(TG* dlogits, double* rowLoss, int32_t* argmax, const float* logits, const int32_t* targets, int V, float scale) {
  __shared__ float shv[32];
  __shared__ int shi[32];
  __shared__ float shs[32];
  const size_t row = blockIdx.x;
  const float* z = logits + row * V;
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  // max and arg-max (lowest id among equal maxima)
  float m = -FLT_MAX; int am = 0x7fffffff;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (z[i] > m) { m = z[i]; am = i; }  // i ascends per thread: first occurrence kept
  for (int o = 16; o > 0; o >>= 1) {
    const float om = __shfl_xor_sync(0xffffffffu, m, o);
    const int oi = __shfl_xor_sync(0xffffffffu, am, o);
    if (om > m || (om == m && oi < am)) { m = om; am = oi; }
  }
  if (lane == 0) { shv[w] = m; shi[w] = am; }
  __syncthreads();
  if (w == 0) {
    m = lane < nw ? shv[lane] : -FLT_MAX; am = lane < nw ? shi[lane] : 0x7fffffff;
    for (int o = 16; o > 0; o >>= 1) {
      const float om = __shfl_xor_sync(0xffffffffu, m, o);
      const int oi = __shfl_xor_sync(0xffffffffu, am, o);
      if (om > m || (om == m && oi < am)) { m = om; am = oi; }
    }
    if (lane == 0) { shv[0] = m; shi[0] = am; }
  }
  __syncthreads();
  m = shv[0]; am = shi[0];
  float s = 0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) s += expf(z[i] - m);
  s = block_sum(s, shs);
  const int tgt = targets[row];
  if (threadIdx.x == 0) {
    rowLoss[row] = (double)(m + logf(s)) - (double)z[tgt];
    if (argmax) argmax[row] = am;
  }
  if (dlogits) {
    const float inv = scale / s;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
      float g = expf(z[i] - m) * inv;
      if (i == tgt) g -= scale;
      dlogits[row * V + i] = from_f<TG>(g);
    }
  }
}

// ---------------------------------------------------------------- optimizer
__global__ void k_adamw(float* p, const float* g, float* m, float* v, bf16* pb, size_t n, float lr, float b1, float b2, float eps, float wd,
                        float bc1, float bc2, float clip) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float gi = g[i];
  if (clip < 1.0f) gi *= clip;
  const float mi = b1 * m[i] + (1.0f - b1) * gi;
  const float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
  m[i] = mi; v[i] = vi;
  const float denom = sqrtf(vi / bc2) + eps;
  const float upd = (mi / bc1) / denom + wd * p[i];
  const float pi = p[i] - lr * upd;
  p[i] = pi;
  if (pb) pb[i] = __float2bfloat16(pi);
}
constexpr size_t SUMSQ_CHUNK = 4096;
__global__ void k_sumsq_partial(double* partial, const float* g, size_t n) {
  __shared__ double sh[32];
  const size_t c0 = (size_t)blockIdx.x * SUMSQ_CHUNK, c1 = min(n, c0 + SUMSQ_CHUNK);
  double s = 0;
  for (size_t i = c0 + threadIdx.x; i < c1; i += blockDim.x) s += (double)g[i] * (double)g[i];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}
__global__ void k_sumsq_finish(double* out, const double* partial, size_t nc) {
  __shared__ double sh[32];
  double s = 0;
  for (size_t i = threadIdx.x; i < nc; i += blockDim.x) s += partial[i];
  s = block_sum(s, sh);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace

// ---------------------------------------------------------------- launchers
void embedding_forward(float* x, const float* emb, const int32_t* tok, int T, int h, cudaStream_t st) {
  if (T == 0) return;
  k_embedding_forward<<<T, 128, 0, st>>>(x, emb, tok, h);
  CUDA_LAUNCH();
}
void embedding_backward(float* gemb, const float* dres, const int32_t* ids, const int32_t* start, const int32_t* pos, int nIds, int h,
                        cudaStream_t st) {
  if (nIds == 0) return;
  k_embedding_backward<<<dim3(blocks_for(h, 128), nIds), 128, 0, st>>>(gemb, dres, ids, start, pos, h);
  CUDA_LAUNCH();
}
void embedding_backward_atomic(float* gemb, const float* dres, const int32_t* tok, int T, int h, cudaStream_t st) {
  if (T == 0) return;
  k_embedding_backward_atomic<<<dim3(blocks_for(h, 128), T), 128, 0, st>>>(gemb, dres, tok, h);
  CUDA_LAUNCH();
}

template <typename T> void rmsnorm_forward(T* y, float* rstd, const float* x, const float* w, int Tn, int C, double eps, cudaStream_t st) {
  if (Tn == 0) return;
  k_rmsnorm_forward<T><<<Tn, NORM_THREADS, 0, st>>>(y, rstd, x, w, C, eps);
  CUDA_LAUNCH();
}
int rmsnorm_partial_rows(int Tn) { return (Tn + NORM_ROWS - 1) / NORM_ROWS; }
void rmsnorm_backward(float* dx, float* dw, float* dwPartial, const float* dy, const float* x, const float* w, const float* rstd, int Tn,
                      int C, bool atomic, cudaStream_t st) {
  if (Tn == 0) return;
  k_rmsnorm_backward_dx<<<Tn, NORM_THREADS, 0, st>>>(dx, dy, x, w, rstd, C);
  CUDA_LAUNCH();
  const int nb = rmsnorm_partial_rows(Tn);
  k_rmsnorm_dw_partial<<<dim3(blocks_for(C, 128), nb), 128, 0, st>>>(dwPartial, atomic ? dw : nullptr, dy, x, rstd, Tn, C);
  CUDA_LAUNCH();
  if (!atomic) {
    k_rmsnorm_dw_finish<<<blocks_for(C, 128), 128, 0, st>>>(dw, dwPartial, nb, C);
    CUDA_LAUNCH();
  }
}

template <typename T> void rope(T* x, const float* cosT, const float* sinT, int B, int S, int ld, int col0, int H, int d, float sign,
                                cudaStream_t st) {
  if (B * S == 0) return;
  k_rope<T><<<B * S, 128, 0, st>>>(x, cosT, sinT, S, ld, col0, H, d, sign);
  CUDA_LAUNCH();
}
template <typename T> void swiglu_forward(T* act, const T* h, long N, int f, cudaStream_t st) {
  if (N * f == 0) return;
  k_swiglu_forward<T><<<blocks_for((size_t)N * f, 256), 256, 0, st>>>(act, h, N, f);
  CUDA_LAUNCH();
}
template <typename T> void swiglu_backward(T* dh, const T* dact, const T* h, long N, int f, cudaStream_t st) {
  if (N * f == 0) return;
  k_swiglu_backward<T><<<blocks_for((size_t)N * f, 256), 256, 0, st>>>(dh, dact, h, N, f);
  CUDA_LAUNCH();
}
void add(float* out, const float* a, const float* b, size_t n, cudaStream_t st) {
  if (n == 0) return;
  k_add<<<blocks_for(n, 256), 256, 0, st>>>(out, a, b, n);
  CUDA_LAUNCH();
}
template <typename TI, typename TO> void convert(TO* out, const TI* in, size_t n, cudaStream_t st) {
  if (n == 0) return;
  k_convert<TI, TO><<<blocks_for(n, 256), 256, 0, st>>>(out, in, n);
  CUDA_LAUNCH();
}

void router_forward(const float* logits, float* probs, float* lse, int32_t* idx, float* gate, int T, int E, int k, cudaStream_t st) {
  if (E > 32 * MAX_E_PER_LANE) fail(EXIT_CONFIG, "CUDA router: at most 256 experts");
  if (T == 0) return;
  k_router_forward<<<blocks_for(T, 8), 256, 0, st>>>(logits, probs, lse, idx, gate, T, E, k);
  CUDA_LAUNCH();
}
int router_partial_rows(int T) { return (T + ROUTER_ROWS - 1) / ROUTER_ROWS; }
void router_sums(double* out, double* partial, const float* probs, const float* lse, int T, int E, cudaStream_t st) {
  const int nb = router_partial_rows(T), threads = (E + 1 + 31) / 32 * 32;
  if (nb > 0) { k_router_partial<<<nb, threads, 0, st>>>(partial, probs, lse, T, E); CUDA_LAUNCH(); }
  k_router_finish<<<1, threads, 0, st>>>(out, partial, nb, E);
  CUDA_LAUNCH();
}
void router_backward(float* dlogits, const float* probs, const float* lse, const int32_t* idx, const float* dgate, const int32_t* counts,
                     int T, int E, int k, float auxc, float zc, cudaStream_t st) {
  if (T == 0) return;
  k_router_backward<<<blocks_for(T, 8), 256, 0, st>>>(dlogits, probs, lse, idx, dgate, counts, T, E, k, auxc, zc);
  CUDA_LAUNCH();
}

template <typename T> void permute_rows(T* xg, const T* x, const int32_t* rowTok, int Tk, int h, cudaStream_t st) {
  if (Tk == 0) return;
  k_permute_rows<T><<<Tk, 128, 0, st>>>(xg, x, rowTok, h);
  CUDA_LAUNCH();
}
template <typename T> void combine_residual(float* xout, const float* xmid, const T* y, const float* gate, const int32_t* tokRow,
                                           const float* shared, int T_, int k, int h, cudaStream_t st) {
  if (T_ == 0) return;
  k_combine_residual<T><<<T_, 128, 0, st>>>(xout, xmid, y, gate, tokRow, shared, k, h);
  CUDA_LAUNCH();
}
template <typename T> void gate_backward(float* dgate, T* dy, const float* dout, const T* y, const float* gate, const int32_t* tokRow,
                                        int T_, int k, int h, cudaStream_t st) {
  if (T_ == 0) return;
  k_gate_backward<T><<<blocks_for((size_t)T_ * k, 8), 256, 0, st>>>(dgate, dy, dout, y, gate, tokRow, T_ * k, k, h);
  CUDA_LAUNCH();
}
template <typename T> void unpermute_add(float* dx, const T* dxg, const int32_t* tokRow, int T_, int k, int h, cudaStream_t st) {
  if (T_ == 0) return;
  k_unpermute_add<T><<<T_, 128, 0, st>>>(dx, dxg, tokRow, k, h);
  CUDA_LAUNCH();
}

template <typename TG> void crossentropy(TG* dlogits, double* rowLoss, int32_t* argmax, const float* logits, const int32_t* targets, int n,
                                         int V, float scale, cudaStream_t st) {
  if (n == 0) return;
  k_crossentropy<TG><<<n, CE_THREADS, 0, st>>>(dlogits, rowLoss, argmax, logits, targets, V, scale);
  CUDA_LAUNCH();
}

void adamw(float* p, const float* g, float* m, float* v, bf16* pb, size_t n, float lr, float b1, float b2, float eps, float wd, float bc1,
           float bc2, float clip, cudaStream_t st) {
  if (n == 0) return;
  k_adamw<<<blocks_for(n, 256), 256, 0, st>>>(p, g, m, v, pb, n, lr, b1, b2, eps, wd, bc1, bc2, clip);
  CUDA_LAUNCH();
}
size_t sumsq_partials(size_t n) { return (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK; }
void sumsq(double* out, double* partial, const float* g, size_t n, cudaStream_t st) {
  const size_t nc = sumsq_partials(n);
  if (nc > 0) { k_sumsq_partial<<<(unsigned)nc, 256, 0, st>>>(partial, g, n); CUDA_LAUNCH(); }
  k_sumsq_finish<<<1, 1024, 0, st>>>(out, partial, nc);
  CUDA_LAUNCH();
}

// ---------------------------------------------------------------- instantiations
#define FLAME_FOR_T(X) X(float) X(bf16)
#define INST(T)                                                                                                                    \
  template void rmsnorm_forward<T>(T*, float*, const float*, const float*, int, int, double, cudaStream_t);                        \
  template void rope<T>(T*, const float*, const float*, int, int, int, int, int, int, float, cudaStream_t);                         \
  template void swiglu_forward<T>(T*, const T*, long, int, cudaStream_t);                                                          \
  template void swiglu_backward<T>(T*, const T*, const T*, long, int, cudaStream_t);                                               \
  template void permute_rows<T>(T*, const T*, const int32_t*, int, int, cudaStream_t);                                             \
  template void combine_residual<T>(float*, const float*, const T*, const float*, const int32_t*, const float*, int, int, int,     \
                                    cudaStream_t);                                                                                 \
  template void gate_backward<T>(float*, T*, const float*, const T*, const float*, const int32_t*, int, int, int, cudaStream_t);   \
  template void unpermute_add<T>(float*, const T*, const int32_t*, int, int, int, cudaStream_t);                                   \
  template void crossentropy<T>(T*, double*, int32_t*, const float*, const int32_t*, int, int, float, cudaStream_t);
FLAME_FOR_T(INST)
#undef INST
template void convert<float, bf16>(bf16*, const float*, size_t, cudaStream_t);
template void convert<bf16, float>(float*, const bf16*, size_t, cudaStream_t);
template void convert<float, float>(float*, const float*, size_t, cudaStream_t);

}}  // namespace flame::cuda
