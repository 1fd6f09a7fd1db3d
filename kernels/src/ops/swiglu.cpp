#include "ops/swiglu.h"
#include <cmath>
#include "ops/fastexp.h"
namespace flame {
static inline real sigmoid(real x) { return (real)1 / ((real)1 + fexp(-x)); }
static inline void fwd_row(real* a, const real* h, int f) {
  for (int j = 0; j < f; j++) { real x0 = h[j]; a[j] = x0 * sigmoid(x0) * h[f + j]; }
}
static inline void bwd_row(real* dh, const real* da, const real* h, int f) {
  for (int j = 0; j < f; j++) {
    real x0 = h[j], x1 = h[f + j], s = sigmoid(x0), silu = x0 * s;
    dh[j] = da[j] * x1 * s * ((real)1 + x0 * ((real)1 - s));
    dh[f + j] = da[j] * silu;
  }
}
void swiglu_forward(real* act, const real* h, int N, int f) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) fwd_row(act + (size_t)n * f, h + (size_t)n * 2 * f, f);
}
void swiglu_backward(real* dh, const real* dact, const real* h, int N, int f) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) bwd_row(dh + (size_t)n * 2 * f, dact + (size_t)n * f, h + (size_t)n * 2 * f, f);
}
void swiglu_forward_st(real* act, const real* h, int N, int f) { for (int n = 0; n < N; n++) fwd_row(act + (size_t)n * f, h + (size_t)n * 2 * f, f); }
void swiglu_backward_st(real* dh, const real* dact, const real* h, int N, int f) { for (int n = 0; n < N; n++) bwd_row(dh + (size_t)n * 2 * f, dact + (size_t)n * f, h + (size_t)n * 2 * f, f); }
}
