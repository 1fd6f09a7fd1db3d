// trace: router decisions for fixed held-out samples; binary format documented in kernels/README.md.
#include "commands/commands.h"
#include "checkpoint.h"
#include "common.h"
#include "data/split_data.h"
#include "engine/engine.h"
#include "model.h"
#include "protocol.h"
#include <algorithm>
#include <cstring>

namespace flame {

int cmd_trace(const Config& cfg, const CliArgs& args) {
  if (args.checkpoint.empty()) fail(EXIT_CONFIG, "trace: --checkpoint DIR is required");
  if (!cfg.hasData || !cfg.data.given()) fail(EXIT_CONFIG, "config.data.prefix: missing required key for `trace` (or config.data.blend)");
  setup_threads(cfg, args);
  const ModelConfig& mc = cfg.model;
  if (mc.numMoeLayers() == 0) fail(EXIT_CONFIG, "trace: the model has no MoE layers");
  const int S = (int)mc.seqLength, K = (int)mc.topK, E = (int)mc.numExperts;
  Model model(mc);
  CheckpointState st;
  load_checkpoint(args.checkpoint, cfg, model, nullptr, &st);
  std::unique_ptr<Engine> engine = make_engine(cfg, model, nullptr);
  engine->upload(model, nullptr);
  std::vector<uint64_t> idx;
  if (!cfg.trace.indices.empty()) for (long i : cfg.trace.indices) idx.push_back((uint64_t)i);
  else for (long i = 0; i < cfg.trace.numSamples; i++) idx.push_back((uint64_t)i);
  uint64_t need = *std::max_element(idx.begin(), idx.end()) + 1;
  // The dataset is built for data.splitSamples[split] or else max(numSamples, max index + 1)
  // samples: a function of the config only, so every checkpoint is traced on the same tokens.
  uint64_t nreq = std::max<uint64_t>(need, (uint64_t)cfg.trace.numSamples);
  int split = split_index(cfg.trace.split);
  SplitData data(cfg.data, split, split_target(cfg.data, split, nreq), S);
  if (need > data.size())
    fail(EXIT_CONFIG, "config.trace: sample " + std::to_string(need - 1) + " is beyond the " + std::to_string(data.size()) + " samples of the " + cfg.trace.split + " split (data.splitSamples." + cfg.trace.split + ")");
  const size_t N = idx.size(), T = N * S;
  const int nMoe = (int)model.moeLayerIds().size();
  std::vector<int32_t> tokens(T);
  std::vector<std::vector<uint8_t>> ids(nMoe, std::vector<uint8_t>(T * K));
  std::vector<std::vector<float>> probs(nMoe, std::vector<float>(T * K));
  int mbs = (int)(cfg.eval.microBatchSize > 0 ? cfg.eval.microBatchSize : (cfg.hasTrain ? cfg.train.microBatchSize : 4));
  std::vector<int32_t> row(S + 1), in((size_t)mbs * S), tg((size_t)mbs * S);
  for (size_t i0 = 0; i0 < N; i0 += mbs) {
    int b = (int)std::min<size_t>(mbs, N - i0);
    for (int j = 0; j < b; j++) {
      data.sample(idx[i0 + j], row.data());
      check_tokens(row.data(), S + 1, mc.vocabSize, data.source(idx[i0 + j]));
      for (int s = 0; s < S; s++) { in[(size_t)j * S + s] = row[s]; tg[(size_t)j * S + s] = row[s + 1]; }
    }
    memcpy(&tokens[i0 * S], in.data(), (size_t)b * S * sizeof(int32_t));
    StepOptions o;
    engine->step(in.data(), tg.data(), b, S, o);
    std::vector<int32_t> li; std::vector<float> lg;
    for (int l = 0; l < nMoe; l++) {
      engine->routing(l, li, lg);
      for (size_t t = 0; t < (size_t)b * S * K; t++) { ids[l][i0 * S * K + t] = (uint8_t)li[t]; probs[l][i0 * S * K + t] = lg[t]; }
    }
    proto::progress((long)std::min(N, i0 + b), (long)N);
  }
  std::string out;
  auto put = [&](const void* p, size_t n) { out.append((const char*)p, n); };
  auto u32 = [&](uint32_t v) { put(&v, 4); };
  auto u64 = [&](uint64_t v) { put(&v, 8); };
  put("FLMTRACE", 8);
  u32(1); u32((uint32_t)nMoe); u32((uint32_t)K); u32((uint32_t)E); u32((uint32_t)S); u32((uint32_t)N); u64(T);
  for (int l : model.moeLayerIds()) u32((uint32_t)l);
  for (uint64_t i : idx) u64(i);
  put(tokens.data(), T * 4);
  for (int l = 0; l < nMoe; l++) { put(ids[l].data(), T * K); put(probs[l].data(), T * K * 4); }
  std::string path = !args.output.empty() ? args.output : !cfg.trace.output.empty() ? cfg.trace.output : cfg.runtime.outputDir + "/trace.bin";
  write_file_atomic(path, out);
  proto::artifact("trace", path);
  Json r = Json::object();
  r.set("path", Json::string(path));
  r.set("iteration", Json::integer(st.iteration));
  r.set("samples", Json::integer((long long)N));
  r.set("tokens", Json::integer((long long)T));
  Json ly = Json::array(); for (int l : model.moeLayerIds()) ly.push(Json::integer(l));
  r.set("layers", ly);
  r.set("topK", Json::integer(K)); r.set("numExperts", Json::integer(E));
  r.set("bytes", Json::integer((long long)out.size()));
  proto::result(r);
  return 0;
}

}  // namespace flame
