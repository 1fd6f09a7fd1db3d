// Causal multi-head self-attention core (after the qkv projection and RoPE, before the output
// projection). qkv rows are [q | k | v], each H heads of d contiguous values; scale = 1/sqrt(d).
// Megatron's fused qkv weight interleaves heads ([q_h k_h v_h] per group); we keep q, k, v blocks
// (documented in kernels/README.md) -- the function is the same, only the storage order differs.
#pragma once
#include "common.h"
namespace flame {
namespace ref {
// Readable reference: materialises P = softmax(QK^T * scale + causal mask) per (b, h).
void attention_forward(real* out, const real* qkv, int B, int S, int H, int d);
void attention_backward(real* dqkv, const real* dout, const real* qkv, int B, int S, int H, int d);
}
namespace cpu {
// Optimised: stores only the row log-sum-exp (lse [B, H, S]) and recomputes P in the backward
// (memory O(S) per head instead of O(S^2)); parallel over (b, h), each writing disjoint slices.
void attention_forward(real* out, real* lse, const real* qkv, int B, int S, int H, int d);
void attention_backward(real* dqkv, const real* dout, const real* qkv, const real* out, const real* lse, int B, int S, int H, int d);
}
}
