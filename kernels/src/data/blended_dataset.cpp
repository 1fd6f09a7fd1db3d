// Every product below is rounded before it is added or compared, as in numpy and in Megatron's
// helpers.cpp (built for baseline x86-64, no FMA): a fused multiply-add here could flip a tie in
// build_blending_indices or a ceil in the sizes.
#pragma GCC optimize("fp-contract=off")
#include "data/blended_dataset.h"
#include "common.h"
#include "io/json.h"
#include <cmath>
#include <cstdio>

namespace flame {

namespace {

const char* kSplitNames[] = {"train", "valid", "test"};

// numpy's float64 add.reduce of a contiguous array: pairwise summation (8 accumulators up to 128
// values, halves rounded down to a multiple of 8 above), added chunk by chunk of the ufunc buffer
// (8192 values) in numpy 1.x, which FLAME-MoE pinned (1.26.4). Identical for <= 8192 values.
double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double r = 0.;
    for (size_t i = 0; i < n; i++) r += a[i];
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; j++) r[j] = a[j];
    size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; j++) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

double numpy_sum(const std::vector<double>& w) {
  const size_t kBuffer = 8192;
  double s = 0.;
  for (size_t i = 0; i < w.size(); i += kBuffer) s += pairwise_sum(w.data() + i, std::min(kBuffer, w.size() - i));
  return s;
}

}  // namespace

std::vector<double> numpy_normalize(const std::vector<double>& w) {
  double s = numpy_sum(w);
  std::vector<double> out(w.size());
  for (size_t i = 0; i < w.size(); i++) out[i] = w[i] / s;
  return out;
}

std::vector<SplitRange> megatron_split_ranges(const std::vector<double>& split, size_t n) {
  // parse_and_normalize_split, then convert_split_vector_to_split_matrix: book-ends are running
  // Python float sums; an empty book-end (end <= begin) is None.
  std::vector<double> v = numpy_normalize(split);
  std::vector<double> ends = {0.0};
  for (double x : v) ends.push_back(ends.back() + x);
  std::vector<SplitRange> out;
  for (size_t i = 0; i + 1 < ends.size(); i++) {
    if (ends[i + 1] <= ends[i]) { out.push_back({SIZE_MAX, SIZE_MAX}); continue; }
    // int(round(x * float(n))): Python rounds half to even, as nearbyint in the default mode
    // (the last end is the float sum of the three shares: it rounds to n; clamped all the same)
    size_t b = (size_t)std::nearbyint(ends[i] * (double)n), e = (size_t)std::nearbyint(ends[i + 1] * (double)n);
    e = std::min(e, n); b = std::min(b, e);
    out.push_back({b, e});
  }
  return out;
}

uint64_t blend_dataset_size(uint64_t target, double w, double marginPercent) {
  double share = std::ceil((double)target * w);
  return (uint64_t)std::ceil(share * (1.0 + marginPercent / 100.0));
}

void build_blending_indices(const std::vector<double>& weights, uint64_t size, std::vector<int16_t>& datasetIndex,
                            std::vector<int64_t>& datasetSampleIndex) {
  const size_t n = weights.size();
  std::vector<int64_t> current(n, 0);
  datasetIndex.assign(size, 0);
  datasetSampleIndex.assign(size, 0);
  for (uint64_t i = 0; i < size; i++) {
    // samples 0 and 1 both use 1.0 (max(i, 1)); the first dataset with the largest error wins
    double x = std::max((double)i, 1.0);
    size_t best = 0;
    double bestError = weights[0] * x - (double)current[0];
    for (size_t d = 1; d < n; d++) {
      double error = weights[d] * x - (double)current[d];
      if (error > bestError) { bestError = error; best = d; }
    }
    datasetIndex[i] = (int16_t)best;
    datasetSampleIndex[i] = current[best];
    current[best]++;
  }
}

