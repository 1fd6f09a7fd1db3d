// Optimised CPU attention (semantics: ref::attention_* in ops/attention.cpp).
#include "ops/attention.h"
#include "cpu/gemm.h"
#include "ops/fastexp.h"
#include <algorithm>
#include <cmath>
#include <vector>

namespace flame { namespace cpu {

// Causal attention as blocked GEMMs per (batch, head), on the qkv buffer in place (row stride 3h):
// row blocks of RB queries against keys [0, r0 + RB) only, so the masked upper triangle costs at
// most one block. (b, h) pairs run in parallel; each owns its output slices, and dK / dV of a
// head accumulate over row blocks in a fixed order -> deterministic for any thread count.
namespace { constexpr int RB = 64; }

void attention_forward(real* out, real* lse, const real* qkv, int B, int S, int H, int d) {
  const int h = H * d; const real scale = (real)(1.0 / std::sqrt((double)d));
#pragma omp parallel
  {
    std::vector<real> P((size_t)RB * S);
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
      const int b = bh / H, hd = bh % H;
      const real* Q = qkv + (size_t)b * S * 3 * h + hd * d;
      const real* K = Q + h; const real* V = Q + 2 * h;
      for (int r0 = 0; r0 < S; r0 += RB) {
        const int rb = std::min(RB, S - r0), nc = r0 + rb;
        gemm<real>(false, true, rb, nc, d, Q + (size_t)r0 * 3 * h, 3 * h, K, 3 * h, P.data(), S, false, false);
        for (int r = 0; r < rb; r++) {
          const int i = r0 + r; real* p = &P[(size_t)r * S];
          real m = -INFINITY;
#pragma omp simd reduction(max : m)
          for (int j = 0; j <= i; j++) m = p[j] > m ? p[j] : m;
          m *= scale;
          real l = 0;
#pragma omp simd reduction(+ : l)
          for (int j = 0; j <= i; j++) { real e = fexp(p[j] * scale - m); p[j] = e; l += e; }
          const real inv = (real)1 / l;
#pragma omp simd
          for (int j = 0; j <= i; j++) p[j] *= inv;
          for (int j = i + 1; j < nc; j++) p[j] = 0;
          lse[(size_t)bh * S + i] = m + std::log(l);
        }
        gemm<real>(false, false, rb, d, nc, P.data(), S, V, 3 * h, out + (size_t)(b * S + r0) * h + hd * d, h, false, false);
      }
    }
  }
}

void attention_backward(real* dqkv, const real* dout, const real* qkv, const real* out, const real* lse, int B, int S, int H, int d) {
  const int h = H * d; const real scale = (real)(1.0 / std::sqrt((double)d));
#pragma omp parallel
  {
    std::vector<real> P((size_t)RB * S), dP((size_t)RB * S), D(RB);
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
      const int b = bh / H, hd = bh % H;
      const size_t rowBase = (size_t)b * S;
      const real* Q = qkv + rowBase * 3 * h + hd * d;
      const real* K = Q + h; const real* V = Q + 2 * h;
      real* dQ = dqkv + rowBase * 3 * h + hd * d; real* dK = dQ + h; real* dV = dQ + 2 * h;
      const real* dO = dout + rowBase * h + hd * d;
      const real* O = out + rowBase * h + hd * d;
      for (int j = 0; j < S; j++) for (int c = 0; c < d; c++) { dK[(size_t)j * 3 * h + c] = 0; dV[(size_t)j * 3 * h + c] = 0; }
      for (int r0 = 0; r0 < S; r0 += RB) {
        const int rb = std::min(RB, S - r0), nc = r0 + rb;
        gemm<real>(false, true, rb, nc, d, Q + (size_t)r0 * 3 * h, 3 * h, K, 3 * h, P.data(), S, false, false);
        gemm<real>(false, true, rb, nc, d, dO + (size_t)r0 * h, h, V, 3 * h, dP.data(), S, false, false);
        for (int r = 0; r < rb; r++) {
          const int i = r0 + r; real* p = &P[(size_t)r * S]; real* dp = &dP[(size_t)r * S];
          const real* dOi = dO + (size_t)i * h; const real* Oi = O + (size_t)i * h;
          real Di = 0; for (int c = 0; c < d; c++) Di += dOi[c] * Oi[c];
          const real L = lse[(size_t)bh * S + i];
#pragma omp simd
          for (int j = 0; j <= i; j++) { real pj = fexp(p[j] * scale - L); p[j] = pj; dp[j] = pj * (dp[j] - Di) * scale; }
          for (int j = i + 1; j < nc; j++) { p[j] = 0; dp[j] = 0; }
        }
        // dQ rows of this block are complete here; dK, dV accumulate over row blocks in order
        gemm<real>(false, false, rb, d, nc, dP.data(), S, K, 3 * h, dQ + (size_t)r0 * 3 * h, 3 * h, false, false);
        gemm<real>(true, false, nc, d, rb, dP.data(), S, Q + (size_t)r0 * 3 * h, 3 * h, dK, 3 * h, true, false);
        gemm<real>(true, false, nc, d, rb, P.data(), S, dO + (size_t)r0 * h, h, dV, 3 * h, true, false);
      }
    }
  }
}
}}  // namespace flame::cpu
