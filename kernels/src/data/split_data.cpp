#include "data/split_data.h"
#include "common.h"

namespace flame {

static const char* kNames[] = {"train", "valid", "test"};

int split_index(const std::string& name) {
  for (int i = 0; i < 3; i++) if (name == kNames[i]) return i;
  fail(EXIT_CONFIG, "unknown split \"" + name + "\" (expected train, valid or test)");
}

const char* split_name(int split) { return kNames[split]; }

uint64_t split_target(const DataConfig& d, int split, uint64_t commandDefault) {
  return d.hasSplitSamples ? (uint64_t)d.splitSamples[split] : commandDefault;
}

SplitData::SplitData(const DataConfig& d, int split, uint64_t target, int seqLength) : split_(kNames[split]) {
  if (!d.blend.empty()) {
    blend_ = std::make_unique<BlendedDataset>(d.blend, split, d.split, target, seqLength, (uint32_t)d.seed);
  } else {
    single_ = std::make_unique<IndexedDataset>(d.prefix);
    gpt_ = std::make_unique<GptDataset>(*single_, split, d.split, target, seqLength, (uint32_t)d.seed);
  }
}

uint64_t SplitData::size() const { return blend_ ? blend_->size() : gpt_->size(); }

void SplitData::sample(uint64_t i, int32_t* out) const {
  if (blend_) blend_->sample(i, out);
  else gpt_->sample(i, out);
}

std::string SplitData::source(uint64_t i) const {
  return "dataset " + (blend_ ? blend_->indexed(blend_->datasetOf(i)).prefix : single_->prefix);
}

static Json counts(const IndexedDataset& ds) {
  Json j = Json::object();
  j.set("numSequences", Json::integer((long long)ds.numSequences()));
  j.set("numDocuments", Json::integer((long long)ds.numDocuments()));
  j.set("totalTokens", Json::integer((long long)ds.totalTokens()));
  return j;
}

Json SplitData::identity() const {
  if (!blend_) return counts(*single_);
  Json a = Json::array();
  for (size_t d = 0; d < blend_->numDatasets(); d++) {
    Json j = Json::object();
    j.set("weight", Json::number(blend_->weight(d)));
    for (auto& kv : counts(blend_->indexed(d)).obj) j.set(kv.first, kv.second);
    a.push(j);
  }
  Json j = Json::object();
  j.set("blend", a);
  return j;
}

static Json order(const GptDataset& g) {
  Json j = Json::object();
  j.set("epochs", Json::integer(g.numEpochs()));
  j.set("separateFinalEpoch", Json::boolean(g.separateFinalEpoch()));
  return j;
}

Json SplitData::dataOrder() const {
  Json a = Json::array();
  if (!blend_) a.push(order(*gpt_));
  else
    for (size_t d = 0; d < blend_->numDatasets(); d++) a.push(order(blend_->gpt(d)));
  return a;
}

static Json part(const IndexedDataset& ds, const GptDataset& g) {
  Json j = Json::object();
  j.set("prefix", Json::string(ds.prefix));
  j.set("firstSequence", Json::integer((long long)g.firstDocument()));
  j.set("numSequences", Json::integer((long long)g.numDocuments()));
  j.set("numSamples", Json::integer((long long)g.requested()));
  j.set("size", Json::integer((long long)g.size()));
  j.set("epochs", Json::integer(g.numEpochs()));
  return j;
}

Json SplitData::describe() const {
  Json a = Json::array();
  if (!blend_) a.push(part(*single_, *gpt_));
  else
    for (size_t d = 0; d < blend_->numDatasets(); d++) {
      Json j = part(blend_->indexed(d), blend_->gpt(d));
      j.set("weight", Json::number(blend_->weight(d)));
      j.set("drawn", Json::integer((long long)blend_->drawn(d)));
      a.push(j);
    }
  return a;
}

}  // namespace flame