BlendedDataset::BlendedDataset(const std::vector<BlendEntry>& blend, int splitIndex, const std::vector<double>& split,
                               uint64_t target, int seqLength, uint32_t seed) {
  const std::string name = kSplitNames[splitIndex];
  std::string splitText = json_number(split[0]) + "," + json_number(split[1]) + "," + json_number(split[2]);
  if (blend.empty()) fail(EXIT_CONFIG, "config.data.blend: empty");
  // helpers.cpp keeps dataset ids in int16
  if (blend.size() >= 32767) fail(EXIT_CONFIG, "config.data.blend: " + std::to_string(blend.size()) + " datasets; Megatron blends fewer than 32767");
  if (!megatron_split_ranges(split, 0)[splitIndex].built())
    fail(EXIT_CONFIG, "config.data.split: \"" + splitText + "\" gives the " + name + " split weight 0: Megatron builds no " + name + " dataset");
  std::vector<double> raw;
  for (auto& b : blend) raw.push_back(b.weight);
  std::vector<double> w1 = numpy_normalize(raw);  // the builder's normalisation: sizes
  std::vector<double> w2 = numpy_normalize(w1);   // BlendedDataset's own, of those: blending
  for (size_t d = 0; d < blend.size(); d++) {
    Part p;
    p.weight = blend[d].weight;
    p.ds = std::make_unique<IndexedDataset>(blend[d].prefix);
    parts_.push_back(std::move(p));
  }
  // Megatron builds every split of every prefix before blending. A prefix with an empty range (or
  // under 2 tokens) in any built split never finishes building there (_get_num_epochs loops on an
  // empty epoch, build_sample_idx asserts), so such a blend is refused whichever split is read.
  std::vector<SplitRange> mine;
  for (auto& p : parts_) {
    std::vector<SplitRange> r = megatron_split_ranges(split, p.ds->numSequences());
    for (int s = 0; s < 3; s++) {
      if (!r[s].built()) continue;
      uint64_t tokens = 0;
      for (size_t q = r[s].begin; q < r[s].end; q++) tokens += (uint64_t)p.ds->lengths()[q];
      if (tokens < 2)
        fail(EXIT_DATA, "dataset " + p.ds->prefix + ": the " + kSplitNames[s] + " split (sequences [" + std::to_string(r[s].begin) + ", " +
                            std::to_string(r[s].end) + ") of " + std::to_string(p.ds->numSequences()) + ", split " + splitText + ") has " +
                            std::to_string(tokens) + " tokens; Megatron-LM cannot build a blend with it (it builds every split of every prefix)");
    }
    mine.push_back(r[splitIndex]);
  }

  uint64_t blendSize = 0;
  for (size_t d = 0; d < parts_.size(); d++) {
    Part& p = parts_[d];
    uint64_t buffer = blend_dataset_size(target, w1[d], 0.5);  // the samples built per dataset
    p.gpt = std::make_unique<GptDataset>(*p.ds, mine[d].begin, mine[d].end - mine[d].begin, name, buffer, seqLength, seed);
    blendSize += blend_dataset_size(target, w1[d], 0.0);  // the samples planned per dataset
  }
  build_blending_indices(w2, blendSize, datasetIndex_, datasetSampleIndex_);
  for (int16_t d : datasetIndex_) parts_[(size_t)d].drawn++;
  // BlendedMegatronDatasetBuilder.build verifies that no dataset is asked for more than it holds
  for (auto& p : parts_)
    if (p.drawn > p.gpt->size())
      fail(EXIT_DATA, "the " + name + " blend oversamples dataset " + p.ds->prefix + ": " + std::to_string(p.drawn) + " samples of " +
                          std::to_string(p.gpt->size()) + " (Megatron raises IndexError here)");
}

void BlendedDataset::sample(uint64_t i, int32_t* out) const {
  if (i >= size()) fail(EXIT_OTHER, "internal: blend sample " + std::to_string(i) + " out of range");
  parts_[(size_t)datasetIndex_[i]].gpt->sample((uint64_t)datasetSampleIndex_[i], out);
}

}  // namespace flame
