// numpy's legacy RandomState(seed) (MT19937, integer seeding via init_genrand) and its
// RandomState.shuffle of a 1-D array, reproduced exactly so sample orders match Megatron's
// GPTDataset. Verified against python3 numpy in tests/test_units.cpp when numpy is available.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>
namespace flame {
class NumpyRandomState {
 public:
  explicit NumpyRandomState(uint32_t seed);
  uint32_t next32();
  uint64_t next64() { uint64_t hi = next32(); return hi << 32 | next32(); }
  // numpy random_interval(max): uniform in [0, max] by masked rejection sampling
  uint64_t interval(uint64_t max);
  template <typename T> void shuffle(std::vector<T>& a) {  // Fisher-Yates from the end, as numpy
    for (size_t i = a.size(); i-- > 1;) { size_t j = (size_t)interval(i); T t = a[i]; a[i] = a[j]; a[j] = t; }
  }
 private:
  uint32_t mt_[624]; int pos_;
};
}
