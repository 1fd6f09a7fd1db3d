// eval: validation loss / perplexity on a held-out split, and log-likelihood scoring of
// (context, continuation) requests the way lm-evaluation-harness does it.
#include "commands/commands.h"
#include "checkpoint.h"
#include "common.h"
#include "data/split_data.h"
#include "engine/engine.h"
#include "model.h"
#include "protocol.h"
#include <algorithm>
#include <cmath>
#include <cstdio>

namespace flame {

namespace {
struct Request { Json id; std::vector<int32_t> ctx, cont; };

std::vector<Request> read_requests(const std::string& path, long vocab) {
  std::string text;
  try { text = read_file(path); } catch (FlameError& e) { fail(EXIT_DATA, std::string("eval requests: ") + e.what()); }
  std::vector<Request> out; size_t pos = 0; long line = 0;
  while (pos < text.size()) {
    size_t e = text.find('\n', pos); if (e == std::string::npos) e = text.size();
    std::string l = text.substr(pos, e - pos); pos = e + 1; line++;
    if (l.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + ":" + std::to_string(line);
    Json j = json_parse(l, "eval request " + where, EXIT_DATA);
    Request r;
    auto ints = [&](const char* key, std::vector<int32_t>& v) {
      const Json* a = j.get(key);
      if (!a || a->type != Json::ARR) fail(EXIT_DATA, where + ": \"" + key + "\" must be an array of token ids");
      for (auto& x : a->arr) {
        if (x.type != Json::NUM || x.num != std::floor(x.num) || x.num < 0 || x.num >= vocab)
          fail(EXIT_DATA, where + ": \"" + key + "\" has an invalid token id " + x.dump() + " (vocabSize " + std::to_string(vocab) + ")");
        v.push_back((int32_t)x.num);
      }
    };
    const Json* id = j.get("id");
    r.id = id ? *id : Json::integer((long long)out.size());
    ints("context", r.ctx); ints("continuation", r.cont);
    if (r.ctx.empty()) fail(EXIT_DATA, where + ": empty context (lm-evaluation-harness uses the EOD token as the context then)");
    if (r.cont.empty()) fail(EXIT_DATA, where + ": empty continuation");
    out.push_back(std::move(r));
  }
  return out;
}
}  // namespace

int cmd_eval(const Config& cfg, const CliArgs& args) {
  std::string ckpt = args.checkpoint;
  if (ckpt.empty()) fail(EXIT_CONFIG, "eval: --checkpoint DIR is required");
  setup_threads(cfg, args);
  const ModelConfig& mc = cfg.model;
  const int S = (int)mc.seqLength;
  Model model(mc);
  CheckpointState st;
  load_checkpoint(ckpt, cfg, model, nullptr, &st);
  std::unique_ptr<Engine> engine = make_engine(cfg, model, nullptr);
  engine->upload(model, nullptr);
  int mbs = (int)(cfg.eval.microBatchSize > 0 ? cfg.eval.microBatchSize : (cfg.hasTrain ? cfg.train.microBatchSize : 4));
  Json result = Json::object();
  result.set("checkpoint", Json::string(ckpt));
  result.set("iteration", Json::integer(st.iteration));
  double t0 = now_seconds();

  bool doVal = cfg.hasData && cfg.data.given() && cfg.eval.valSamples > 0;
  if (doVal) {
    int split = cfg.eval.split == "test" ? 2 : 1;
    SplitData val(cfg.data, split, split_target(cfg.data, split, (uint64_t)cfg.eval.valSamples), S);
    long n = cfg.eval.valSamples;
    if ((uint64_t)n > val.size())
      fail(EXIT_CONFIG, "config.eval.valSamples: " + std::to_string(n) + " exceeds the " + std::to_string(val.size()) + " samples of the " + cfg.eval.split + " split (data.splitSamples." + cfg.eval.split + ")");
    std::vector<int32_t> row(S + 1), in((size_t)mbs * S), tg((size_t)mbs * S);
    double sum = 0; long count = 0;
    for (long i0 = 0; i0 < n; i0 += mbs) {
      int b = (int)std::min<long>(mbs, n - i0);
      for (int j = 0; j < b; j++) {
        val.sample(i0 + j, row.data());
        check_tokens(row.data(), S + 1, mc.vocabSize, val.source(i0 + j));
        for (int s = 0; s < S; s++) { in[(size_t)j * S + s] = row[s]; tg[(size_t)j * S + s] = row[s + 1]; }
      }
      StepOptions o;
      StepResult r = engine->step(in.data(), tg.data(), b, S, o);
      sum += r.lmLossSum; count += (long)b * S;
      proto::progress(std::min(n, i0 + b), n);
    }
    double loss = sum / count;
    proto::metric(cfg.eval.split + "_loss", st.iteration, loss);
    proto::metric(cfg.eval.split + "_ppl", st.iteration, std::exp(loss));
    result.set("split", Json::string(cfg.eval.split));
    result.set("loss", Json::number(loss));
    result.set("perplexity", Json::number(std::exp(loss)));
    result.set("samples", Json::integer(n));
    result.set("tokens", Json::integer(count));
  }

  if (!cfg.eval.requests.empty()) {
    std::vector<Request> reqs = read_requests(cfg.eval.requests, mc.vocabSize);
    size_t N = reqs.size();
    // lm-evaluation-harness: inp = (context + continuation)[-(max_length + 1):][:-1]; the
    // continuation's log-probs are the last len(continuation) positions.
    std::vector<std::vector<int32_t>> full(N);
    for (size_t i = 0; i < N; i++) {
      if ((long)reqs[i].cont.size() > S) fail(EXIT_DATA, "eval request " + reqs[i].id.dump() + ": continuation of " + std::to_string(reqs[i].cont.size()) + " tokens exceeds seqLength " + std::to_string(S));
      auto& f = full[i]; f = reqs[i].ctx; f.insert(f.end(), reqs[i].cont.begin(), reqs[i].cont.end());
      if ((long)f.size() > S + 1) f.erase(f.begin(), f.end() - (S + 1));
    }
    std::vector<size_t> order(N); for (size_t i = 0; i < N; i++) order[i] = i;
    // longest first, so each batch is padded to a similar length
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return full[a].size() > full[b].size(); });
    std::vector<double> logprob(N); std::vector<char> greedy(N);
    int rb = std::max(mbs, 8);
    for (size_t i0 = 0; i0 < N; i0 += rb) {
      int b = (int)std::min<size_t>(rb, N - i0);
      int Sb = (int)full[order[i0]].size() - 1;
      std::vector<int32_t> in((size_t)b * Sb, 0), tg((size_t)b * Sb, 0);
      for (int j = 0; j < b; j++) {
        auto& f = full[order[i0 + j]];
        for (size_t s = 0; s + 1 < f.size(); s++) { in[(size_t)j * Sb + s] = f[s]; tg[(size_t)j * Sb + s] = f[s + 1]; }
      }
      std::vector<double> tl((size_t)b * Sb); std::vector<int32_t> am((size_t)b * Sb);
      StepOptions o; o.tokenLoss = tl.data(); o.tokenArgmax = am.data();
      engine->step(in.data(), tg.data(), b, Sb, o);
      for (int j = 0; j < b; j++) {
        size_t r = order[i0 + j]; int len = (int)full[r].size() - 1, nc = (int)reqs[r].cont.size();
        double lp = 0; bool g = true;
        for (int s = len - nc; s < len; s++) { lp -= tl[(size_t)j * Sb + s]; g = g && am[(size_t)j * Sb + s] == tg[(size_t)j * Sb + s]; }
        logprob[r] = lp; greedy[r] = g;
      }
      proto::progress((long)std::min(N, i0 + b), (long)N);
    }
    std::string out;
    Json inl = Json::array();
    for (size_t i = 0; i < N; i++) {
      Json o = Json::object();
      o.set("id", reqs[i].id); o.set("logprob", Json::number(logprob[i]));
      o.set("isGreedy", Json::boolean(greedy[i])); o.set("numTokens", Json::integer((long long)reqs[i].cont.size()));
      out += o.dump() + "\n";
      if (N <= 10000) inl.push(o);
    }
    std::string path = !args.output.empty() ? args.output : !cfg.eval.output.empty() ? cfg.eval.output : cfg.runtime.outputDir + "/loglikelihood.jsonl";
    write_file_atomic(path, out);
    proto::artifact("loglikelihood", path);
    result.set("requests", Json::integer((long long)N));
    result.set("loglikelihoodPath", Json::string(path));
    if (N <= 10000) result.set("loglikelihood", inl);
  }
  if (!doVal && cfg.eval.requests.empty()) fail(EXIT_CONFIG, "eval: nothing to do (set data.prefix or data.blend with eval.valSamples > 0, and/or eval.requests)");
  result.set("seconds", Json::number(now_seconds() - t0));
  proto::result(result);
  return 0;
}

}  // namespace flame
