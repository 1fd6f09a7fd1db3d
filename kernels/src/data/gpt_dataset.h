// Megatron GPTDataset sample order, reproduced (core/datasets/gpt_dataset.py + helpers.cpp):
//  * split "90,5,5" is normalised and applied by ranges of sequences (Megatron's
//    numel_low_level_dataset is the sequence count; one sequence per non-empty document);
//    bounds = cumulative int(round(pct * n)), shifted so the last bound is n;
//  * per split: num_epochs = smallest e with e * tokens_per_epoch >= num_samples * seq + 1;
//    the document index is the split's documents tiled num_epochs times and shuffled with
//    numpy RandomState(seed); if the last epoch contributes < 80% of an epoch's samples it is
//    shuffled separately (separate_final_epoch);
//  * samples of seq+1 tokens are cut across document boundaries, consecutive samples overlapping
//    by one token (build_sample_idx with drop_last_partial_sequence);
//  * a shuffle index permutes the samples (again split at the final epoch when separate).
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "data/indexed_dataset.h"

namespace flame {

std::vector<size_t> split_bounds(const std::vector<double>& split, size_t numElements);

class GptDataset {
 public:
  GptDataset(const IndexedDataset& ds, int splitIndex, const std::vector<double>& split, uint64_t numSamples,
             int seqLength, uint32_t seed);
  // The sequences [first, first + count) as the split, bounds computed by the caller (a blend
  // splits each prefix with Megatron-core's rounding, see blended_dataset.h); count > 0.
  GptDataset(const IndexedDataset& ds, size_t first, size_t count, const std::string& splitName, uint64_t numSamples,
             int seqLength, uint32_t seed);
  uint64_t size() const { return sampleIdx_.size() / 2 - 1; }  // samples available (>= requested)
  uint64_t requested() const { return numSamples_; }
  int numEpochs() const { return numEpochs_; }
  // whether the last epoch's documents and samples are shuffled on their own (separate_final_epoch)
  bool separateFinalEpoch() const { return separate_; }
  size_t firstDocument() const { return first_; }
  size_t numDocuments() const { return count_; }
  // sample i (after shuffling) into out[0 .. seqLength] (seqLength + 1 tokens)
  void sample(uint64_t i, int32_t* out) const;
  // the same without the shuffle (sample index order), for tests
  void unshuffled(uint64_t j, int32_t* out) const;

 private:
  const IndexedDataset& ds_;
  int seq_;
  uint64_t numSamples_;
  int numEpochs_ = 0;
  bool separate_ = false;
  size_t first_ = 0, count_ = 0;
  std::vector<int32_t> docIdx_;
  std::vector<int64_t> sampleIdx_;  // pairs (document index position, offset)
  std::vector<uint64_t> shuffle_;
  void build(const std::string& splitName, uint32_t seed);
};

}  // namespace flame
