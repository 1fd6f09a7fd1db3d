#include "ops/router.h"
#include <cmath>
#include "ops/fastexp.h"
#include <vector>
namespace flame {

RouterLosses router_forward(const real* logits, real* probs, real* lse, int32_t* idx, real* gate, int32_t* counts,
                            int T, int E, int k, double auxCoeff, double zCoeff) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++) {
    const real* l = logits + (size_t)t * E; real* p = probs + (size_t)t * E;
    real m = l[0]; for (int e = 1; e < E; e++) m = l[e] > m ? l[e] : m;
    real s = 0; for (int e = 0; e < E; e++) { p[e] = fexp(l[e] - m); s += p[e]; }
    real inv = (real)1 / s; for (int e = 0; e < E; e++) p[e] *= inv;
    lse[t] = m + std::log(s);
    // top-k by repeated arg-max; strict '>' keeps the lower id on ties
    uint64_t taken[4] = {0, 0, 0, 0};
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int e = 0; e < E; e++) {
        if (taken[e >> 6] >> (e & 63) & 1) continue;
        if (best < 0 || p[e] > p[best]) best = e;
      }
      taken[best >> 6] |= 1ull << (best & 63);
      idx[(size_t)t * k + j] = best; gate[(size_t)t * k + j] = p[best];
    }
  }
  for (int e = 0; e < E; e++) counts[e] = 0;
  for (size_t i = 0; i < (size_t)T * k; i++) counts[idx[i]]++;
  RouterLosses L;
  // column sums of P in token order (fixed order -> deterministic), in double
  std::vector<double> colsum(E, 0.0);
  for (int t = 0; t < T; t++) for (int e = 0; e < E; e++) colsum[e] += probs[(size_t)t * E + e];
  double a = 0; for (int e = 0; e < E; e++) a += colsum[e] * counts[e];
  L.aux = auxCoeff * E / ((double)T * T * k) * a;
  double z = 0; for (int t = 0; t < T; t++) z += (double)lse[t] * lse[t];
  L.z = zCoeff * z / T;
  return L;
}

void router_backward(real* dlogits, const real* probs, const real* lse, const int32_t* idx, const real* dgate,
                     const int32_t* counts, int T, int E, int k, double auxCoeff, double zCoeff, double lossScale) {
  real auxc = (real)(lossScale * auxCoeff * E / ((double)T * T * k));
  real zc = (real)(lossScale * zCoeff * 2.0 / T);
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; t++) {
    const real* p = probs + (size_t)t * E; real* dl = dlogits + (size_t)t * E;
    // dL/dP: aux term for every expert, gate gradient for the chosen ones
    for (int e = 0; e < E; e++) dl[e] = auxc * (real)counts[e];
    for (int j = 0; j < k; j++) dl[idx[(size_t)t * k + j]] += dgate[(size_t)t * k + j];
    real dot = 0; for (int e = 0; e < E; e++) dot += p[e] * dl[e];
    // softmax backward, plus z-loss: d(lse^2)/dlogits = 2 lse * P
    real zt = zc * lse[t];
    for (int e = 0; e < E; e++) dl[e] = p[e] * (dl[e] - dot) + zt * p[e];
  }
}
}
