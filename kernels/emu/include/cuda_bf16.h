// bfloat16 for the CPU emulation of the CUDA backend (see ../README.md): the storage type and the
// conversions the backend uses, with the rounding the GPU performs (round to nearest, ties to even;
// NaN stays a quiet NaN). Deliberately small: anything else the backend starts to use must be
// added here, where it is checked against the GPU's definition, not picked up silently.
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
  uint16_t __x;
};
struct __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  __nv_bfloat16 r;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    r.__x = (uint16_t)((u >> 16) | 0x40u);  // quiet NaN, sign kept
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);  // ties to even; overflow to infinity is the carry into the exponent
    r.__x = (uint16_t)(u >> 16);
  }
  return r;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) {
  const uint32_t u = (uint32_t)b.__x << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi) { return __nv_bfloat162{__float2bfloat16(lo), __float2bfloat16(hi)}; }
