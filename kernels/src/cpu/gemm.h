// Optimised CPU GEMM with the reference semantics of ref::matmul (ops/matmul.h).
#pragma once
#include "common.h"

namespace flame { namespace cpu {

// C[M,N] (+)= op(A)[M,K] * op(B)[K,N], row-major. `parallel`: split C tiles over OpenMP threads
// (pass false when already inside a parallel region, e.g. one GEMM per expert).
//
// Determinism: every C element is owned by exactly one thread and accumulated over K in a fixed
// blocking (KC) with a fixed FMA chain, so results are bitwise identical for any thread count,
// any schedule and either micro-kernel (AVX2 / AVX-512 / portable).
template <typename T>
void gemm(bool transA, bool transB, int M, int N, int K, const T* A, int lda, const T* B, int ldb,
          T* C, int ldc, bool accumulate, bool parallel = true);

const char* gemm_kernel_name();  // which float micro-kernel this CPU uses

}}  // namespace flame::cpu
