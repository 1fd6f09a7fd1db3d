// Cache-blocked GEMM in the BLIS style: pack a KC x NC block of op(B) into NR-wide column panels
// and an MC x KC block of op(A) into MR-tall row panels (zero padded), then run a register-blocked
// micro-kernel over the panels. Packing absorbs the transposes, so one kernel serves all of
// x W^T, dy W and dy^T x.
#include "cpu/gemm.h"
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>
#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace flame { namespace cpu {

namespace {

constexpr int MR = 6, NR = 16;           // micro-tile (6 x 16 floats = 12 AVX2 registers)
constexpr int KC = 256, MC = 96, NC = 256;  // cache blocks; KC is part of the numerical contract

// Every micro-kernel computes, for each (i, j) of the MR x NR tile,
//   acc = 0; for k in [0, kc): acc = fma(a[k][i], b[k][j], acc);  C = (first ? acc : C + acc)
// and stores only the valid m x n corner.
template <typename T>
void kernel_generic(int kc, const T* a, const T* b, T* C, int ldc, int m, int n, bool load) {
  T acc[MR][NR];
  for (int i = 0; i < MR; i++) for (int j = 0; j < NR; j++) acc[i][j] = 0;
  for (int k = 0; k < kc; k++)
    for (int i = 0; i < MR; i++)
      for (int j = 0; j < NR; j++) acc[i][j] = std::fma(a[k * MR + i], b[k * NR + j], acc[i][j]);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] = load ? C[(size_t)i * ldc + j] + acc[i][j] : acc[i][j];
}

#if defined(__AVX2__) && defined(__FMA__)
void kernel_avx2(int kc, const float* a, const float* b, float* C, int ldc, int m, int n, bool load) {
  __m256 c[MR][2];
  for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm256_setzero_ps();
  for (int k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b + k * NR), b1 = _mm256_loadu_ps(b + k * NR + 8);
    for (int i = 0; i < MR; i++) {
      __m256 ai = _mm256_broadcast_ss(a + k * MR + i);
      c[i][0] = _mm256_fmadd_ps(ai, b0, c[i][0]);
      c[i][1] = _mm256_fmadd_ps(ai, b1, c[i][1]);
    }
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; i++) {
      float* ci = C + (size_t)i * ldc;
      if (load) { c[i][0] = _mm256_add_ps(_mm256_loadu_ps(ci), c[i][0]); c[i][1] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), c[i][1]); }
      _mm256_storeu_ps(ci, c[i][0]); _mm256_storeu_ps(ci + 8, c[i][1]);
    }
    return;
  }
  alignas(32) float t[MR][NR];
  for (int i = 0; i < MR; i++) { _mm256_store_ps(t[i], c[i][0]); _mm256_store_ps(t[i] + 8, c[i][1]); }
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] = load ? C[(size_t)i * ldc + j] + t[i][j] : t[i][j];
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
// AVX-512 variant: same per-element arithmetic (one FMA chain per element), 16 lanes per register.
__attribute__((target("avx512f"))) void kernel_avx512(int kc, const float* a, const float* b, float* C, int ldc, int m, int n, bool load) {
  __m512 c[MR];
  for (int i = 0; i < MR; i++) c[i] = _mm512_setzero_ps();
  for (int k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(b + k * NR);
    for (int i = 0; i < MR; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[k * MR + i]), b0, c[i]);
  }
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; i++) {
      float* ci = C + (size_t)i * ldc;
      if (load) c[i] = _mm512_add_ps(_mm512_loadu_ps(ci), c[i]);
      _mm512_storeu_ps(ci, c[i]);
    }
    return;
  }
  alignas(64) float t[MR][NR];
  for (int i = 0; i < MR; i++) _mm512_store_ps(t[i], c[i]);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] = load ? C[(size_t)i * ldc + j] + t[i][j] : t[i][j];
}
#endif

typedef void (*FloatKernel)(int, const float*, const float*, float*, int, int, int, bool);

FloatKernel pick_float_kernel(const char** name) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) { *name = "avx512"; return kernel_avx512; }
#endif
#if defined(__AVX2__) && defined(__FMA__)
  *name = "avx2"; return kernel_avx2;
#else
  *name = "generic"; return kernel_generic<float>;
#endif
}
const char* g_kernel_name = nullptr;
FloatKernel g_float_kernel = pick_float_kernel(&g_kernel_name);

template <typename T> inline void run_kernel(int kc, const T* a, const T* b, T* C, int ldc, int m, int n, bool load) {
  kernel_generic<T>(kc, a, b, C, ldc, m, n, load);
}
template <> inline void run_kernel<float>(int kc, const float* a, const float* b, float* C, int ldc, int m, int n, bool load) {
  g_float_kernel(kc, a, b, C, ldc, m, n, load);
}

