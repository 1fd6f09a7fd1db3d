#include "data/gpt_dataset.h"
#include "data/blended_dataset.h"
#include "data/numpy_random.h"
#include "common.h"
#include <cmath>
#include <numeric>

namespace flame {

// The split as Megatron-core (FLAME-MoE's pin) computes it: [round(lo * n), round(hi * n)) of the
// cumulated normalised shares (blended_dataset.cpp); a split of weight 0 is an empty range here.
std::vector<size_t> split_bounds(const std::vector<double>& split, size_t n) {
  std::vector<SplitRange> r = megatron_split_ranges(split, n);
  std::vector<size_t> out = {0};
  for (const SplitRange& s : r) out.push_back(s.built() ? s.end : out.back());
  return out;
}

GptDataset::GptDataset(const IndexedDataset& ds, int splitIndex, const std::vector<double>& split, uint64_t numSamples,
                       int seqLength, uint32_t seed)
    : ds_(ds), seq_(seqLength), numSamples_(numSamples) {
  static const char* names[] = {"train", "valid", "test"};
  std::vector<size_t> b = split_bounds(split, ds.numSequences());
  first_ = b[splitIndex]; count_ = b[splitIndex + 1] > b[splitIndex] ? b[splitIndex + 1] - b[splitIndex] : 0;
  if (count_ == 0) fail(EXIT_DATA, std::string("dataset ") + ds.prefix + ": the " + names[splitIndex] + " split is empty (" + std::to_string(ds.numSequences()) + " sequences, split " + std::to_string((int)split[0]) + "," + std::to_string((int)split[1]) + "," + std::to_string((int)split[2]) + ")");
  build(names[splitIndex], seed);
}

GptDataset::GptDataset(const IndexedDataset& ds, size_t first, size_t count, const std::string& splitName,
                       uint64_t numSamples, int seqLength, uint32_t seed)
    : ds_(ds), seq_(seqLength), numSamples_(numSamples), first_(first), count_(count) {
  if (count_ == 0 || first_ + count_ > ds.numSequences()) fail(EXIT_OTHER, "internal: bad sequence range for " + ds.prefix);
  build(splitName, seed);
}

void GptDataset::build(const std::string& splitName, uint32_t seed) {
  const IndexedDataset& ds = ds_;
  const int seqLength = seq_;
  const uint64_t numSamples = numSamples_;
  const auto& len = ds.lengths();
  uint64_t tokensPerEpoch = 0;
  for (size_t i = first_; i < first_ + count_; i++) tokensPerEpoch += (uint64_t)len[i];
  if (tokensPerEpoch < 2) fail(EXIT_DATA, std::string("dataset ") + ds.prefix + ": the " + splitName + " split has fewer than 2 tokens");
  // _get_num_epochs
  uint64_t need = numSamples * (uint64_t)seqLength + 1, have = tokensPerEpoch;
  numEpochs_ = 1;
  while (have < need) { numEpochs_++; have += tokensPerEpoch; }
  bool separate = false;
  uint64_t samplesSansFinal = 0;
  if (numEpochs_ > 1) {
    samplesSansFinal = ((uint64_t)(numEpochs_ - 1) * tokensPerEpoch - 1) / seqLength;
    uint64_t fromFinal = numSamples - samplesSansFinal;
    uint64_t perEpoch = (tokensPerEpoch - 1) / seqLength;
    separate = fromFinal < (uint64_t)(int64_t)(0.80 * (double)perEpoch);
  }
  separate_ = separate;
  NumpyRandomState rng(seed);
  // _build_document_index
  auto tile = [&](int epochs) {
    std::vector<int32_t> d; d.reserve((size_t)epochs * count_);
    for (int e = 0; e < epochs; e++) for (size_t i = 0; i < count_; i++) d.push_back((int32_t)(first_ + i));
    rng.shuffle(d);
    return d;
  };
  if (!separate || numEpochs_ == 1) docIdx_ = tile(numEpochs_);
  else { docIdx_ = tile(numEpochs_ - 1); auto last = tile(1); docIdx_.insert(docIdx_.end(), last.begin(), last.end()); }
  // build_sample_idx (helpers.cpp), add_extra_token_to_sequence = 1
  uint64_t nSamples = ((uint64_t)numEpochs_ * tokensPerEpoch - 1) / seqLength;
  sampleIdx_.resize(2 * (nSamples + 1));
  size_t di = 0; int64_t off = 0;
  sampleIdx_[0] = 0; sampleIdx_[1] = 0;
  for (uint64_t s = 1; s <= nSamples; s++) {
    int64_t remaining = seqLength + 1;
    while (remaining != 0) {
      int64_t docLen = len[docIdx_[di]] - off;
      remaining -= docLen;
      if (remaining <= 0) { off += remaining + docLen - 1; remaining = 0; }
      else {
        di++; off = 0;
        if (di >= docIdx_.size()) fail(EXIT_OTHER, "internal: sample index ran past the document index");
      }
    }
    sampleIdx_[2 * s] = (int64_t)di; sampleIdx_[2 * s + 1] = off;
  }
  // _build_shuffle_index
  uint64_t total = nSamples;
  uint64_t firstN = separate ? samplesSansFinal : total;
  shuffle_.resize(total);
  std::vector<uint64_t> a(firstN); std::iota(a.begin(), a.end(), 0); rng.shuffle(a);
  std::copy(a.begin(), a.end(), shuffle_.begin());
  if (firstN < total) {
    std::vector<uint64_t> c(total - firstN); std::iota(c.begin(), c.end(), firstN); rng.shuffle(c);
    std::copy(c.begin(), c.end(), shuffle_.begin() + firstN);
  }
}

void GptDataset::unshuffled(uint64_t j, int32_t* out) const {
  size_t d0 = (size_t)sampleIdx_[2 * j], d1 = (size_t)sampleIdx_[2 * j + 2];
  int64_t o0 = sampleIdx_[2 * j + 1], o1 = sampleIdx_[2 * j + 3];
  size_t w = 0;
  if (d0 == d1) { ds_.read(docIdx_[d0], o0, o1 - o0 + 1, out); w = o1 - o0 + 1; }
  else {
    for (size_t d = d0; d <= d1; d++) {
      size_t doc = docIdx_[d];
      size_t start = d == d0 ? (size_t)o0 : 0;
      size_t end = d == d1 ? (size_t)o1 + 1 : (size_t)ds_.lengths()[doc];
      ds_.read(doc, start, end - start, out + w); w += end - start;
    }
  }
  if (w != (size_t)seq_ + 1) fail(EXIT_OTHER, "internal: sample has " + std::to_string(w) + " tokens");
}

void GptDataset::sample(uint64_t i, int32_t* out) const {
  if (i >= shuffle_.size()) fail(EXIT_OTHER, "internal: sample " + std::to_string(i) + " out of range");
  unshuffled(shuffle_[i], out);
}

}  // namespace flame
