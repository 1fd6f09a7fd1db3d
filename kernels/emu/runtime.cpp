// The CPU emulation of the CUDA runtime (include/cuda_runtime.h says what it is for).
//
// A kernel launch runs its blocks on the OpenMP threads; a block runs on one host thread as
// blockDim fibers with their own stacks, switched by a few instructions (x86-64) or ucontext
// (elsewhere). A scheduler pass resumes every runnable fiber once, in the configured order; each
// runs until it reaches a barrier, a warp collective or its end. When none can run, the waiting
// ones are released if their barrier is complete, and the launch fails if none is: that is a
// deadlock on the GPU too (or undefined behaviour, such as a full-mask shuffle with exited lanes).
//
// Device memory is host memory. Allocations are filled with 0xff bytes (a NaN in fp32 and bf16),
// so a kernel that reads memory nobody wrote produces NaNs instead of plausible zeros, and copies
// are checked against the bounds of the allocation they touch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>
#include <omp.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>  // AddressSanitizer must be told about each stack switch
#define FLAME_EMU_ASAN 1
#endif

thread_local uint3 threadIdx, blockIdx;
thread_local dim3 blockDim, gridDim;

namespace flame_emu {
namespace {

// ---------------------------------------------------------------- context switch
#if defined(__x86_64__)
// flame_emu_switch(&saved, next): saves the callee-saved registers, the SSE and x87 control words
// and the stack pointer into *saved, and resumes the context whose stack pointer is `next`.
extern "C" void flame_emu_switch(void** saved, void* next);
asm(R"(
  .pushsection .text
  .globl flame_emu_switch
  .hidden flame_emu_switch
  .type flame_emu_switch, @function
flame_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size flame_emu_switch, .-flame_emu_switch
  .popsection
)");
#endif

constexpr size_t STACK_BYTES = 256 * 1024;  // per CUDA thread; a guard page below each
constexpr int MAX_THREADS = 1024;

enum class State : uint8_t { Runnable, AtBlock, AtWarp, Done };

struct Fiber {
#if defined(__x86_64__)
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  unsigned char* stackLo = nullptr;  // usable stack: [stackLo, stackLo + STACK_BYTES)
  uint3 tid{};
  State state = State::Done;
  unsigned mask = 0;  // lanes of the warp collective it waits in
  unsigned par = 0;   // which of the two slots its next warp collective publishes into
  void* asanFake = nullptr;
  alignas(16) unsigned char slot[2][64];
};

struct Block {
  std::vector<Fiber> fibers;  // grows to the largest block seen on this host thread; stacks reused
  int n = 0;
  int cur = 0;
#if defined(__x86_64__)
  void* schedSp = nullptr;
#else
  ucontext_t sched;
#endif
#if FLAME_EMU_ASAN
  const void* schedStack = nullptr;  // the host thread's own stack, learnt on the first switch
  size_t schedStackSize = 0;
#endif
  void (*body)(void*) = nullptr;
  void* ctx = nullptr;
};
thread_local Block t_block;

[[noreturn]] void die(const std::string& m) {
  fprintf(stderr, "flame_emu: %s\n", m.c_str());
  abort();
}

void switch_to_scheduler(Fiber& f, bool exiting = false) {
#if FLAME_EMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asanFake, t_block.schedStack, t_block.schedStackSize);
#endif
#if defined(__x86_64__)
  flame_emu_switch(&f.sp, t_block.schedSp);
#else
  swapcontext(&f.ctx, &t_block.sched);
#endif
#if FLAME_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.asanFake, nullptr, nullptr);
#endif
}

[[noreturn]] void fiber_entry() {
  Block& b = t_block;
#if FLAME_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &b.schedStack, &b.schedStackSize);
#endif
  b.body(b.ctx);
  Fiber& f = b.fibers[b.cur];
  f.state = State::Done;
  switch_to_scheduler(f, true);
  die("a finished fiber was resumed");
}

void ensure_fibers(Block& b, int n) {
  while ((int)b.fibers.size() < n) {
    b.fibers.emplace_back();
    Fiber& f = b.fibers.back();
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void* m = mmap(nullptr, STACK_BYTES + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) die("cannot map a fiber stack");
    if (mprotect(m, page, PROT_NONE) != 0) die("cannot protect a fiber stack's guard page");
    f.stackLo = (unsigned char*)m + page;
  }
}

void start_fiber(Fiber& f) {
#if FLAME_EMU_ASAN
  // the frames of the stack's previous fiber never returned: their redzones are still poisoned
  __asan_unpoison_memory_region(f.stackLo, STACK_BYTES);
#endif
#if defined(__x86_64__)
  // The frame flame_emu_switch pops: control words, r15..rbp, then `ret` into fiber_entry with the
  // stack as a call would leave it (rsp + 8 a multiple of 16 at entry).
  uintptr_t top = ((uintptr_t)(f.stackLo + STACK_BYTES)) & ~(uintptr_t)15;
  uint64_t* sp = (uint64_t*)(top - 72);
  const uint32_t csr[2] = {0x1f80u, 0x037fu};  // default MXCSR and x87 control word
  std::memcpy(sp, csr, 8);
  for (int i = 1; i <= 6; i++) sp[i] = 0;
  sp[7] = (uint64_t)(uintptr_t)&fiber_entry;
  sp[8] = 0;
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stackLo;
  f.ctx.uc_stack.ss_size = STACK_BYTES;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, (void (*)())fiber_entry, 0);
#endif
}

void resume(Block& b, int i) {
  b.cur = i;
  threadIdx = b.fibers[i].tid;
#if FLAME_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, b.fibers[i].stackLo, STACK_BYTES);
#endif
#if defined(__x86_64__)
  flame_emu_switch(&b.schedSp, b.fibers[i].sp);
#else
  swapcontext(&b.sched, &b.fibers[i].ctx);
#endif
#if FLAME_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

// ---------------------------------------------------------------- schedule
enum class Order { Forward, Reverse, Shuffle };
Order g_order = Order::Forward;
uint64_t g_seed = 0;

// The order of one scheduler pass over a block's threads, or of a grid's blocks; `rng` is used
// (and needed) only for the shuffled schedule.
template <typename I> void order_into(std::vector<I>& idx, I n, std::mt19937_64* rng) {
  idx.resize((size_t)n);
  for (I i = 0; i < n; i++) idx[(size_t)i] = g_order == Order::Reverse ? n - 1 - i : i;
  if (g_order == Order::Shuffle) std::shuffle(idx.begin(), idx.end(), *rng);
}

struct ScheduleFromEnv {
  ScheduleFromEnv() {
    const char* s = getenv("FLAME_EMU_SCHEDULE");
    if (s && *s) set_schedule(s);
  }
} g_scheduleFromEnv;

// ---------------------------------------------------------------- errors (sticky, as a GPU fault)
std::mutex g_errMu;
cudaError_t g_sticky = cudaSuccess, g_last = cudaSuccess;
std::string g_detail;

// An invalid configuration fails only its launch; a kernel that failed breaks the context.
void launch_failed(cudaError_t e, const std::string& m) {
  std::lock_guard<std::mutex> lock(g_errMu);
  fprintf(stderr, "flame_emu: %s\n", m.c_str());
  if (e != cudaErrorInvalidConfiguration && g_sticky == cudaSuccess) {
    g_sticky = e;
    g_detail = m;
  }
  g_last = e;
}
cudaError_t sticky() {
  std::lock_guard<std::mutex> lock(g_errMu);
  return g_sticky;
}

std::string where(const char* kernel) {
  return std::string(kernel) + " block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) +
         ")";
}

// Runs the current block to completion; returns "" or what went wrong.
std::string run_block(Block& b, const char* kernel, std::mt19937_64* rng) {
  const int n = b.n;
  const unsigned bx = blockDim.x, by = blockDim.y;
  for (int i = 0; i < n; i++) {
    Fiber& f = b.fibers[i];
    f.tid = uint3{(unsigned)i % bx, ((unsigned)i / bx) % by, (unsigned)i / (bx * by)};
    f.state = State::Runnable;
    f.par = 0;
    start_fiber(f);
  }
  std::vector<int> idx;
  while (true) {
    order_into(idx, n, rng);
    for (int i : idx)
      if (b.fibers[i].state == State::Runnable) resume(b, i);
    int done = 0, atBlock = 0;
    for (int i = 0; i < n; i++) {
      done += b.fibers[i].state == State::Done;
      atBlock += b.fibers[i].state == State::AtBlock;
    }
    if (done == n) return "";
    bool released = false;
    // warp collectives: complete when every lane of the mask waits in one, in the same slot
    for (int w = 0; w * 32 < n; w++) {
      const int base = w * 32;
      unsigned seen = 0;  // lanes whose collective has been looked at in this pass
      for (int l = 0; l < 32 && base + l < n; l++) {
        Fiber& f = b.fibers[base + l];
        if (f.state != State::AtWarp || (seen >> l & 1u)) continue;
        seen |= f.mask;
        bool complete = true;
        for (int m = 0; m < 32; m++) {
          if (!(f.mask >> m & 1u)) continue;
          if (base + m >= n) return where(kernel) + ": a warp collective names lane " + std::to_string(m) + ", beyond the block";
          const Fiber& g = b.fibers[base + m];
          if (g.state == State::Done)
            return where(kernel) + ": thread " + std::to_string(base + l) + " waits in a warp collective for lane " + std::to_string(m) +
                   ", which has exited";
          if (g.state != State::AtWarp) { complete = false; break; }
          if (g.mask != f.mask || g.par != f.par)
            return where(kernel) + ": lanes of warp " + std::to_string(w) + " are in different warp collectives";
        }
        if (!complete) continue;
        for (int m = 0; m < 32; m++)
          if (f.mask >> m & 1u) b.fibers[base + m].state = State::Runnable;
        released = true;
      }
    }
    if (released) continue;
    if (atBlock == n - done) {  // threads that have exited do not hold a barrier up
      for (int i = 0; i < n; i++)
        if (b.fibers[i].state == State::AtBlock) b.fibers[i].state = State::Runnable;
      continue;
    }
    int atWarp = n - done - atBlock;
    return where(kernel) + ": deadlock: " + std::to_string(atBlock) + " threads wait at __syncthreads, " + std::to_string(atWarp) +
           " in warp collectives that cannot complete, " + std::to_string(done) + " have exited";
  }
}

Fiber& current() { return t_block.fibers[t_block.cur]; }

// ---------------------------------------------------------------- device memory
std::mutex g_memMu;
std::map<uintptr_t, size_t> g_allocs;  // start -> bytes

// The allocation that starts at or before `a` (end() if none); it holds `a` if a < start + bytes.
std::map<uintptr_t, size_t>::const_iterator allocation_at(uintptr_t a) {
  auto it = g_allocs.upper_bound(a);
  return it == g_allocs.begin() ? g_allocs.cend() : std::prev(it);
}
// "" if [p, p + bytes) lies in one allocation, else what is wrong, naming the call.
std::string check_range(const void* p, size_t bytes, const char* what) {
  std::lock_guard<std::mutex> lock(g_memMu);
  const uintptr_t a = (uintptr_t)p;
  auto it = allocation_at(a);
  if (it == g_allocs.end()) return std::string(what) + ": pointer is not device memory";
  if (a + bytes > it->first + it->second)
    return std::string(what) + ": " + std::to_string(bytes) + " bytes at offset " + std::to_string(a - it->first) + " overrun an allocation of " +
           std::to_string(it->second) + " bytes";
  return "";
}
// One side of a copy: device memory within bounds where the kind says device, no device memory
// where it says host.
std::string check_side(const void* p, size_t bytes, bool device, const char* what) {
  if (device) return check_range(p, bytes, what);
  std::lock_guard<std::mutex> lock(g_memMu);
  auto it = allocation_at((uintptr_t)p);
  if (it != g_allocs.end() && (uintptr_t)p < it->first + it->second) return std::string(what) + " is device memory but the kind says host";
  return "";
}
cudaError_t misuse(const std::string& m) {
  fprintf(stderr, "flame_emu: %s\n", m.c_str());
  std::lock_guard<std::mutex> lock(g_errMu);
  g_last = cudaErrorInvalidValue;
  return cudaErrorInvalidValue;
}

int visible_devices() {
  const char* v = getenv("CUDA_VISIBLE_DEVICES");
  return v && (*v == '\0' || *v == '-') ? 0 : 1;
}

}  // namespace

void set_schedule(const char* spec) {
  const std::string s = spec;
  if (s == "forward") g_order = Order::Forward;
  else if (s == "reverse") g_order = Order::Reverse;
  else if (s.rfind("shuffle:", 0) == 0) { g_order = Order::Shuffle; g_seed = std::strtoull(s.c_str() + 8, nullptr, 10); }
  else die("FLAME_EMU_SCHEDULE: expected forward, reverse or shuffle:SEED, got \"" + s + "\"");
}

void block_barrier() {
  Fiber& f = current();
  f.state = State::AtBlock;
  switch_to_scheduler(f);
}

WarpView warp_collective(const void* mine, size_t bytes, unsigned mask) {
  Fiber& f = current();
  const unsigned lane = (unsigned)(&f - t_block.fibers.data()) & 31u;
  if (bytes > sizeof f.slot[0]) die("warp collective of more than 64 bytes");
  if (!(mask >> lane & 1u)) die("a warp collective whose mask leaves out the calling lane");
  const unsigned p = f.par;
  std::memcpy(f.slot[p], mine, bytes);
  f.mask = mask;
  f.state = State::AtWarp;
  switch_to_scheduler(f);
  // Two slots: a lane that races ahead into its next collective writes the other one, which no
  // lane reads any more (all of them have passed the collective before this one).
  f.par = p ^ 1u;
  Fiber* lane0 = &f - lane;
  return WarpView{lane0->slot[p], sizeof(Fiber), (int)lane};
}

void mma_m16n8k16_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
  const uint32_t mine[6] = {a[0], a[1], a[2], a[3], b0, b1};
  const WarpView w = warp_collective(mine, sizeof mine, 0xffffffffu);
  const int gr = w.self >> 2, tq = w.self & 3;
  auto half = [](uint32_t reg, int hi) {  // element 0 of a pair is the low 16 bits
    return __bfloat162float(__nv_bfloat16{(uint16_t)(hi ? reg >> 16 : reg & 0xffffu)});
  };
  // PTX ISA, "Matrix fragments for mma.m16n8k16 with floating point type", lane = 4 * groupID + tq:
  //   A[r][k]: lane 4 * (r % 8) + (k % 8) / 2, register (r >= 8) + 2 * (k >= 8), half k % 2
  //   B[k][n]: lane 4 * n + (k % 8) / 2, register b0 (k < 8) or b1, half k % 2
  //   C[r][n]: c0, c1 = (groupID, 2 tq + {0, 1}), c2, c3 = (groupID + 8, 2 tq + {0, 1})
  auto A = [&](int r, int k) {
    const uint32_t* regs = (const uint32_t*)w.lane(4 * (r % 8) + (k % 8) / 2);
    return half(regs[(r >= 8) + 2 * (k >= 8)], k % 2);
  };
  auto B = [&](int k, int n) {
    const uint32_t* regs = (const uint32_t*)w.lane(4 * n + (k % 8) / 2);
    return half(regs[4 + (k >= 8)], k % 2);
  };
  for (int e = 0; e < 4; e++) {
    const int r = gr + 8 * (e >> 1), n = 2 * tq + (e & 1);
    float acc = c[e];
    for (int k = 0; k < 16; k++) acc = std::fma(A(r, k), B(k, n), acc);
    c[e] = acc;
  }
}

