#include "ops/rope.h"
#include <cmath>
namespace flame {

void RopeTable::build(int S_, int d, double base) {
  S = S_; half = d / 2;
  cos.resize((size_t)S * half); sin.resize((size_t)S * half);
  for (int i = 0; i < half; i++) {
    // Megatron computes inv_freq = 1 / base^(arange(0, d, 2) / d) and the angles in fp32.
    float inv = (float)(1.0 / std::pow(base, (double)(2 * i) / d));
    for (int p = 0; p < S; p++) {
      float ang = (float)p * inv;
      cos[(size_t)p * half + i] = (real)std::cos((double)ang);
      sin[(size_t)p * half + i] = (real)std::sin((double)ang);
    }
  }
}

static void rotate(real* x, int B, int S, int ld, int col0, int H, int d, const RopeTable& tab, real sign) {
  int half = d / 2;
#pragma omp parallel for schedule(static)
  for (int bs = 0; bs < B * S; bs++) {
    int p = bs % S;
    const real* c = tab.cos.data() + (size_t)p * half; const real* s = tab.sin.data() + (size_t)p * half;
    for (int h = 0; h < H; h++) {
      real* v = x + (size_t)bs * ld + col0 + h * d;
      for (int i = 0; i < half; i++) {
        real a = v[i], b = v[i + half];
        v[i] = a * c[i] - sign * b * s[i];
        v[i + half] = b * c[i] + sign * a * s[i];
      }
    }
  }
}
void rope_forward(real* x, int B, int S, int ld, int col0, int H, int d, const RopeTable& tab) { rotate(x, B, S, ld, col0, H, d, tab, 1); }
void rope_backward(real* dx, int B, int S, int ld, int col0, int H, int d, const RopeTable& tab) { rotate(dx, B, S, ld, col0, H, d, tab, -1); }
}
