// GEMMs of the CUDA backend through cuBLAS (cublasGemmEx), loaded at run time with dlopen so that
// the worker builds with nothing but nvcc and the CUDA runtime, and runs wherever a libcublas of
// the same major version is installed (CUDA toolkit, or the nvidia-cublas Python wheel).
//
// Row-major semantics of ref::matmul (ops/matmul.h):  C[M,N] (+)= op(A)[M,K] op(B)[K,N].
// Accumulation is always fp32. With fp32 operands the compute type is CUBLAS_COMPUTE_32F_PEDANTIC
// (no TF32, no reduced-precision shortcuts: the fp32 path that the parity tests compare); with bf16
// operands CUBLAS_COMPUTE_32F (tensor cores). cuBLAS is bitwise reproducible run to run on the same
// GPU model and library version with one stream, which is how the backend uses it.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <string>
#include <vector>

namespace flame { namespace cuda {

enum class DType { F32, BF16 };
template <typename T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::F32; };
template <> struct DTypeOf<__nv_bfloat16> { static constexpr DType value = DType::BF16; };

class Blas {
 public:
  // Loads libcublas (explicit path, else $FLAME_CUBLAS, else the default search described in
  // gemm.cu); returns "" on success or why it failed, naming every path tried.
  static std::string load(const std::string& explicitPath);
  static const std::string& loadedPath();
  explicit Blas(cudaStream_t stream);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;

  void gemm(bool transA, bool transB, int M, int N, int K, const void* A, DType at, int lda, const void* B, DType bt, int ldb,
            void* C, DType ct, int ldc, bool accumulate);
  template <typename TA, typename TB, typename TC>
  void gemm(bool ta, bool tb, int M, int N, int K, const TA* A, int lda, const TB* B, int ldb, TC* C, int ldc, bool acc) {
    gemm(ta, tb, M, N, K, A, DTypeOf<TA>::value, lda, B, DTypeOf<TB>::value, ldb, C, DTypeOf<TC>::value, ldc, acc);
  }

  // Many independent GEMMs of one transpose / type combination (one per routed expert): a single
  // cublasGemmGroupedBatchedEx call (cuBLAS >= 12.5) with bf16 operands, else, and for fp32 or
  // combinations that cuBLAS rejects (then remembered), one cublasGemmEx per entry. Empty entries
  // are skipped. FLAME_CUBLAS_GROUPED=0 forces the loop.
  struct Desc { int M, N, K; const void* A; int lda; const void* B; int ldb; void* C; int ldc; };
  void gemm_batch(bool transA, bool transB, const std::vector<Desc>& ds, DType at, DType bt, DType ct, bool accumulate);
  bool grouped_used() const { return groupedUsed_; }

 private:
  void* handle_ = nullptr;
  cudaStream_t stream_;
  void** ptrs_ = nullptr;  // device array of A, B, C pointers for the grouped call
  size_t ptrsCap_ = 0;
  bool groupedUsed_ = false;
  unsigned groupedRejected_ = 0;  // bit per (A, B, C) type combination that cuBLAS refused
};

}}  // namespace flame::cuda
