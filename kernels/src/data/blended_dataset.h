// Megatron-core's weighted data blend (`--data-path w1 prefix1 w2 prefix2 ...`), reproduced from
// FLAME-MoE's Megatron-LM (yuzc19/Megatron-LM cbaf684c: core/datasets/blended_megatron_dataset_builder.py,
// blended_dataset.py, helpers.cpp build_blending_indices, utils.py normalize):
//  * weights are normalised with numpy (float64 sum, then w / sum) once by the builder and once
//    more by BlendedDataset; the second set drives the blending, the first the sizes;
//  * for a split with target size T (train_valid_test_num_samples), dataset d is asked for
//    ceil(ceil(T * w_d) * 1.005) samples (a 0.5% margin) and the blend has sum_d ceil(T * w_d);
//  * every prefix is split on its own: sequence range [round(lo * n), round(hi * n)) of the
//    normalised, cumulated split vector, a split of weight 0 not built at all (no dataset);
//  * each prefix's split is a GPTDataset with the same seed;
//  * blend sample i comes from the dataset with the largest error w_d * max(i, 1) - drawn_d
//    (strictly larger wins: ties go to the lowest index), as that dataset's next sample.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>
#include "data/gpt_dataset.h"
#include "data/indexed_dataset.h"

namespace flame {

struct BlendEntry {
  double weight = 0;
  std::string prefix;
};

// numpy: w / numpy.sum(w) (numpy's float64 sum: pairwise within chunks of 8192 values)
std::vector<double> numpy_normalize(const std::vector<double>& w);

// Megatron-core's split of n sequences: per split [begin, end), or begin == end == SIZE_MAX for a
// split of weight 0 (Megatron builds no dataset for it).
struct SplitRange { size_t begin, end; bool built() const { return begin != SIZE_MAX; } };
std::vector<SplitRange> megatron_split_ranges(const std::vector<double>& split, size_t n);

// _get_size_per_split_per_dataset for one split: int(ceil(ceil(target * w) * (1 + margin / 100)))
uint64_t blend_dataset_size(uint64_t target, double normalizedWeight, double marginPercent);

// helpers.cpp build_blending_indices
void build_blending_indices(const std::vector<double>& weights, uint64_t size, std::vector<int16_t>& datasetIndex,
                            std::vector<int64_t>& datasetSampleIndex);

class BlendedDataset {
 public:
  // target: Megatron's train_valid_test_num_samples[split]
  BlendedDataset(const std::vector<BlendEntry>& blend, int splitIndex, const std::vector<double>& split,
                 uint64_t target, int seqLength, uint32_t seed);
  uint64_t size() const { return datasetIndex_.size(); }
  size_t numDatasets() const { return parts_.size(); }
  const IndexedDataset& indexed(size_t d) const { return *parts_[d].ds; }
  const GptDataset& gpt(size_t d) const { return *parts_[d].gpt; }
  double weight(size_t d) const { return parts_[d].weight; }
  uint64_t drawn(size_t d) const { return parts_[d].drawn; }  // blend samples taken from dataset d
  size_t datasetOf(uint64_t i) const { return (size_t)datasetIndex_.at(i); }
  uint64_t sampleOf(uint64_t i) const { return (uint64_t)datasetSampleIndex_.at(i); }
  void sample(uint64_t i, int32_t* out) const;

 private:
  struct Part {
    double weight;
    std::unique_ptr<IndexedDataset> ds;
    std::unique_ptr<GptDataset> gpt;
    uint64_t drawn = 0;
  };
  std::vector<Part> parts_;
  std::vector<int16_t> datasetIndex_;
  std::vector<int64_t> datasetSampleIndex_;
};

}  // namespace flame
