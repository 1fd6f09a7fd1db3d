#include "ops/rmsnorm.h"
#include <cmath>
namespace flame {

void rmsnorm_forward(real* y, real* rstd, const real* x, const real* w, int T, int C, double eps) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++) {
    const real* xt = x + (size_t)t * C; real* yt = y + (size_t)t * C;
    real ss = 0;
    for (int c = 0; c < C; c++) ss += xt[c] * xt[c];
    real r = (real)(1.0 / std::sqrt((double)(ss / C) + eps));
    rstd[t] = r;
    for (int c = 0; c < C; c++) yt[c] = xt[c] * r * w[c];
  }
}

void rmsnorm_backward(real* dx, real* dw, const real* dy, const real* x, const real* w, const real* rstd, int T, int C) {
  // dx = r * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * r
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++) {
    const real* xt = x + (size_t)t * C; const real* dyt = dy + (size_t)t * C; real* dxt = dx + (size_t)t * C;
    real r = rstd[t], dot = 0;
    for (int c = 0; c < C; c++) dot += dyt[c] * w[c] * xt[c] * r;
    dot /= C;
    for (int c = 0; c < C; c++) dxt[c] += r * (dyt[c] * w[c] - xt[c] * r * dot);
  }
  // dw[c] = sum_t dy * xhat: columns are split over threads and summed over t in order, so the
  // result does not depend on the thread count.
  constexpr int CB = 64;
  int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nb; b++) {
    int c0 = b * CB, c1 = c0 + CB < C ? c0 + CB : C;
    real acc[CB] = {0};
    for (int t = 0; t < T; t++) {
      const real* xt = x + (size_t)t * C; const real* dyt = dy + (size_t)t * C; real r = rstd[t];
      for (int c = c0; c < c1; c++) acc[c - c0] += dyt[c] * xt[c] * r;
    }
    for (int c = c0; c < c1; c++) dw[c] += acc[c - c0];
  }
}
}
