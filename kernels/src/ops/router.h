// Megatron top-k router as configured by FLAME-MoE (router dtype fp32, pre-softmax top-k):
//   logits = x W_r^T;  P = softmax(logits) over all E experts;  (gate, idx) = topk(P, k)
//   gates are NOT renormalised; no capacity factor, no token dropping.
//   aux  = auxCoeff * E / (T^2 k) * sum_e (sum_t P[t,e]) * n_e      (switch load balancing)
//   z    = zCoeff * mean_t logsumexp(logits[t])^2                    (router z-loss)
// n_e = number of tokens routed to expert e (no gradient), T = tokens in the micro-batch.
// Ties in top-k go to the lower expert id; slots are ordered by descending probability.
#pragma once
#include "common.h"
namespace flame {
struct RouterLosses { double aux = 0, z = 0; };
// In: logits [T,E]. Out: probs [T,E], lse [T], idx [T,k], gate [T,k], counts [E].
RouterLosses router_forward(const real* logits, real* probs, real* lse, int32_t* idx, real* gate, int32_t* counts,
                            int T, int E, int k, double auxCoeff, double zCoeff);
// dlogits (overwritten) from dgate [T,k] plus the aux and z terms, each scaled by lossScale.
void router_backward(real* dlogits, const real* probs, const real* lse, const int32_t* idx, const real* dgate,
                     const int32_t* counts, int T, int E, int k, double auxCoeff, double zCoeff, double lossScale);
}
