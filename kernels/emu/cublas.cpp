// A stand-in for libcublas in the CPU emulation of the CUDA backend, where "device memory" is
// ordinary host memory. src/cuda/gemm.cu dlopens it through its explicit-path option (or
// FLAME_CUBLAS) exactly as it would the real library, so that the backend's cuBLAS code paths --
// the row-major -> column-major operand swap, per-operand transpose flags, leading dimensions,
// the grouped call and its fallback on INVALID_VALUE / NOT_SUPPORTED -- run and can be tested on
// machines without a GPU.
//
// It is not fast and it is not cuBLAS: it says nothing about cuBLAS's own numerics (which differ
// by GPU, library version and algorithm). What it does define is a simple, thread-count
// independent arithmetic: inputs converted to float (exact), each output element accumulated in
// float with fmaf in increasing k order, then alpha / beta applied in float, bf16 results rounded
// to nearest even. Only the entry points gemm.cu looks up are provided, with the argument
// validation and status codes cuBLAS documents for them.
//
// Build: g++ -std=c++17 -O2 -fPIC -shared -fopenmp -Ikernels/emu/include kernels/emu/cublas.cpp -o kernels/build/emu/libcublas-emu.so
#include <omp.h>
#include "cuda_bf16.h"
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>

namespace {

// cublasStatus_t values (cublas_api.h); stable across cuBLAS 11-13.
enum : int {
  STATUS_SUCCESS = 0,
  STATUS_NOT_INITIALIZED = 1,
  STATUS_ALLOC_FAILED = 3,
  STATUS_INVALID_VALUE = 7,
  STATUS_ARCH_MISMATCH = 8,
  STATUS_MAPPING_ERROR = 11,
  STATUS_EXECUTION_FAILED = 13,
  STATUS_INTERNAL_ERROR = 14,
  STATUS_NOT_SUPPORTED = 15,
  STATUS_LICENSE_ERROR = 16,
};
enum : int { OP_N = 0, OP_T = 1, OP_C = 2 };                        // cublasOperation_t
enum : int { R_32F = 0, R_16BF = 14 };                              // cudaDataType (library_types.h)
enum : int { COMPUTE_32F = 68, COMPUTE_32F_PEDANTIC = 69 };         // cublasComputeType_t
enum : int { LEGACY_COMPUTE_R_32F = R_32F };                        // pre-11 API: a cudaDataType as compute type

// The handle only has to be a distinct non-null pointer that destroy can recognise; the stream is
// kept for symmetry with cuBLAS but never used, since every call here completes before returning.
constexpr uint32_t kMagic = 0x454d5542u;  // "EMUB"
struct Handle {
  uint32_t magic = kMagic;
  void* stream = nullptr;
};

bool valid(const void* h) { return h && static_cast<const Handle*>(h)->magic == kMagic; }

// bf16 as the rest of the emulation defines it (include/cuda_bf16.h: widening exact, stores
// rounded to nearest even, NaNs kept quiet)
inline float from_bf16(uint16_t v) { return __bfloat162float(__nv_bfloat16{v}); }
inline uint16_t to_bf16(float f) { return __float2bfloat16(f).__x; }

inline float load(const float* p) { return *p; }
inline float load(const uint16_t* p) { return from_bf16(*p); }
inline void store(float* p, float v) { *p = v; }
inline void store(uint16_t* p, float v) { *p = to_bf16(v); }

bool is_type(int t) { return t == R_32F || t == R_16BF; }
bool is_op(int op) { return op == OP_N || op == OP_T || op == OP_C; }

// One problem, already validated. Column-major, as cuBLAS: C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C.
struct Problem {
  int transa, transb, m, n, k;
  float alpha, beta;
  const void* A; int lda;
  const void* B; int ldb;
  void* C; int ldc;
};

// The argument checks cuBLAS documents for cublasGemmEx (CUBLAS_STATUS_INVALID_VALUE).
int check_args(int transa, int transb, int m, int n, int k, int lda, int ldb, int ldc) {
  if (!is_op(transa) || !is_op(transb)) return STATUS_INVALID_VALUE;
  if (m < 0 || n < 0 || k < 0) return STATUS_INVALID_VALUE;
  const int rowsA = transa == OP_N ? m : k;
  const int rowsB = transb == OP_N ? k : n;
  if (lda < std::max(1, rowsA) || ldb < std::max(1, rowsB) || ldc < std::max(1, m)) return STATUS_INVALID_VALUE;
  return STATUS_SUCCESS;
}

int check_types(int at, int bt, int ct, int compute) {
  if (!is_type(at) || !is_type(bt) || !is_type(ct)) return STATUS_NOT_SUPPORTED;
  if (compute != COMPUTE_32F && compute != COMPUTE_32F_PEDANTIC && compute != LEGACY_COMPUTE_R_32F) return STATUS_NOT_SUPPORTED;
  return STATUS_SUCCESS;
}

// Work buffers sized before the parallel region, so that an allocation failure becomes
// ALLOC_FAILED rather than an exception escaping an OpenMP region (which would terminate).
struct Scratch {
  std::unique_ptr<float[]> buf;
  size_t per = 0;
  bool reserve(const Problem& p) {
    per = size_t(p.m) + size_t(p.k);
    buf.reset(new (std::nothrow) float[std::max<size_t>(1, per * size_t(std::max(1, omp_get_max_threads())))]);
    return buf != nullptr;
  }
};

// Each output element's value depends only on its own fmaf chain, whatever the loop order or the
// thread that computes it: threads split the columns, and for op(A) = A the chain is advanced for a
// whole column at once (i innermost, contiguous in A) rather than one element at a time.
template <typename TA, typename TB, typename TC>
void run(const Problem& p, Scratch& s) {
  const TA* A = static_cast<const TA*>(p.A);
  const TB* B = static_cast<const TB*>(p.B);
  TC* C = static_cast<TC*>(p.C);
  const size_t lda = size_t(p.lda), ldb = size_t(p.ldb), ldc = size_t(p.ldc);
  const int m = p.m, k = p.k;
  const bool ta = p.transa != OP_N, tb = p.transb != OP_N;
  const float alpha = p.alpha, beta = p.beta;
  // Thread start-up costs more than a tiny product; the result is the same either way.
  const bool par = double(p.m) * p.n * std::max(1, p.k) > 32768.0 && p.n > 1;
#pragma omp parallel for schedule(static) if (par)
  for (int j = 0; j < p.n; j++) {
    float* acc = s.buf.get() + s.per * size_t(omp_get_thread_num());
    float* bcol = acc + m;
    for (int q = 0; q < k; q++) bcol[q] = tb ? load(B + size_t(j) + size_t(q) * ldb) : load(B + size_t(q) + size_t(j) * ldb);
    if (!ta) {
      for (int i = 0; i < m; i++) acc[i] = 0.0f;
      for (int q = 0; q < k; q++) {
        const TA* a = A + size_t(q) * lda;
        const float b = bcol[q];
        for (int i = 0; i < m; i++) acc[i] = std::fmaf(load(a + i), b, acc[i]);
      }
    } else {
      for (int i = 0; i < m; i++) {
        const TA* a = A + size_t(i) * lda;
        float t = 0.0f;
        for (int q = 0; q < k; q++) t = std::fmaf(load(a + q), bcol[q], t);
        acc[i] = t;
      }
    }
    TC* c = C + size_t(j) * ldc;
    for (int i = 0; i < m; i++) {
      float v = alpha * acc[i];
      if (beta != 0.0f) v = std::fmaf(beta, load(c + i), v);  // beta == 0: C is not read, as cuBLAS documents
      store(c + i, v);
    }
  }
}

template <typename TA, typename TB>
void dispatch_c(const Problem& p, int ct, Scratch& s) {
  if (ct == R_32F) run<TA, TB, float>(p, s);
  else run<TA, TB, uint16_t>(p, s);
}
template <typename TA>
void dispatch_b(const Problem& p, int bt, int ct, Scratch& s) {
  if (bt == R_32F) dispatch_c<TA, float>(p, ct, s);
  else dispatch_c<TA, uint16_t>(p, ct, s);
}

int execute(const Problem& p, int at, int bt, int ct) {
  if (p.m == 0 || p.n == 0) return STATUS_SUCCESS;
  Scratch s;
  if (!s.reserve(p)) return STATUS_ALLOC_FAILED;
  if (at == R_32F) dispatch_b<float>(p, bt, ct, s);
  else dispatch_b<uint16_t>(p, bt, ct, s);
  return STATUS_SUCCESS;
}

}  // namespace

