// exp for the hot loops (softmax in attention, router, cross-entropy; SiLU). glibc only offers
// vectorised expf under -ffast-math, which we avoid; this one is branch-free so loops vectorise:
// exp(x) = 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, p = degree-6 Taylor (rel. error ~2e-7, like
// expf's last bit or two). Arguments are clamped to [-87.3, 88.7] (exp(-inf) -> ~1e-38, not 0).
// Bitwise deterministic (plain arithmetic). The double build (gradient check) uses std::exp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include "common.h"
namespace flame {
inline float fexpf(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.7f ? 88.7f : x);
  float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest integer
  float r = x - n * 0.693145752f - n * 1.42860677e-06f;      // ln2 split in two for accuracy
  float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f + r * (0.00833333377f + r * 0.00138888892f)))));
  int32_t e = ((int32_t)n + 127) << 23;
  float s; std::memcpy(&s, &e, 4);
  return p * s;
}
inline float fexp(float x) { return fexpf(x); }
inline double fexp(double x) { return std::exp(x); }
}
