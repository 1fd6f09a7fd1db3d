// RMSNorm (Megatron's RMSNorm, no bias): y = x / sqrt(mean(x^2) + eps) * w.
#pragma once
#include "common.h"
namespace flame {
// rstd[t] = 1/sqrt(mean_c x[t,c]^2 + eps) is saved for the backward.
void rmsnorm_forward(real* y, real* rstd, const real* x, const real* w, int T, int C, double eps);
// dx += ..., dw += ... (both accumulate).
void rmsnorm_backward(real* dx, real* dw, const real* dy, const real* x, const real* w, const real* rstd, int T, int C);
}