void run_grid(const LaunchConfig& cfg, const char* name, void (*body)(void*), void* ctx) {
  const dim3 g = cfg.grid, bl = cfg.block;
  const unsigned long long threads = (unsigned long long)bl.x * bl.y * bl.z;
  std::string bad;
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0) bad = "an empty grid or block";
  else if (threads > (unsigned long long)MAX_THREADS || bl.x > 1024 || bl.y > 1024 || bl.z > 64)
    bad = "block (" + std::to_string(bl.x) + "," + std::to_string(bl.y) + "," + std::to_string(bl.z) + ") exceeds 1024 threads or a block dimension";
  else if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    bad = "grid (" + std::to_string(g.x) + "," + std::to_string(g.y) + "," + std::to_string(g.z) + ") exceeds the grid limits (2^31-1, 65535, 65535)";
  else if (cfg.shmem > 48 * 1024)
    bad = std::to_string(cfg.shmem) + " bytes of dynamic shared memory exceed the 48 KiB a kernel gets without opting in";
  if (!bad.empty()) { launch_failed(cudaErrorInvalidConfiguration, std::string(name) + ": invalid launch: " + bad); return; }
  if (sticky() != cudaSuccess) return;  // the context is already broken, as after a fault on a GPU

  const long long nb = (long long)g.x * g.y * g.z;
  std::vector<long long> order;
  if (g_order == Order::Shuffle) {
    std::mt19937_64 rng(g_seed);
    order_into(order, nb, &rng);
  } else {
    order_into(order, nb, nullptr);
  }
  const bool serial = g_order != Order::Forward || nb == 1;
  std::string failure;
  std::mutex failMu;
