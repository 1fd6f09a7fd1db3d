// Empirical fp32 FMA peak of this machine (GFLOP/s) on N threads: independent FMA chains in
// AVX-512 (if supported) or AVX2 registers. Used by bench.py to report achieved / peak.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <immintrin.h>
#include <omp.h>

__attribute__((target("avx512f"))) static double run512(long iters) {
  __m512 a[12]; __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], m, c);
  float s = 0; for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(a[i]);
  return s;
}
__attribute__((target("avx2,fma"))) static double run256(long iters) {
  __m256 a[12]; __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], m, c);
  alignas(32) float t[8]; float s = 0;
  for (int i = 0; i < 12; i++) { _mm256_store_ps(t, a[i]); for (float x : t) s += x; }
  return s;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  bool avx512 = __builtin_cpu_supports("avx512f");
  long iters = 100000000 / 12;
  double sink = 0;
  auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
  { sink += avx512 ? run512(iters) : run256(iters); }
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double flops = (double)threads * iters * 12 * (avx512 ? 16 : 8) * 2;
  printf("{\"isa\":\"%s\",\"threads\":%d,\"gflops\":%.1f,\"sink\":%g}\n", avx512 ? "avx512" : "avx2", threads, flops / dt / 1e9, sink > 0 ? 1.0 : 0.0);
}
