// Attention kernels (attention.cuh) instantiated for fp32 activations.
#include "cuda/attention.cuh"

namespace flame { namespace cuda {

bool flash_supports(int d) { return d >= 1 && d <= 128; }

#define INST(T)                                                                                                                  \
  template void attention_forward_flash<T>(T*, float*, const T*, int, int, int, int, cudaStream_t);                             \
  template void attention_backward_flash<T>(T*, float*, const T*, const T*, const T*, const float*, int, int, int, int, cudaStream_t); \
  template void attention_forward_flash_simt<T>(T*, float*, const T*, int, int, int, int, cudaStream_t);                        \
  template void attention_backward_flash_simt<T>(T*, float*, const T*, const T*, const T*, const float*, int, int, int, int, cudaStream_t); \
  template void attention_forward_plain<T>(T*, float*, float*, const T*, int, int, int, int, cudaStream_t);                     \
  template void attention_backward_plain<T>(T*, float*, const T*, const T*, int, int, int, int, cudaStream_t);
INST(float)
#undef INST

}}  // namespace flame::cuda
