// Attention kernels (attention.cuh) instantiated for fp32 activations.
#include "cuda/attention.cuh"

namespace flame { namespace cuda {

bool flash_supports(int d) { return d >= 1 && d <= 128; }

FLAME_INSTANTIATE_ATTENTION(float)

}}  // namespace flame::cuda
