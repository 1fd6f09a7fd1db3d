// Grouped MoE on the CPU: route, sort (token, slot) pairs by expert, one GEMM per expert.
#include "ops/moe.h"
#include "ops/permute.h"
#include "ops/swiglu.h"
#include "cpu/gemm.h"
#include <algorithm>
#include <cstring>
namespace flame { namespace cpu {

static void resize(MoeActs& a, const MoeDims& d) {
  size_t T = d.T, Tk = (size_t)d.T * d.k;
  a.logits.resize(T * d.E); a.probs.resize(T * d.E); a.lse.resize(T); a.gate.resize(Tk);
  a.idx.resize(Tk); a.counts.resize(d.E); a.offsets.resize(d.E + 1);
  a.rowTok.resize(Tk); a.tokRow.resize(Tk);
  a.xg.resize(Tk * d.h); a.h1.resize(Tk * 2 * d.f); a.act.resize(Tk * d.f); a.y.resize(Tk * d.h);
  if (d.s > 0) { a.sh1.resize(T * 2 * d.s); a.sact.resize(T * d.s); }
}

void moe_forward(real* out, MoeActs& a, const real* x, const MoeWeights& w, const MoeDims& d) {
  resize(a, d);
  const int T = d.T, h = d.h, E = d.E, k = d.k, f = d.f;
  gemm<real>(false, true, T, E, h, x, h, w.router, h, a.logits.data(), E, false);
  a.losses = router_forward(a.logits.data(), a.probs.data(), a.lse.data(), a.idx.data(), a.gate.data(), a.counts.data(),
                            T, E, k, d.auxCoeff, d.zCoeff);
  // counting sort by expert; within an expert rows keep (token, slot) order
  build_expert_permutation(a.idx.data(), T, k, E, a.counts.data(), a.offsets.data(), a.rowTok.data(), a.tokRow.data());
  const int Tk = T * k;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < Tk; r++) memcpy(&a.xg[(size_t)r * h], x + (size_t)a.rowTok[r] * h, h * sizeof(real));
#pragma omp parallel for schedule(dynamic, 1)
  for (int e = 0; e < E; e++) {
    int r0 = a.offsets[e], n = a.counts[e];
    if (n == 0) continue;
    gemm<real>(false, true, n, 2 * f, h, &a.xg[(size_t)r0 * h], h, w.fc1 + (size_t)e * 2 * f * h, h, &a.h1[(size_t)r0 * 2 * f], 2 * f, false, false);
    swiglu_forward_st(&a.act[(size_t)r0 * f], &a.h1[(size_t)r0 * 2 * f], n, f);
    gemm<real>(false, true, n, h, f, &a.act[(size_t)r0 * f], f, w.fc2 + (size_t)e * h * f, f, &a.y[(size_t)r0 * h], h, false, false);
  }
  if (d.s > 0) {
    gemm<real>(false, true, T, 2 * d.s, h, x, h, w.sfc1, h, a.sh1.data(), 2 * d.s, false);
    swiglu_forward(a.sact.data(), a.sh1.data(), T, d.s);
    gemm<real>(false, true, T, h, d.s, a.sact.data(), d.s, w.sfc2, d.s, out, h, false);
  }
  // combine: out[t] = sum_j gate * y[row(t,j)] (slot order) + shared[t]
#pragma omp parallel
  {
  std::vector<real> acc(h);  // keeps the sum order: experts first, then shared
#pragma omp for schedule(static)
  for (int t = 0; t < T; t++) {
    real* o = out + (size_t)t * h;
    std::fill(acc.begin(), acc.end(), (real)0);
    for (int j = 0; j < k; j++) {
      real g = a.gate[(size_t)t * k + j]; const real* y = &a.y[(size_t)a.tokRow[(size_t)t * k + j] * h];
      for (int c = 0; c < h; c++) acc[c] += g * y[c];
    }
    if (d.s > 0) for (int c = 0; c < h; c++) o[c] = acc[c] + o[c];
    else for (int c = 0; c < h; c++) o[c] = acc[c];
  }
  }
}

void moe_backward(real* dx, const MoeGrads& g, const real* dout, const real* x, const MoeWeights& w,
                  MoeActs& a, const MoeDims& d, double lossScale) {
  const int T = d.T, h = d.h, E = d.E, k = d.k, f = d.f, Tk = T * k;
  // shared expert
  if (d.s > 0) {
    a.dsa.resize((size_t)T * d.s); a.dsh.resize((size_t)T * 2 * d.s);
    std::vector<real>& dsa = a.dsa; std::vector<real>& dsh = a.dsh;
    gemm<real>(false, false, T, d.s, h, dout, h, w.sfc2, d.s, dsa.data(), d.s, false);
    gemm<real>(true, false, h, d.s, T, dout, h, a.sact.data(), d.s, g.sfc2, d.s, true);
    swiglu_backward(dsh.data(), dsa.data(), a.sh1.data(), T, d.s);
    gemm<real>(true, false, 2 * d.s, h, T, dsh.data(), 2 * d.s, x, h, g.sfc1, h, true);
    gemm<real>(false, false, T, h, 2 * d.s, dsh.data(), 2 * d.s, w.sfc1, h, dx, h, true);
  }
  // gate gradients and the gated output gradient per grouped row
  a.dgate.resize((size_t)Tk); a.dy.resize((size_t)Tk * h);
  std::vector<real>& dgate = a.dgate; std::vector<real>& dy = a.dy;
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++) {
    const real* dot = dout + (size_t)t * h;
    for (int j = 0; j < k; j++) {
      int r = a.tokRow[(size_t)t * k + j]; const real* y = &a.y[(size_t)r * h]; real* dyr = &dy[(size_t)r * h];
      real gj = a.gate[(size_t)t * k + j], s = 0;
      for (int c = 0; c < h; c++) { s += dot[c] * y[c]; dyr[c] = gj * dot[c]; }
      dgate[(size_t)t * k + j] = s;
    }
  }
  // experts: reuse xg as dx per grouped row once the weight gradient has consumed it
  a.dxg.resize((size_t)Tk * h);
  std::vector<real>& dxg = a.dxg;
#pragma omp parallel
  {
    std::vector<real> dact, dh1;
#pragma omp for schedule(dynamic, 1)
    for (int e = 0; e < E; e++) {
      int r0 = a.offsets[e], n = a.counts[e];
      if (n == 0) continue;
      dact.resize((size_t)n * f); dh1.resize((size_t)n * 2 * f);
      const real* dye = &dy[(size_t)r0 * h];
      gemm<real>(false, false, n, f, h, dye, h, w.fc2 + (size_t)e * h * f, f, dact.data(), f, false, false);
      gemm<real>(true, false, h, f, n, dye, h, &a.act[(size_t)r0 * f], f, g.fc2 + (size_t)e * h * f, f, true, false);
      swiglu_backward_st(dh1.data(), dact.data(), &a.h1[(size_t)r0 * 2 * f], n, f);
      gemm<real>(true, false, 2 * f, h, n, dh1.data(), 2 * f, &a.xg[(size_t)r0 * h], h, g.fc1 + (size_t)e * 2 * f * h, h, true, false);
      gemm<real>(false, false, n, h, 2 * f, dh1.data(), 2 * f, w.fc1 + (size_t)e * 2 * f * h, h, &dxg[(size_t)r0 * h], h, false, false);
    }
  }
  // un-permute: dx[t] += sum_j dxg[row(t,j)] in slot order
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++) {
    real* o = dx + (size_t)t * h;
    for (int j = 0; j < k; j++) { const real* s = &dxg[(size_t)a.tokRow[(size_t)t * k + j] * h]; for (int c = 0; c < h; c++) o[c] += s[c]; }
  }
  // router
  a.dlogits.resize((size_t)T * E);
  std::vector<real>& dlogits = a.dlogits;
  router_backward(dlogits.data(), a.probs.data(), a.lse.data(), a.idx.data(), dgate.data(), a.counts.data(), T, E, k,
                  d.auxCoeff, d.zCoeff, lossScale);
  gemm<real>(true, false, E, h, T, dlogits.data(), E, x, h, g.router, h, true);
  gemm<real>(false, false, T, h, E, dlogits.data(), E, w.router, h, dx, h, true);
}
}}
