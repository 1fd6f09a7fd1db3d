// Readable reference attention (materialises P); the optimised version is cpu/attention.cpp.
#include "ops/attention.h"
#include <cmath>
#include <vector>
namespace flame { namespace ref {

void attention_forward(real* out, const real* qkv, int B, int S, int H, int d) {
  int h = H * d; real scale = (real)(1.0 / std::sqrt((double)d));
  std::vector<real> p(S);
  for (int b = 0; b < B; b++) for (int hd = 0; hd < H; hd++) for (int i = 0; i < S; i++) {
    const real* q = qkv + (size_t)(b * S + i) * 3 * h + hd * d;
    real m = -INFINITY;
    for (int j = 0; j <= i; j++) {
      const real* k = qkv + (size_t)(b * S + j) * 3 * h + h + hd * d;
      real s = 0; for (int c = 0; c < d; c++) s += q[c] * k[c];
      p[j] = s * scale; if (p[j] > m) m = p[j];
    }
    real l = 0; for (int j = 0; j <= i; j++) { p[j] = std::exp(p[j] - m); l += p[j]; }
    real* o = out + (size_t)(b * S + i) * h + hd * d;
    for (int c = 0; c < d; c++) o[c] = 0;
    for (int j = 0; j <= i; j++) {
      const real* v = qkv + (size_t)(b * S + j) * 3 * h + 2 * h + hd * d;
      for (int c = 0; c < d; c++) o[c] += p[j] / l * v[c];
    }
  }
}

void attention_backward(real* dqkv, const real* dout, const real* qkv, int B, int S, int H, int d) {
  int h = H * d; real scale = (real)(1.0 / std::sqrt((double)d));
  for (size_t i = 0; i < (size_t)B * S * 3 * h; i++) dqkv[i] = 0;
  std::vector<real> P((size_t)S * S), dP((size_t)S * S);
  for (int b = 0; b < B; b++) for (int hd = 0; hd < H; hd++) {
    auto Q = [&](int i) { return qkv + (size_t)(b * S + i) * 3 * h + hd * d; };
    auto K = [&](int i) { return qkv + (size_t)(b * S + i) * 3 * h + h + hd * d; };
    auto V = [&](int i) { return qkv + (size_t)(b * S + i) * 3 * h + 2 * h + hd * d; };
    for (int i = 0; i < S; i++) {
      real m = -INFINITY;
      for (int j = 0; j <= i; j++) { real s = 0; for (int c = 0; c < d; c++) s += Q(i)[c] * K(j)[c]; P[(size_t)i * S + j] = s * scale; if (s * scale > m) m = s * scale; }
      real l = 0; for (int j = 0; j <= i; j++) { P[(size_t)i * S + j] = std::exp(P[(size_t)i * S + j] - m); l += P[(size_t)i * S + j]; }
      for (int j = 0; j <= i; j++) P[(size_t)i * S + j] /= l;
    }
    for (int i = 0; i < S; i++) {
      const real* dO = dout + (size_t)(b * S + i) * h + hd * d;
      real rowdot = 0;
      for (int j = 0; j <= i; j++) {
        real s = 0; for (int c = 0; c < d; c++) s += dO[c] * V(j)[c];
        dP[(size_t)i * S + j] = s; rowdot += s * P[(size_t)i * S + j];
        real* dv = dqkv + (size_t)(b * S + j) * 3 * h + 2 * h + hd * d;
        for (int c = 0; c < d; c++) dv[c] += P[(size_t)i * S + j] * dO[c];
      }
      for (int j = 0; j <= i; j++) {
        real ds = P[(size_t)i * S + j] * (dP[(size_t)i * S + j] - rowdot) * scale;
        real* dq = dqkv + (size_t)(b * S + i) * 3 * h + hd * d;
        real* dk = dqkv + (size_t)(b * S + j) * 3 * h + h + hd * d;
        for (int c = 0; c < d; c++) { dq[c] += ds * K(j)[c]; dk[c] += ds * Q(i)[c]; }
      }
    }
  }
}
}}  // namespace flame::ref