extern "C" {

int cublasCreate_v2(void** handle) {
  if (!handle) return STATUS_INVALID_VALUE;
  *handle = new (std::nothrow) Handle();
  return *handle ? STATUS_SUCCESS : STATUS_ALLOC_FAILED;
}

int cublasDestroy_v2(void* handle) {
  if (!valid(handle)) return STATUS_NOT_INITIALIZED;
  Handle* h = static_cast<Handle*>(handle);
  h->magic = 0;
  delete h;
  return STATUS_SUCCESS;
}

int cublasSetStream_v2(void* handle, void* stream) {
  if (!valid(handle)) return STATUS_NOT_INITIALIZED;
  static_cast<Handle*>(handle)->stream = stream;
  return STATUS_SUCCESS;
}

const char* cublasGetStatusString(int status) {
  switch (status) {
    case STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

// algo only selects an implementation in cuBLAS; there is one here, so any value is accepted.
int cublasGemmEx(void* handle, int transa, int transb, int m, int n, int k, const void* alpha, const void* A, int Atype, int lda,
                 const void* B, int Btype, int ldb, const void* beta, void* C, int Ctype, int ldc, int computeType, int algo) {
  (void)algo;
  if (!valid(handle)) return STATUS_NOT_INITIALIZED;
  if (int s = check_args(transa, transb, m, n, k, lda, ldb, ldc)) return s;
  if (int s = check_types(Atype, Btype, Ctype, computeType)) return s;
  if (!alpha || !beta) return STATUS_INVALID_VALUE;  // host scalars (the default pointer mode)
  Problem p{transa, transb, m, n, k, *static_cast<const float*>(alpha), *static_cast<const float*>(beta), A, lda, B, ldb, C, ldc};
  return execute(p, Atype, Btype, Ctype);
}

// cuBLAS >= 12.5. The per-group arrays (transa .. ldc, alpha, beta, group_size) are host arrays of
// group_count entries; Aarray / Barray / Carray hold sum(group_size) pointers, group g's problems
// after group g-1's. Everything is validated before anything is computed, so a rejected call leaves
// every C untouched and the caller can fall back to one GemmEx per problem.
int cublasGemmGroupedBatchedEx(void* handle, const int* transa_array, const int* transb_array, const int* m_array, const int* n_array,
                               const int* k_array, const void* alpha_array, const void* const* Aarray, int Atype, const int* lda_array,
                               const void* const* Barray, int Btype, const int* ldb_array, const void* beta_array, void* const* Carray,
                               int Ctype, const int* ldc_array, int group_count, const int* group_size, int computeType) {
  if (!valid(handle)) return STATUS_NOT_INITIALIZED;
  if (group_count < 0) return STATUS_INVALID_VALUE;
  if (group_count == 0) return STATUS_SUCCESS;
  if (!transa_array || !transb_array || !m_array || !n_array || !k_array || !lda_array || !ldb_array || !ldc_array || !group_size ||
      !alpha_array || !beta_array)
    return STATUS_INVALID_VALUE;
  size_t total = 0;
  for (int g = 0; g < group_count; g++) {
    if (group_size[g] < 0) return STATUS_INVALID_VALUE;
    if (int s = check_args(transa_array[g], transb_array[g], m_array[g], n_array[g], k_array[g], lda_array[g], ldb_array[g], ldc_array[g]))
      return s;
    total += size_t(group_size[g]);
  }
  if (int s = check_types(Atype, Btype, Ctype, computeType)) return s;
  if (total > 0 && (!Aarray || !Barray || !Carray)) return STATUS_INVALID_VALUE;
  const float* alpha = static_cast<const float*>(alpha_array);
  const float* beta = static_cast<const float*>(beta_array);
  size_t idx = 0;
  for (int g = 0; g < group_count; g++)
    for (int i = 0; i < group_size[g]; i++, idx++) {
      Problem p{transa_array[g], transb_array[g], m_array[g], n_array[g], k_array[g], alpha[g], beta[g],
                Aarray[idx],     lda_array[g],    Barray[idx], ldb_array[g], Carray[idx], ldc_array[g]};
      if (int s = execute(p, Atype, Btype, Ctype)) return s;
    }
  return STATUS_SUCCESS;
}

}  // extern "C"
