// Tests of the CPU emulation itself (`make -C kernels test-cuda-emu`): that it runs CUDA code as a
// GPU would where the backend depends on it (barriers, shared memory, warp shuffles, the mma
// fragment layouts against a plain matrix product), and that it refuses what a GPU refuses or
// leaves undefined (invalid launches, deadlocked barriers, shuffles with exited lanes,
// out-of-bounds copies), and that a changed schedule exposes a missing barrier.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>
#include "testing.h"


template <typename T> static T* dev(size_t n) {
  T* p = nullptr;
  cudaMalloc((void**)&p, n * sizeof(T));
  return p;
}
template <typename T> static std::vector<T> down(const T* d, size_t n) {
  std::vector<T> h(n);
  cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
  return h;
}

// ---------------------------------------------------------------- kernels
__global__ void k_warp_sums(float* out, double* outD) {
  float v = (float)(threadIdx.x & 31);
  double d = (double)threadIdx.x;
  for (int o = 16; o > 0; o >>= 1) { v += __shfl_xor_sync(0xffffffffu, v, o); d += __shfl_xor_sync(0xffffffffu, d, o); }
  out[blockIdx.x * blockDim.x + threadIdx.x] = v;
  outD[blockIdx.x * blockDim.x + threadIdx.x] = d;
}
// out[i] = in[i + 1] of the same block through shared memory; `barrier` = false leaves the race in
template <bool barrier> __global__ void k_shift(int* out, const int* in) {
  __shared__ int sh[256];
  const int i = threadIdx.x, base = blockIdx.x * blockDim.x;
  sh[i] = in[base + i];
  if (barrier) __syncthreads();
  out[base + i] = i + 1 < (int)blockDim.x ? sh[i + 1] : -1;
}
__global__ void k_dims(int* out) {
  const int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const int b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}
__global__ void k_barrier_vs_shuffle(float* out) {
  float v = 1.0f;
  if ((threadIdx.x & 31) < 16) __syncthreads();
  else v = __shfl_xor_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}
__global__ void k_shuffle_after_exit(float* out) {
  if ((threadIdx.x & 31) >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}
__global__ void k_nothing() {}
// One m16n8k16 product; the fragments are gathered from row-major A [16][16] and B [16][8]
// following the PTX ISA's description from each lane's side (the emulator indexes from the
// element's side), and D is scattered back the same way.
__global__ void k_mma(float* D, const __nv_bfloat16* A, const __nv_bfloat16* B, const float* C) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  auto pair = [](__nv_bfloat16 lo, __nv_bfloat16 hi) { return (uint32_t)lo.__x | ((uint32_t)hi.__x << 16); };
  uint32_t a[4];
  for (int i = 0; i < 4; i++) {  // a_i: row g (+8 for i = 1, 3), columns 2t, 2t+1 (+8 for i = 2, 3)
    const int r = g + 8 * (i & 1), c = 2 * t + 8 * (i >> 1);
    a[i] = pair(A[r * 16 + c], A[r * 16 + c + 1]);
  }
  const uint32_t b0 = pair(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]);
  const uint32_t b1 = pair(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]);
  float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  flame_emu::mma_m16n8k16_bf16(c, a, b0, b1);
  D[g * 8 + 2 * t] = c[0]; D[g * 8 + 2 * t + 1] = c[1]; D[(g + 8) * 8 + 2 * t] = c[2]; D[(g + 8) * 8 + 2 * t + 1] = c[3];
}

// ---------------------------------------------------------------- tests
static void test_shuffles() {
  float* o = dev<float>(128);
  double* od = dev<double>(128);
  k_warp_sums<<<2, 64>>>(o, od);
  CHECK(cudaGetLastError() == cudaSuccess, "launch");
  auto h = down(o, 128);
  auto hd = down(od, 128);
  bool ok = true;
  for (int i = 0; i < 128; i++) {
    const int w = (i % 64) / 32;  // threadIdx.x of lanes 0..31 of warp w
    ok = ok && h[i] == 496.0f && hd[i] == (double)(32 * 32 * w + 496);
  }
  CHECK(ok, "butterfly sums over each warp (float and double)");
  cudaFree(o); cudaFree(od);
}

