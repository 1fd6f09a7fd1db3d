// Attention kernels (attention.cuh) instantiated for bf16 activations.
#include "cuda/attention.cuh"

namespace flame { namespace cuda {

FLAME_INSTANTIATE_ATTENTION(bf16)

}}  // namespace flame::cuda
