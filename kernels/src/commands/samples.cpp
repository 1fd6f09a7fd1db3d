// samples: the token rows of a split, in the order train / eval / trace read them, one JSON line
// each on stdout — for checking the sample order against Megatron-LM (or a reference of it).
#include "commands/commands.h"
#include "common.h"
#include "data/split_data.h"
#include "protocol.h"
#include <cstdio>

namespace flame {

int cmd_samples(const Config& cfg, const CliArgs& args) {
  if (!cfg.hasData || !cfg.data.given()) fail(EXIT_CONFIG, "config.data.prefix: missing required key for `samples` (or config.data.blend)");
  if (args.split.empty()) fail(EXIT_CONFIG, "samples: --split train|valid|test is required");
  int split = split_index(args.split);
  // The split's target: data.splitSamples, else train's own (trainIters * globalBatchSize), else
  // just the rows asked for, as trace does.
  uint64_t dflt = 0;
  if (split == 0 && cfg.hasTrain) dflt = (uint64_t)cfg.train.trainIters * cfg.train.globalBatchSize;
  else if (args.count >= 0) dflt = (uint64_t)(args.start + args.count);
  else if (!cfg.data.hasSplitSamples)
    fail(EXIT_CONFIG, "samples: --count N is required for the " + args.split + " split without config.data.splitSamples");
  uint64_t target = split_target(cfg.data, split, dflt);
  const int S = (int)cfg.model.seqLength;
  SplitData data(cfg.data, split, target, S);
  uint64_t start = (uint64_t)args.start;
  uint64_t count = args.count >= 0 ? (uint64_t)args.count : (start < data.size() ? data.size() - start : 0);
  if (start + count > data.size())
    fail(EXIT_CONFIG, "samples: rows [" + std::to_string(start) + ", " + std::to_string(start + count) + ") go beyond the " +
                          std::to_string(data.size()) + " samples of the " + args.split + " split");
  std::vector<int32_t> row(S + 1);
  std::string line;
  for (uint64_t i = start; i < start + count; i++) {
    data.sample(i, row.data());
    line = "{\"index\":" + std::to_string(i) + ",\"dataset\":" + std::to_string(data.datasetOf(i)) +
           ",\"datasetSample\":" + std::to_string(data.sampleOf(i)) + ",\"tokens\":[";
    for (int s = 0; s <= S; s++) { if (s) line += ','; line += std::to_string(row[s]); }
    line += "]}\n";
    fwrite(line.data(), 1, line.size(), stdout);
  }
  fflush(stdout);
  Json r = Json::object();
  r.set("split", Json::string(args.split));
  r.set("target", Json::integer((long long)target));
  r.set("size", Json::integer((long long)data.size()));
  r.set("start", Json::integer((long long)start));
  r.set("count", Json::integer((long long)count));
  r.set("datasets", data.describe());
  proto::result(r);
  return 0;
}

}  // namespace flame