#pragma omp parallel for schedule(dynamic, 1) if (!serial)
  for (long long j = 0; j < nb; j++) {
    {
      std::lock_guard<std::mutex> lock(failMu);
      if (!failure.empty()) continue;
    }
    const long long i = order[(size_t)j];
    Block& b = t_block;
    gridDim = g;
    blockDim = bl;
    blockIdx = uint3{(unsigned)(i % g.x), (unsigned)((i / g.x) % g.y), (unsigned)(i / ((long long)g.x * g.y))};
    b.n = (int)threads;
    b.body = body;
    b.ctx = ctx;
    ensure_fibers(b, b.n);
    std::string why;
    if (g_order == Order::Shuffle) {  // a generator per block: its threads' order does not depend on the host thread
      std::mt19937_64 rng(g_seed ^ (uint64_t)(i * 0x9e3779b97f4a7c15ull));
      why = run_block(b, name, &rng);
    } else {
      why = run_block(b, name, nullptr);
    }
    if (!why.empty()) {
      std::lock_guard<std::mutex> lock(failMu);
      if (failure.empty()) failure = why;
    }
  }
  if (!failure.empty()) launch_failed(cudaErrorLaunchFailure, failure);
}

}  // namespace flame_emu

using namespace flame_emu;

// ---------------------------------------------------------------- runtime API
cudaError_t cudaGetDeviceCount(int* n) {
  *n = visible_devices();
  if (*n == 0) return cudaErrorNoDevice;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device < 0 || device >= visible_devices()) return cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "CPU emulation (flame_emu)");
  p->totalGlobalMem = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
  p->sharedMemPerBlock = 48 * 1024;
  p->warpSize = 32;
  p->maxThreadsPerBlock = MAX_THREADS;
  p->maxThreadsDim[0] = 1024; p->maxThreadsDim[1] = 1024; p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647; p->maxGridSize[1] = 65535; p->maxGridSize[2] = 65535;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = omp_get_max_threads();
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) { return device >= 0 && device < visible_devices() ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaDriverGetVersion(int* v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int* v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lock(g_errMu);
  cudaError_t e = g_last;
  g_last = g_sticky;
  return e;
}
cudaError_t cudaPeekAtLastError() {
  std::lock_guard<std::mutex> lock(g_errMu);
  return g_last;
}
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  if (e == cudaErrorLaunchFailure) {
    std::lock_guard<std::mutex> lock(g_errMu);
    static thread_local std::string s;
    s = "a kernel failed in the emulation: " + g_detail;
    return s.c_str();
  }
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    default: return "unknown error";
  }
}

