#include "ops/moe.h"
#include <cmath>
#include <algorithm>
#include <vector>
namespace flame { namespace ref {

static void swiglu_mlp(real* out, const real* x, const real* fc1, const real* fc2, int h, int f) {
  std::vector<real> a(f);
  for (int j = 0; j < f; j++) {
    real x0 = 0, x1 = 0;
    for (int c = 0; c < h; c++) { x0 += fc1[(size_t)j * h + c] * x[c]; x1 += fc1[(size_t)(f + j) * h + c] * x[c]; }
    a[j] = x0 / ((real)1 + std::exp(-x0)) * x1;
  }
  for (int c = 0; c < h; c++) { real s = 0; for (int j = 0; j < f; j++) s += fc2[(size_t)c * f + j] * a[j]; out[c] = s; }
}

RouterLosses moe_forward(real* out, int32_t* idx, real* gate, const real* x, const MoeWeights& w, const MoeDims& d) {
  std::vector<real> logits((size_t)d.T * d.E), probs((size_t)d.T * d.E), y(d.h);
  for (int t = 0; t < d.T; t++)
    for (int e = 0; e < d.E; e++) {
      real s = 0; for (int c = 0; c < d.h; c++) s += w.router[(size_t)e * d.h + c] * x[(size_t)t * d.h + c];
      logits[(size_t)t * d.E + e] = s;
    }
  // Independent of ops/router.cpp on purpose: softmax, a full sort for top-k, and the aux loss in
  // its "E * sum_e f_e * Pbar_e" form.
  RouterLosses L;
  std::vector<double> pbar(d.E, 0.0), f(d.E, 0.0);
  double zsum = 0;
  for (int t = 0; t < d.T; t++) {
    const real* l = &logits[(size_t)t * d.E]; real* p = &probs[(size_t)t * d.E];
    double m = l[0]; for (int e = 1; e < d.E; e++) m = std::max(m, (double)l[e]);
    double s = 0; for (int e = 0; e < d.E; e++) s += std::exp(l[e] - m);
    for (int e = 0; e < d.E; e++) { p[e] = (real)(std::exp(l[e] - m) / s); pbar[e] += p[e] / d.T; }
    double lz = m + std::log(s); zsum += lz * lz;
    std::vector<int> order(d.E); for (int e = 0; e < d.E; e++) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    for (int j = 0; j < d.k; j++) { idx[(size_t)t * d.k + j] = order[j]; gate[(size_t)t * d.k + j] = p[order[j]]; f[order[j]] += 1.0 / ((double)d.T * d.k); }
  }
  for (int e = 0; e < d.E; e++) L.aux += d.auxCoeff * d.E * f[e] * pbar[e];
  L.z = d.zCoeff * zsum / d.T;
  for (int t = 0; t < d.T; t++) {
    real* o = out + (size_t)t * d.h;
    for (int c = 0; c < d.h; c++) o[c] = 0;
    for (int j = 0; j < d.k; j++) {
      int e = idx[(size_t)t * d.k + j];
      swiglu_mlp(y.data(), x + (size_t)t * d.h, w.fc1 + (size_t)e * 2 * d.f * d.h, w.fc2 + (size_t)e * d.h * d.f, d.h, d.f);
      for (int c = 0; c < d.h; c++) o[c] += gate[(size_t)t * d.k + j] * y[c];
    }
    if (d.s > 0) {
      swiglu_mlp(y.data(), x + (size_t)t * d.h, w.sfc1, w.sfc2, d.h, d.s);
      for (int c = 0; c < d.h; c++) o[c] += y[c];
    }
  }
  return L;
}
}}
