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

namespace flame { namespace cpu {

void attention_forward(real* out, real* lse, const real* qkv, int B, int S, int H, int d) {
  int h = H * d; real scale = (real)(1.0 / std::sqrt((double)d));
#pragma omp parallel
  {
    std::vector<real> p(S);
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, hd = bh % H;
      const real* base = qkv + (size_t)b * S * 3 * h;
      for (int i = 0; i < S; i++) {
        const real* q = base + (size_t)i * 3 * h + hd * d;
        real m = -INFINITY;
        for (int j = 0; j <= i; j++) {
          const real* k = base + (size_t)j * 3 * h + h + hd * d;
          real s = 0; for (int c = 0; c < d; c++) s += q[c] * k[c];
          s *= scale; p[j] = s; m = s > m ? s : m;
        }
        real l = 0; for (int j = 0; j <= i; j++) { p[j] = std::exp(p[j] - m); l += p[j]; }
        real inv = (real)1 / l;
        real* o = out + (size_t)(b * S + i) * h + hd * d;
        for (int c = 0; c < d; c++) o[c] = 0;
        for (int j = 0; j <= i; j++) {
          const real* v = base + (size_t)j * 3 * h + 2 * h + hd * d; real w = p[j] * inv;
          for (int c = 0; c < d; c++) o[c] += w * v[c];
        }
        lse[(size_t)bh * S + i] = m + std::log(l);
      }
    }
  }
}

void attention_backward(real* dqkv, const real* dout, const real* qkv, const real* out, const real* lse, int B, int S, int H, int d) {
  int h = H * d; real scale = (real)(1.0 / std::sqrt((double)d));
#pragma omp parallel
  {
    std::vector<real> p(S), dk((size_t)S * d), dv((size_t)S * d), dq(d);
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, hd = bh % H;
      const real* base = qkv + (size_t)b * S * 3 * h;
      for (size_t i = 0; i < (size_t)S * d; i++) dk[i] = dv[i] = 0;
      for (int i = 0; i < S; i++) {
        const real* q = base + (size_t)i * 3 * h + hd * d;
        const real* dO = dout + (size_t)(b * S + i) * h + hd * d;
        const real* O = out + (size_t)(b * S + i) * h + hd * d;
        real D = 0; for (int c = 0; c < d; c++) D += dO[c] * O[c];
        real L = lse[(size_t)bh * S + i];
        for (int c = 0; c < d; c++) dq[c] = 0;
        for (int j = 0; j <= i; j++) {
          const real* k = base + (size_t)j * 3 * h + h + hd * d;
          const real* v = base + (size_t)j * 3 * h + 2 * h + hd * d;
          real s = 0, dp = 0;
          for (int c = 0; c < d; c++) { s += q[c] * k[c]; dp += dO[c] * v[c]; }
          real pj = std::exp(s * scale - L);
          real ds = pj * (dp - D) * scale;
          real* dkj = dk.data() + (size_t)j * d; real* dvj = dv.data() + (size_t)j * d;
          for (int c = 0; c < d; c++) { dq[c] += ds * k[c]; dkj[c] += ds * q[c]; dvj[c] += pj * dO[c]; }
        }
        real* dqo = dqkv + (size_t)(b * S + i) * 3 * h + hd * d;
        for (int c = 0; c < d; c++) dqo[c] = dq[c];
      }
      for (int j = 0; j < S; j++) {
        real* dko = dqkv + (size_t)(b * S + j) * 3 * h + h + hd * d;
        real* dvo = dqkv + (size_t)(b * S + j) * 3 * h + 2 * h + hd * d;
        for (int c = 0; c < d; c++) { dko[c] = dk[(size_t)j * d + c]; dvo[c] = dv[(size_t)j * d + c]; }
      }
    }
  }
}
}}  // namespace flame::cpu