cudaError_t cudaMalloc(void** p, size_t bytes) {
  // 256-byte aligned as cudaMalloc's are, and exactly `bytes` long, so that an AddressSanitizer
  // build (emu/README.md) reports the first byte past the end
  void* m = nullptr;
  if (posix_memalign(&m, 256, bytes ? bytes : 1) != 0) return cudaErrorMemoryAllocation;
  std::memset(m, 0xff, bytes);
  std::lock_guard<std::mutex> lock(g_memMu);
  g_allocs[(uintptr_t)m] = bytes;
  *p = m;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(g_memMu);
    auto it = g_allocs.find((uintptr_t)p);
    if (it == g_allocs.end()) return misuse("cudaFree of a pointer that cudaMalloc did not return");
    g_allocs.erase(it);
  }
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  if (sticky() != cudaSuccess) return sticky();
  if (bytes == 0) return cudaSuccess;
  if (kind != cudaMemcpyDefault) {
    std::string why = check_side(dst, bytes, kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice, "cudaMemcpy destination");
    if (why.empty())
      why = check_side(src, bytes, kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice, "cudaMemcpy source");
    if (!why.empty()) return misuse(why);
  }
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) { return cudaMemcpyAsync(dst, src, bytes, kind, nullptr); }
cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t) {
  if (sticky() != cudaSuccess) return sticky();
  if (bytes == 0) return cudaSuccess;
  std::string why = check_range(p, bytes, "cudaMemset");
  if (!why.empty()) return misuse(why);
  std::memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int value, size_t bytes) { return cudaMemsetAsync(p, value, bytes, nullptr); }
cudaError_t cudaMemset2DAsync(void* p, size_t pitch, int value, size_t width, size_t height, cudaStream_t) {
  if (sticky() != cudaSuccess) return sticky();
  if (height == 0 || width == 0) return cudaSuccess;
  if (width > pitch) return misuse("cudaMemset2D: width exceeds the pitch");
  std::string why = check_range(p, pitch * (height - 1) + width, "cudaMemset2D");
  if (!why.empty()) return misuse(why);
  for (size_t r = 0; r < height; r++) std::memset((unsigned char*)p + r * pitch, value, width);
  return cudaSuccess;
}
struct CUstream_st {
  unsigned flags;
};
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* st, unsigned flags) {
  *st = new CUstream_st{flags};
  return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* st) { return cudaStreamCreateWithFlags(st, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t st) {
  delete st;
  return cudaSuccess;
}
cudaError_t cudaDeviceReset() {  // as on a GPU, the way back from a failed kernel (the tests use it)
  std::lock_guard<std::mutex> lock(g_errMu);
  g_sticky = g_last = cudaSuccess;
  g_detail.clear();
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return sticky(); }
cudaError_t cudaDeviceSynchronize() { return sticky(); }
