// Softmax cross-entropy on one row of logits (vocab V):
//   loss = logsumexp(z) - z[target];  dz = (softmax(z) - onehot(target)) * scale   (in place)
// Also reports the arg-max (lowest id on ties) for greedy checks in evaluation.
#pragma once
#include "common.h"
#include <cmath>
namespace flame {
inline double crossentropy_row(real* z, int V, int target, real scale, bool grad, int* argmax) {
  real m = z[0]; int am = 0;
  for (int i = 1; i < V; i++) if (z[i] > m) { m = z[i]; am = i; }
  real s = 0;
  for (int i = 0; i < V; i++) s += std::exp(z[i] - m);
  real lse = m + std::log(s);
  double loss = (double)lse - (double)z[target];
  if (argmax) *argmax = am;
  if (grad) {
    real inv = scale / s;
    for (int i = 0; i < V; i++) z[i] = std::exp(z[i] - m) * inv;
    z[target] -= scale;
  }
  return loss;
}
}
