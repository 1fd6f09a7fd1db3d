// The CUDA runtime as the CPU emulation of the CUDA backend sees it (see ../README.md).
//
// The backend's .cu sources compile unchanged with g++ against this header once their kernel
// launches `k<<<grid, block, shmem, stream>>>(args)` are rewritten into calls of
// flame_emu::launch (emu/launch.pl does that at build time). Each thread block runs on one host
// thread as cooperative fibers, one per CUDA thread: __syncthreads(), warp shuffles and the
// emulated tensor-core mma are the only points where a fiber hands over, exactly the points where
// the GPU's threads synchronise. `__shared__` variables are static per host thread, which is
// per block because one host thread runs one block at a time.
//
// What it can show: indexing, tiling, fragment layouts, the synchronisation structure (a barrier
// that not every live thread reaches, a shuffle in a partial warp, an invalid launch
// configuration are errors), races that depend on the order threads run in between barriers (the
// order is configurable, see flame_emu::set_schedule), and the numerics of the algorithm.
// What it cannot: timing, occupancy, memory-model effects beyond barrier ordering, the GPU's own
// rounding inside cuBLAS and the tensor cores, or anything about a real driver.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define FLAME_CUDA_EMULATION 1
#define CUDART_VERSION 13000

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static thread_local

// ---------------------------------------------------------------- runtime API types
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevice = 101,
  cudaErrorNoDevice = 100,
  cudaErrorIllegalInstruction = 715,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;
enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};
enum cudaDataType { CUDA_R_32F = 0, CUDA_R_16BF = 14 };
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
constexpr unsigned cudaStreamDefault = 0, cudaStreamNonBlocking = 1;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major, minor;
  int multiProcessorCount;
};

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 {
  unsigned x, y, z;
};

cudaError_t cudaGetDeviceCount(int* n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDriverGetVersion(int* v);
cudaError_t cudaRuntimeGetVersion(int* v);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t e);
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaMalloc(void** p, size_t bytes);
cudaError_t cudaFree(void* p);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t st = nullptr);
cudaError_t cudaMemset(void* p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t st = nullptr);
cudaError_t cudaMemset2DAsync(void* p, size_t pitch, int value, size_t width, size_t height, cudaStream_t st = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t* st);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* st, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t st);
cudaError_t cudaStreamSynchronize(cudaStream_t st);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaDeviceReset();

// ---------------------------------------------------------------- device side
extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3 blockDim, gridDim;
constexpr int warpSize = 32;

namespace flame_emu {

// The block barrier: returns when every live thread of the block has reached one.
void block_barrier();
// A warp collective: publishes `bytes` (<= 64) of this thread's data, waits until every lane of
// its warp has published, and returns where lane 0's copy is (lane l's is at base + l * stride)
// and the caller's own lane.
struct WarpView {
  const unsigned char* base;
  size_t stride;
  int self;
  const void* lane(int l) const { return base + (size_t)l * stride; }
};
WarpView warp_collective(const void* mine, size_t bytes, unsigned mask);
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d = a b + c for the warp, each lane
// holding its fragments in the PTX ISA layout; fp32 accumulation in increasing k order.
void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1);

// How the fibers of a block take turns between barriers, and the blocks of a grid: in order,
// in reverse, or shuffled with a seed. A kernel whose result changes with the schedule has a
// race. Read from FLAME_EMU_SCHEDULE ("forward", "reverse", "shuffle:SEED") at start-up.
void set_schedule(const char* spec);

struct LaunchConfig {
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;
  LaunchConfig(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = nullptr) : grid(g), block(b), shmem(s), stream(st) {}
};
void run_grid(const LaunchConfig& cfg, const char* name, void (*body)(void*), void* ctx);

template <typename F> void call(void* ctx) { (*static_cast<F*>(ctx))(); }

template <typename... P> struct Launcher {
  LaunchConfig cfg;
  void (*kernel)(P...);
  const char* name;
  template <typename... A> void operator()(A&&... a) const {
    // Arguments are converted to the kernel's parameter types once, as a launch does.
    std::tuple<typename std::decay<P>::type...> args(std::forward<A>(a)...);
    auto body = [&] { std::apply(kernel, args); };
    run_grid(cfg, name, &call<decltype(body)>, &body);
  }
};
template <typename... P> Launcher<P...> launch(LaunchConfig cfg, void (*kernel)(P...), const char* name) { return {cfg, kernel, name}; }

}  // namespace flame_emu

inline void __syncthreads() { flame_emu::block_barrier(); }

template <typename T> T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = warpSize) {
  static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 16, "shuffle of a register-sized value");
  const flame_emu::WarpView w = flame_emu::warp_collective(&v, sizeof(T), mask);
  // lanes xor outside their segment of `width` lanes read their own value (CUDA's rule)
  int src = w.self ^ laneMask;
  if ((src & ~(width - 1)) != (w.self & ~(width - 1))) src = w.self;
  T r;
  std::memcpy(&r, w.lane(src), sizeof(T));
  return r;
}

// Atomics: blocks may run on several host threads, so these are real atomic read-modify-writes
// (floating point through a compare-and-swap on the bit pattern).
template <typename F, typename U> F emu_atomic_add_float(F* p, F v) {
  static_assert(sizeof(F) == sizeof(U), "same width");
  U* u = reinterpret_cast<U*>(p);
  U old = __atomic_load_n(u, __ATOMIC_RELAXED), next;
  F f;
  do {
    std::memcpy(&f, &old, sizeof f);
    const F s = f + v;
    std::memcpy(&next, &s, sizeof s);
  } while (!__atomic_compare_exchange_n(u, &old, next, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return f;
}
inline float atomicAdd(float* p, float v) { return emu_atomic_add_float<float, uint32_t>(p, v); }
inline double atomicAdd(double* p, double v) { return emu_atomic_add_float<double, uint64_t>(p, v); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

// CUDA's device min / max take mixed integer types; std's do not.
template <typename A, typename B> __forceinline__ typename std::common_type<A, B>::type min(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  return (C)b < (C)a ? (C)b : (C)a;
}
template <typename A, typename B> __forceinline__ typename std::common_type<A, B>::type max(A a, B b) {
  typedef typename std::common_type<A, B>::type C;
  return (C)a < (C)b ? (C)b : (C)a;
}
