#include "ops/attention.h"
#include <cmath>
#include "ops/fastexp.h"
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

// Per (batch, head) the head's Q, K^T and V^T are copied into contiguous scratch so every inner
// loop runs over key positions j with unit stride (vectorises even for head dims of 8).
namespace {
struct HeadScratch {
  std::vector<real> q, kt, vt, s, p, dp, dkt, dvt;
  void load(const real* qkv, int b, int hd, int S, int h, int d) {
    q.resize((size_t)S * d); kt.resize((size_t)d * S); vt.resize((size_t)d * S);
    s.resize(S); p.resize(S); dp.resize(S);
    const real* base = qkv + (size_t)b * S * 3 * h;
    for (int j = 0; j < S; j++) {
      const real* r = base + (size_t)j * 3 * h + hd * d;
      for (int c = 0; c < d; c++) { q[(size_t)j * d + c] = r[c]; kt[(size_t)c * S + j] = r[h + c]; vt[(size_t)c * S + j] = r[2 * h + c]; }
    }
  }
  // s[j] = scale * q_i . k_j for j <= i
  void scores(int i, int S, int d, real scale) {
    real* sp = s.data(); const real* qi = &q[(size_t)i * d];
    for (int j = 0; j <= i; j++) sp[j] = 0;
    for (int c = 0; c < d; c++) {
      const real* kc = &kt[(size_t)c * S]; real qc = qi[c] * scale;
#pragma omp simd
      for (int j = 0; j <= i; j++) sp[j] += qc * kc[j];
    }
  }
};
}  // namespace

void attention_forward(real* out, real* lse, const real* qkv, int B, int S, int H, int d) {
  int h = H * d; real scale = (real)(1.0 / std::sqrt((double)d));
#pragma omp parallel
  {
    HeadScratch w;
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, hd = bh % H;
      w.load(qkv, b, hd, S, h, d);
      for (int i = 0; i < S; i++) {
        w.scores(i, S, d, scale);
        real* sp = w.s.data(); real m = sp[0];
#pragma omp simd reduction(max : m)
        for (int j = 0; j <= i; j++) m = sp[j] > m ? sp[j] : m;
        real l = 0;
#pragma omp simd reduction(+ : l)
        for (int j = 0; j <= i; j++) { sp[j] = fexp(sp[j] - m); l += sp[j]; }
        real inv = (real)1 / l;
        real* o = out + (size_t)(b * S + i) * h + hd * d;
        for (int c = 0; c < d; c++) {
          const real* vc = &w.vt[(size_t)c * S]; real acc = 0;
#pragma omp simd reduction(+ : acc)
          for (int j = 0; j <= i; j++) acc += sp[j] * vc[j];
          o[c] = acc * inv;
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
    HeadScratch w;
#pragma omp for schedule(dynamic, 1)
    for (int bh = 0; bh < B * H; bh++) {
      int b = bh / H, hd = bh % H;
      w.load(qkv, b, hd, S, h, d);
      w.dkt.assign((size_t)d * S, 0); w.dvt.assign((size_t)d * S, 0);
      for (int i = 0; i < S; i++) {
        const real* dO = dout + (size_t)(b * S + i) * h + hd * d;
        const real* O = out + (size_t)(b * S + i) * h + hd * d;
        real D = 0; for (int c = 0; c < d; c++) D += dO[c] * O[c];
        real L = lse[(size_t)bh * S + i];
        w.scores(i, S, d, scale);
        real* sp = w.s.data(); real* dp = w.dp.data();
        for (int j = 0; j <= i; j++) dp[j] = 0;
        for (int c = 0; c < d; c++) {
          const real* vc = &w.vt[(size_t)c * S]; real g = dO[c];
#pragma omp simd
          for (int j = 0; j <= i; j++) dp[j] += g * vc[j];
        }
        // sp <- p_j, dp <- ds_j = p_j (dp_j - D) * scale
#pragma omp simd
        for (int j = 0; j <= i; j++) { real pj = fexp(sp[j] - L); sp[j] = pj; dp[j] = pj * (dp[j] - D) * scale; }
        real* dqo = dqkv + (size_t)(b * S + i) * 3 * h + hd * d;
        const real* qi = &w.q[(size_t)i * d];
        for (int c = 0; c < d; c++) {
          const real* kc = &w.kt[(size_t)c * S]; real* dkc = &w.dkt[(size_t)c * S]; real* dvc = &w.dvt[(size_t)c * S];
          real acc = 0, qc = qi[c], g = dO[c];
#pragma omp simd reduction(+ : acc)
          for (int j = 0; j <= i; j++) { acc += dp[j] * kc[j]; dkc[j] += dp[j] * qc; dvc[j] += sp[j] * g; }
          dqo[c] = acc;
        }
      }
      for (int j = 0; j < S; j++) {
        real* dko = dqkv + (size_t)(b * S + j) * 3 * h + h + hd * d;
        real* dvo = dqkv + (size_t)(b * S + j) * 3 * h + 2 * h + hd * d;
        for (int c = 0; c < d; c++) { dko[c] = w.dkt[(size_t)c * S + j]; dvo[c] = w.dvt[(size_t)c * S + j]; }
      }
    }
  }
}
}}  // namespace flame::cpu