// Pack op(A)[i0:i0+mc, k0:k0+kc] into MR-row panels: panel p, k, r -> buf[p*kc*MR + k*MR + r].
template <typename T>
void pack_a(bool transA, const T* A, int lda, int i0, int mc, int k0, int kc, T* buf) {
  for (int p = 0; p < mc; p += MR) {
    T* dst = buf + (size_t)(p / MR) * kc * MR;
    int rows = std::min(MR, mc - p);
    if (!transA) {
      for (int r = 0; r < MR; r++) {
        if (r < rows) { const T* src = A + (size_t)(i0 + p + r) * lda + k0; for (int k = 0; k < kc; k++) dst[k * MR + r] = src[k]; }
        else for (int k = 0; k < kc; k++) dst[k * MR + r] = 0;
      }
    } else {
      for (int k = 0; k < kc; k++) {
        const T* src = A + (size_t)(k0 + k) * lda + i0 + p;
        for (int r = 0; r < MR; r++) dst[k * MR + r] = r < rows ? src[r] : 0;
      }
    }
  }
}

// Pack op(B)[k0:k0+kc, j0:j0+nc] into NR-column panels: panel q, k, c -> buf[q*kc*NR + k*NR + c].
template <typename T>
void pack_b(bool transB, const T* B, int ldb, int k0, int kc, int j0, int nc, T* buf) {
  for (int q = 0; q < nc; q += NR) {
    T* dst = buf + (size_t)(q / NR) * kc * NR;
    int cols = std::min(NR, nc - q);
    if (!transB) {
      for (int k = 0; k < kc; k++) {
        const T* src = B + (size_t)(k0 + k) * ldb + j0 + q;
        if (cols == NR) memcpy(dst + k * NR, src, NR * sizeof(T));
        else for (int c = 0; c < NR; c++) dst[k * NR + c] = c < cols ? src[c] : 0;
      }
    } else {
      for (int c = 0; c < NR; c++) {
        if (c < cols) { const T* src = B + (size_t)(j0 + q + c) * ldb + k0; for (int k = 0; k < kc; k++) dst[k * NR + c] = src[k]; }
        else for (int k = 0; k < kc; k++) dst[k * NR + c] = 0;
      }
    }
  }
}

template <typename T>
struct Scratch {
  std::vector<T> a, b;
  void ensure() { if (a.empty()) { a.resize((size_t)MC * KC + 64); b.resize((size_t)KC * NC + 64); } }
};
template <typename T> Scratch<T>& scratch() { static thread_local Scratch<T> s; s.ensure(); return s; }

template <typename T>
void tile(bool transA, bool transB, int M, int N, int K, const T* A, int lda, const T* B, int ldb,
          T* C, int ldc, bool accumulate, int i0, int j0) {
  Scratch<T>& s = scratch<T>();
  int mc = std::min(MC, M - i0), nc = std::min(NC, N - j0);
  if (K == 0) {
    if (!accumulate) for (int i = 0; i < mc; i++) for (int j = 0; j < nc; j++) C[(size_t)(i0 + i) * ldc + j0 + j] = 0;
    return;
  }
  for (int k0 = 0; k0 < K; k0 += KC) {
    int kc = std::min(KC, K - k0);
    pack_a(transA, A, lda, i0, mc, k0, kc, s.a.data());
    pack_b(transB, B, ldb, k0, kc, j0, nc, s.b.data());
    bool load = accumulate || k0 > 0;
    for (int q = 0; q < nc; q += NR)
      for (int p = 0; p < mc; p += MR)
        run_kernel<T>(kc, s.a.data() + (size_t)(p / MR) * kc * MR, s.b.data() + (size_t)(q / NR) * kc * NR,
                      C + (size_t)(i0 + p) * ldc + j0 + q, ldc, std::min(MR, mc - p), std::min(NR, nc - q), load);
  }
}

}  // namespace

template <typename T>
void gemm(bool transA, bool transB, int M, int N, int K, const T* A, int lda, const T* B, int ldb,
          T* C, int ldc, bool accumulate, bool parallel) {
  if (M <= 0 || N <= 0) return;
  int tm = (M + MC - 1) / MC, tn = (N + NC - 1) / NC, nt = tm * tn;
  if (parallel && nt > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < nt; t++) tile(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, (t / tn) * MC, (t % tn) * NC);
  } else {
    for (int t = 0; t < nt; t++) tile(transA, transB, M, N, K, A, lda, B, ldb, C, ldc, accumulate, (t / tn) * MC, (t % tn) * NC);
  }
}

template void gemm<float>(bool, bool, int, int, int, const float*, int, const float*, int, float*, int, bool, bool);
template void gemm<double>(bool, bool, int, int, int, const double*, int, const double*, int, double*, int, bool, bool);

const char* gemm_kernel_name() { return g_kernel_name; }

}}  // namespace flame::cpu
