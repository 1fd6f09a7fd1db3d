// SwiGLU activation as in Megatron (gated_linear_unit + silu): fc1 output [N, 2f] is split into
// x0 = columns [0, f) and x1 = columns [f, 2f); act = silu(x0) * x1, [N, f].
#pragma once
#include "common.h"
namespace flame {
void swiglu_forward(real* act, const real* h, int N, int f);
// dh (overwritten) from dact.
void swiglu_backward(real* dh, const real* dact, const real* h, int N, int f);
// Single-threaded variants for use inside an outer parallel loop (per expert).
void swiglu_forward_st(real* act, const real* h, int N, int f);
void swiglu_backward_st(real* dh, const real* dact, const real* h, int N, int f);
}
