// Mixture-of-Experts MLP (Megatron MoELayer as configured by FLAME-MoE):
//   out[t] = sum_{j<k} gate[t,j] * Expert_{idx[t,j]}(x[t]) + Shared(x[t])
// Expert_e and Shared are SwiGLU MLPs: fc1 [2f, h] -> silu(x0) * x1 -> fc2 [h, f]; the shared
// expert (width s = 2 * moeFfnHiddenSize in FLAME-MoE) has no gate.
#pragma once
#include "common.h"
#include "ops/router.h"
#include <vector>
namespace flame {

struct MoeWeights {
  const real* router;  // [E, h]
  const real* fc1;     // [E, 2f, h]
  const real* fc2;     // [E, h, f]
  const real* sfc1;    // [2s, h] (null when s = 0)
  const real* sfc2;    // [h, s]
};
struct MoeGrads { real *router, *fc1, *fc2, *sfc1, *sfc2; };
struct MoeDims { int T, h, E, k, f, s; double auxCoeff, zCoeff; };

namespace ref {
// Naive per-token reference of the forward: router, top-k, per-token expert MLPs, combine, losses.
RouterLosses moe_forward(real* out, int32_t* idx, real* gate, const real* x, const MoeWeights& w, const MoeDims& d);
}

namespace cpu {
// Saved activations of the grouped implementation (one per MoE layer).
struct MoeActs {
  std::vector<real> logits, probs, lse, gate;      // [T,E] [T,E] [T] [T,k]
  std::vector<int32_t> idx, counts, offsets;       // [T,k] [E] [E+1]
  std::vector<int32_t> rowTok, tokRow;             // grouped row -> token; (t,j) -> grouped row
  std::vector<real> xg, h1, act, y;                // [Tk,h] [Tk,2f] [Tk,f] [Tk,h] grouped by expert
  std::vector<real> sh1, sact;                     // shared expert [T,2s] [T,s]
  std::vector<real> dgate, dy, dxg, dlogits, dsa, dsh;  // backward scratch, kept to avoid re-allocation
  RouterLosses losses;
};
// Tokens are sorted by expert (counting sort, stable in (token, slot) order) and each expert runs
// one GEMM over its rows; experts are spread over threads, each writing disjoint rows.
void moe_forward(real* out, MoeActs& a, const real* x, const MoeWeights& w, const MoeDims& d);
// dx (accumulates +=) and weight grads (accumulate) from dout. lossScale scales aux/z gradients.
void moe_backward(real* dx, const MoeGrads& g, const real* dout, const real* x, const MoeWeights& w,
                  MoeActs& a, const MoeDims& d, double lossScale);
}
}
