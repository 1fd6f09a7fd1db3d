// Softmax cross-entropy on one row of logits (vocab V):
//   loss = logsumexp(z) - z[target];  dz = (softmax(z) - onehot(target)) * scale
// z is overwritten (with dz when grad, else with exp(z - max)).
// Also reports the arg-max (lowest id on ties) for greedy checks in evaluation.
// The reductions are vectorised (`omp simd`): a fixed order per binary, so still deterministic.
#pragma once
#include "common.h"
#include "ops/fastexp.h"
#include <cmath>
namespace flame {
inline double crossentropy_row(real* z, int V, int target, real scale, bool grad, int* argmax) {
  real m = z[0];
#pragma omp simd reduction(max : m)
  for (int i = 0; i < V; i++) m = z[i] > m ? z[i] : m;
  if (argmax) { int am = 0; while (z[am] != m) am++; *argmax = am; }
  // z <- exp(z - m) in place (one exp pass serves both the loss and the gradient)
  const real zt = z[target];
  real s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < V; i++) { real e = fexp(z[i] - m); z[i] = e; s += e; }
  real lse = m + std::log(s);
  double loss = (double)lse - (double)zt;
  if (grad) {
    real inv = scale / s;
#pragma omp simd
    for (int i = 0; i < V; i++) z[i] *= inv;
    z[target] -= scale;
  }
  return loss;
}
}
