// Attention kernels (attention.cuh) instantiated for bf16 activations.
#include "cuda/attention.cuh"

namespace flame { namespace cuda {

#define INST(T)                                                                                                                  \
  template void attention_forward_flash<T>(T*, float*, const T*, int, int, int, int, cudaStream_t);                             \
  template void attention_backward_flash<T>(T*, float*, const T*, const T*, const T*, const float*, int, int, int, int, cudaStream_t); \
  template void attention_forward_flash_simt<T>(T*, float*, const T*, int, int, int, int, cudaStream_t);                        \
  template void attention_backward_flash_simt<T>(T*, float*, const T*, const T*, const T*, const float*, int, int, int, int, cudaStream_t); \
  template void attention_forward_plain<T>(T*, float*, float*, const T*, int, int, int, int, cudaStream_t);                     \
  template void attention_backward_plain<T>(T*, float*, const T*, const T*, int, int, int, int, cudaStream_t);
INST(bf16)
#undef INST

}}  // namespace flame::cuda
