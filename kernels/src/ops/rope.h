// Rotary position embedding, Megatron/NeoX "rotate half" form (not interleaved), applied to the
// full head dimension d: for i < d/2, theta_i = base^(-2i/d),
//   y[i] = x[i] cos(p theta_i) - x[i+d/2] sin(p theta_i);  y[i+d/2] = x[i+d/2] cos + x[i] sin.
#pragma once
#include "common.h"
#include <vector>
namespace flame {
struct RopeTable {
  int S = 0, half = 0;
  std::vector<real> cos, sin;  // [S, half]
  void build(int S, int headDim, double base);
};
// In place on q or k rows: x is [B*S rows, stride ld], heads at column offset col0 + h*d.
void rope_forward(real* x, int B, int S, int ld, int col0, int H, int d, const RopeTable& tab);
// Backward of the rotation (its transpose): rotates by -theta, in place on the gradient.
void rope_backward(real* dx, int B, int S, int ld, int col0, int H, int d, const RopeTable& tab);
}
