// Basics of the CUDA backend: error checks that raise FlameError, bf16 conversions, device buffers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include "common.h"

namespace flame { namespace cuda {

typedef __nv_bfloat16 bf16;

[[noreturn]] void cuda_fail(cudaError_t e, const char* what, const char* file, int line);
#define CUDA_CHECK(x)                                                                  \
  do {                                                                                 \
    cudaError_t e_ = (x);                                                              \
    if (e_ != cudaSuccess) ::flame::cuda::cuda_fail(e_, #x, __FILE__, __LINE__);       \
  } while (0)
// After a kernel launch: reports launch-configuration errors at the launch site.
#define CUDA_LAUNCH() CUDA_CHECK(cudaGetLastError())

__host__ __device__ __forceinline__ float to_f(float x) { return x; }
__host__ __device__ __forceinline__ float to_f(bf16 x) { return __bfloat162float(x); }
template <typename T> __host__ __device__ __forceinline__ T from_f(float x);
template <> __host__ __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __host__ __device__ __forceinline__ bf16 from_f<bf16>(float x) { return __float2bfloat16(x); }  // round to nearest even

inline unsigned blocks_for(size_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

// A device allocation that grows on demand (contents are not preserved when it grows).
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { if (p_) cudaFree(p_); }
  T* ensure(size_t n) {
    if (n > cap_) {
      if (p_) CUDA_CHECK(cudaFree(p_));
      p_ = nullptr; cap_ = 0;
      CUDA_CHECK(cudaMalloc((void**)&p_, (n ? n : 1) * sizeof(T)));
      cap_ = n;
    }
    return p_;
  }
  T* get() const { return p_; }
  size_t capacity() const { return cap_; }

 private:
  T* p_ = nullptr;
  size_t cap_ = 0;
};

}}  // namespace flame::cuda