static void test_schedules_and_races() {
  const int nb = 3, n = 256;
  std::vector<int> in(nb * n);
  for (int i = 0; i < nb * n; i++) in[i] = i * 7 + 1;
  int* din = dev<int>(nb * n);
  int* dout = dev<int>(nb * n);
  cudaMemcpy(din, in.data(), in.size() * 4, cudaMemcpyHostToDevice);
  auto expect_shift = [&](const std::vector<int>& h) {
    for (int b = 0; b < nb; b++)
      for (int i = 0; i < n; i++)
        if (h[b * n + i] != (i + 1 < n ? in[b * n + i + 1] : -1)) return false;
    return true;
  };
  for (const char* s : {"forward", "reverse", "shuffle:3"}) {
    flame_emu::set_schedule(s);
    k_shift<true><<<nb, n>>>(dout, din);
    CHECK(cudaGetLastError() == cudaSuccess && expect_shift(down(dout, nb * n)), "shared-memory shift with a barrier, %s schedule", s);
  }
  // Without the barrier thread i reads sh[i + 1] before or after thread i + 1 wrote it, depending
  // on the order: the forward schedule exposes the race, the reverse one hides it.
  // New inputs, so that what the previous launches left in shared memory is not the answer.
  for (int i = 0; i < nb * n; i++) in[i] = i * 13 + 5;
  cudaMemcpy(din, in.data(), in.size() * 4, cudaMemcpyHostToDevice);
  flame_emu::set_schedule("forward");
  k_shift<false><<<nb, n>>>(dout, din);
  CHECK(!expect_shift(down(dout, nb * n)), "the missing barrier gives a wrong result in the forward schedule");
  flame_emu::set_schedule("reverse");
  k_shift<false><<<nb, n>>>(dout, din);
  CHECK(expect_shift(down(dout, nb * n)), "and happens to give the right one in reverse: run both");
  flame_emu::set_schedule("forward");
  cudaFree(din); cudaFree(dout);
}

static void test_dims() {
  const dim3 g(3, 2, 2), b(4, 3, 2);
  const int nb = 12, nt = 24;
  int* o = dev<int>(nb * nt);
  k_dims<<<g, b>>>(o);
  auto h = down(o, nb * nt);
  bool ok = cudaGetLastError() == cudaSuccess;
  for (int i = 0; i < nb * nt; i++) ok = ok && h[i] == (i / nt) * 1000 + i % nt;
  CHECK(ok, "threadIdx / blockIdx / blockDim / gridDim in three dimensions");
  cudaFree(o);
}

static void test_refusals() {
  k_nothing<<<1, 2048>>>();
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "a block of 2048 threads is an invalid launch");
  k_nothing<<<dim3(1, 70000), 32>>>();
  CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid.y = 70000 is an invalid launch");
  CHECK(cudaGetLastError() == cudaSuccess, "an invalid launch is not sticky");

  float* o = dev<float>(64);
  k_barrier_vs_shuffle<<<1, 64>>>(o);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "half a warp at __syncthreads, half in a shuffle: deadlock");
  CHECK(cudaMemcpy(o, o, 4, cudaMemcpyDeviceToDevice) == cudaErrorLaunchFailure, "a failed kernel is sticky, as on a GPU");
  CHECK(cudaDeviceReset() == cudaSuccess && cudaGetLastError() == cudaSuccess, "cudaDeviceReset clears it");
  k_shuffle_after_exit<<<1, 32>>>(o);
  CHECK(cudaGetLastError() == cudaErrorLaunchFailure, "a full-mask shuffle with exited lanes fails");
  cudaDeviceReset();

  std::vector<float> h(65);
  CHECK(cudaMemcpy(o, h.data(), 65 * 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "a copy past the allocation");
  CHECK(cudaMemcpy(h.data(), o, 4, cudaMemcpyHostToDevice) == cudaErrorInvalidValue, "a copy whose kind names the wrong sides");
  cudaGetLastError();
  float* fresh = dev<float>(4);
  auto f = down(fresh, 4);
  CHECK(std::isnan(f[0]) && std::isnan(f[3]), "fresh device memory reads as NaN, not zero");
  cudaFree(o); cudaFree(fresh);
}

static void test_mma() {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<__nv_bfloat16> A(256), B(128);
  std::vector<float> C(128);
  for (auto& x : A) x = __float2bfloat16(nd(rng));
  for (auto& x : B) x = __float2bfloat16(nd(rng));
  for (auto& x : C) x = nd(rng);
  __nv_bfloat16 *dA = dev<__nv_bfloat16>(256), *dB = dev<__nv_bfloat16>(128);
  float *dC = dev<float>(128), *dD = dev<float>(128);
  cudaMemcpy(dA, A.data(), 512, cudaMemcpyHostToDevice);
  cudaMemcpy(dB, B.data(), 256, cudaMemcpyHostToDevice);
  cudaMemcpy(dC, C.data(), 512, cudaMemcpyHostToDevice);
  k_mma<<<1, 32>>>(dD, dA, dB, dC);
  auto D = down(dD, 128);
  double worst = 0;
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 8; n++) {
      double ref = C[r * 8 + n];
      for (int k = 0; k < 16; k++) ref += (double)__bfloat162float(A[r * 16 + k]) * __bfloat162float(B[k * 8 + n]);
      worst = std::max(worst, std::fabs(D[r * 8 + n] - ref) / (1.0 + std::fabs(ref)));
    }
  CHECK(cudaGetLastError() == cudaSuccess && worst < 1e-5, "mma m16n8k16 = A B + C within fp32 accumulation (worst %.2e)", worst);
  cudaFree(dA); cudaFree(dB); cudaFree(dC); cudaFree(dD);
}

int main() {
  test_shuffles();
  test_schedules_and_races();
  test_dims();
  test_refusals();
  test_mma();
  TEST_MAIN_END();
}
