// Softmax cross-entropy on one row of logits (vocab V):
//   loss = logsumexp(z) - z[target];  dz = (softmax(z) - onehot(target)) * scale   (in place)
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
  real s = 0;
#pragma omp simd reduction(+ : s)
  for (int i = 0; i < V; i++) s += fexp(z[i] - m);
  real lse = m + std::log(s);
  double loss = (double)lse - (double)z[target];
  if (grad) {
    real inv = scale / s;
#pragma omp simd
    for (int i = 0; i < V; i++) z[i] = fexp(z[i] - m) * inv;
    z[target] -= scale;
  }
  return loss;
}
}
