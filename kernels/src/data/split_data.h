// The samples of one split as the commands read them: from data.prefix (one GPTDataset, exactly
// as before blends existed) or from data.blend (Megatron's BlendedDataset, blended_dataset.h).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include "config.h"
#include "data/blended_dataset.h"
#include "data/gpt_dataset.h"
#include "data/indexed_dataset.h"
#include "io/json.h"

namespace flame {

int split_index(const std::string& name);  // "train" 0, "valid" 1, "test" 2
const char* split_name(int split);
// Megatron's target size of the split: data.splitSamples[split] when given, else the command's own
uint64_t split_target(const DataConfig& d, int split, uint64_t commandDefault);

class SplitData {
 public:
  SplitData(const DataConfig& d, int split, uint64_t target, int seqLength);
  uint64_t size() const;  // samples that can be read
  void sample(uint64_t i, int32_t* out) const;
  // "dataset <prefix>" holding sample i, for messages about its tokens
  std::string source(uint64_t i) const;
  // where sample i comes from: dataset (position in the blend; 0 for data.prefix) and its sample
  size_t datasetOf(uint64_t i) const { return blend_ ? blend_->datasetOf(i) : 0; }
  uint64_t sampleOf(uint64_t i) const { return blend_ ? blend_->sampleOf(i) : i; }
  // What checkpoints record as "data" (a resume on other data is refused): sequence, document
  // and token counts of the dataset, or per blended dataset with its weight.
  Json identity() const;
  // What fixes the order of the samples given the same datasets, split, seed and blend weights:
  // per dataset (one for data.prefix, one per blend entry) {epochs, separateFinalEpoch}. The sample
  // count asked for enters the order only through these two, and the blend's choice of dataset
  // for sample i does not depend on the blend's size; so two runs that agree on this draw the same
  // samples in the same order for as long as both read.
  Json dataOrder() const;
  Json describe() const;  // per dataset: prefix, weight, split range, samples built / drawn, epochs

 private:
  std::string split_;
  std::unique_ptr<IndexedDataset> single_;
  std::unique_ptr<GptDataset> gpt_;
  std::unique_ptr<BlendedDataset> blend_;
};

}  // namespace flame
