// AdamW exactly as apex FusedAdam with adam_w_mode (what Megatron uses), in fp32:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   update = (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p;  p -= lr * update
// Weight decay is 0 for 1-D parameters (norm weights), as Megatron's no_wd_decay_cond.
#pragma once
#include "common.h"
#include <cmath>
namespace flame {
inline void adamw_update(real* p, const real* g, real* m, real* v, size_t n, double lr, double b1, double b2,
                         double eps, double wd, long step) {
  const real bc1 = (real)(1.0 - std::pow(b1, (double)step)), bc2 = (real)(1.0 - std::pow(b2, (double)step));
  const real B1 = (real)b1, B2 = (real)b2, EPS = (real)eps, WD = (real)wd, LR = (real)lr;
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    real gi = g[i];
    m[i] = B1 * m[i] + ((real)1 - B1) * gi;
    v[i] = B2 * v[i] + ((real)1 - B2) * gi * gi;
    real denom = std::sqrt(v[i] / bc2) + EPS;
    real upd = (m[i] / bc1) / denom + WD * p[i];
    p[i] = p[i] - LR * upd;
  }
}
}
