// Reference matmul: the readable definition every optimised GEMM must reproduce (up to rounding).
//   C[M,N] (+)= op(A)[M,K] * op(B)[K,N], row-major, op(X) = X or X^T.
// A linear layer y = x W^T (W stored [out, in], like torch/Megatron) is matmul(x, W^T); its
// backward is dx = dy W and dW += dy^T x.
#pragma once
#include "common.h"

namespace flame { namespace ref {

template <typename T>
void matmul(bool transA, bool transB, int M, int N, int K, const T* A, int lda, const T* B, int ldb,
            T* C, int ldc, bool accumulate) {
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      T acc = 0;
      for (int k = 0; k < K; k++) {
        T a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
        T b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
        acc += a * b;
      }
      C[(size_t)i * ldc + j] = accumulate ? C[(size_t)i * ldc + j] + acc : acc;
    }
}

}}  // namespace flame::ref
