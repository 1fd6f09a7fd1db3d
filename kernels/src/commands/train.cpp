// train: Megatron-style pre-training loop on one data-parallel rank.
//   per iteration: globalBatchSize / microBatchSize micro-steps (gradient accumulation), loss
//   averaged per token over the global batch, aux + z losses per micro-batch scaled by
//   1 / num_micro_batches (Megatron's MoEAuxLossAutoScaler), global-norm clipping, AdamW, WSD lr.
#include "commands/commands.h"
#include "checkpoint.h"
#include "common.h"
#include "data/split_data.h"
#include "engine/engine.h"
#include "model.h"
#include "protocol.h"
#include "schedule.h"
#include <algorithm>
#include <cmath>
#include <cstdio>

namespace flame {

SplitData open_train_split(const Config& cfg, const std::string& command) {
  if (!cfg.hasTrain) fail(EXIT_CONFIG, "config.train: missing required section for `" + command + "`");
  if (!cfg.hasData || !cfg.data.given()) fail(EXIT_CONFIG, "config.data.prefix: missing required key for `" + command + "` (or config.data.blend)");
  const uint64_t need = (uint64_t)cfg.train.trainIters * cfg.train.globalBatchSize;
  if (split_target(cfg.data, 0, need) < need)
    fail(EXIT_CONFIG, "config.data.splitSamples.train: " + std::to_string(cfg.data.splitSamples[0]) + " is less than trainIters * globalBatchSize = " + std::to_string(need));
  return SplitData(cfg.data, 0, split_target(cfg.data, 0, need), (int)cfg.model.seqLength);
}

int cmd_train(const Config& cfg, const CliArgs& args) {
  setup_threads(cfg, args);
  SplitData train = open_train_split(cfg, "train");
  const ModelConfig& mc = cfg.model; const TrainConfig& tc = cfg.train;
  const int S = (int)mc.seqLength, mbs = (int)tc.microBatchSize;
  const long numMicro = tc.globalBatchSize / tc.microBatchSize;
  Json dataInfo = train.identity();
  Json dataOrder = train.dataOrder();

  Model model(mc);
  Optimizer opt; opt.m.assign(model.size, 0); opt.v.assign(model.size, 0);
  long start = 0;
  std::string resume = cfg.runtime.resumeFrom;
  if (!resume.empty()) {
    CheckpointState st = load_resume_checkpoint(resume, cfg, model, opt, dataInfo, dataOrder);
    start = st.iteration;
    std::string n = std::to_string(start);
    if (st.scheduleDiffers)
      proto::log("info", "resumed from " + resume + " at iteration " + n + ": its schedule agrees with this one up to iteration " + n);
    else
      proto::log("info", "resumed from " + resume + " at iteration " + n);
  } else {
    model.init((uint64_t)tc.seed);
  }
  std::unique_ptr<Engine> engine = make_engine(cfg, model, &opt);
  engine->upload(model, &opt);
  proto::log("info", "backend " + engine->describe());
  WsdSchedule sched = WsdSchedule::from(tc);
  const int nMoe = (int)model.moeLayerIds().size(), E = (int)mc.numExperts, K = (int)mc.topK;
  std::vector<int32_t> tokens((size_t)mbs * (S + 1)), in((size_t)mbs * S), tg((size_t)mbs * S);
  std::vector<std::string> written;
  double lastLoss = NAN, tStart = now_seconds(), lastLr = 0;
  long tokensDone = 0;
  std::vector<std::vector<double>> lastLoad(nMoe, std::vector<double>(E, 0));

  proto::progress(start, tc.trainIters);
  for (long it = start + 1; it <= tc.trainIters; it++) {
    double t0 = now_seconds();
    double lr = sched.lr_for_iteration(it);
    engine->zero_grad();
    double lmSum = 0, aux = 0, z = 0;
    std::vector<std::vector<long>> load(nMoe, std::vector<long>(E, 0));
    for (long mi = 0; mi < numMicro; mi++) {
      uint64_t base = (uint64_t)(it - 1) * tc.globalBatchSize + (uint64_t)mi * mbs;
      for (int b = 0; b < mbs; b++) {
        int32_t* row = &tokens[(size_t)b * (S + 1)];
        train.sample(base + b, row);
        check_tokens(row, S + 1, mc.vocabSize, train.source(base + b));
        for (int s = 0; s < S; s++) { in[(size_t)b * S + s] = row[s]; tg[(size_t)b * S + s] = row[s + 1]; }
      }
      StepOptions o; o.grad = true;
      o.lmScale = 1.0 / ((double)tc.globalBatchSize * S);
      o.auxScale = 1.0 / (double)numMicro;
      StepResult r = engine->step(in.data(), tg.data(), mbs, S, o);
      lmSum += r.lmLossSum; aux += r.aux / numMicro; z += r.z / numMicro;
      for (int j = 0; j < nMoe; j++) for (int e = 0; e < E; e++) load[j][e] += r.counts[j][e];
    }
    double gn = engine->grad_norm();
    double coeff = tc.clipGrad > 0 ? tc.clipGrad / (gn + 1e-6) : 1.0;  // Megatron clip_grad_norm_fp32
    opt.step++;
    engine->optimizer_step(lr, coeff, tc, opt.step);
    double loss = lmSum / ((double)tc.globalBatchSize * S);
    double dt = now_seconds() - t0;
    long toks = tc.globalBatchSize * S;
    tokensDone += toks; lastLoss = loss; lastLr = lr;
    proto::progress(it, tc.trainIters);
    proto::metric("loss", it, loss);
    proto::metric("lr", it, lr);
    proto::metric("grad_norm", it, gn);
    if (nMoe) { proto::metric("aux_loss", it, aux); proto::metric("z_loss", it, z); }
    proto::metric("tokens_per_s", it, toks / dt);
    for (int j = 0; j < nMoe; j++) {
      double tot = 0; for (int e = 0; e < E; e++) tot += load[j][e];
      for (int e = 0; e < E; e++) lastLoad[j][e] = load[j][e] / tot;
    }
    if (nMoe && (it % tc.logInterval == 0 || it == tc.trainIters)) {
      for (int j = 0; j < nMoe; j++) {
        // Named by Megatron's 1-based layer_number (index + 1): FLAME-MoE's first MoE layer is layer2.
        int l = model.moeLayerIds()[j] + 1;
        double mean = 1.0 / E, var = 0, mx = 0;
        for (int e = 0; e < E; e++) { double f = lastLoad[j][e]; var += (f - mean) * (f - mean); mx = std::max(mx, f); }
        std::string p = "expert_load/layer" + std::to_string(l) + "/";
        proto::metric(p + "cv", it, std::sqrt(var / E) / mean);
        proto::metric(p + "max_over_mean", it, mx / mean);
        if (cfg.runtime.expertLoadDetail)
          for (int e = 0; e < E; e++) proto::metric(p + "e" + std::to_string(e), it, lastLoad[j][e]);
      }
    }
    if (it % tc.logInterval == 0 || it == tc.trainIters) {
      char b[256];
      snprintf(b, sizeof b, "iteration %ld/%ld | loss %.4f | lr %.3e | grad norm %.3f | aux %.4f | z %.4f | %.0f tokens/s",
               it, tc.trainIters, loss, lr, gn, aux, z, toks / dt);
      fprintf(stderr, "%s\n", b);
      proto::log("info", b);
    }
    bool listed = std::binary_search(tc.saveIters.begin(), tc.saveIters.end(), it);
    if ((tc.saveInterval > 0 && it % tc.saveInterval == 0) || it == tc.trainIters || listed) {
      engine->download(model, &opt);
      CheckpointState st; st.iteration = it; st.consumedSamples = (uint64_t)it * tc.globalBatchSize; st.data = dataInfo;
      st.dataOrder = dataOrder;
      std::string name = save_checkpoint(cfg.runtime.outputDir, cfg, model, opt, st);
      written.push_back(name);
      proto::artifact("checkpoint/" + std::to_string(it), name);
    }
  }
  double elapsed = now_seconds() - tStart;
  Json r = Json::object();
  r.set("finalLoss", Json::number(lastLoss));
  r.set("iterations", Json::integer(tc.trainIters));
  r.set("startIteration", Json::integer(start));
  r.set("tokens", Json::integer((long long)tc.trainIters * tc.globalBatchSize * S));
  r.set("tokensThisRun", Json::integer(tokensDone));
  r.set("tokensPerSecond", Json::number(elapsed > 0 ? tokensDone / elapsed : 0));
  r.set("finalLr", Json::number(lastLr));
  Json cks = Json::array(); for (auto& w : written) cks.push(Json::string(w));
  r.set("checkpoints", cks);
  if (!written.empty()) r.set("finalCheckpoint", Json::string(written.back()));
  Json el = Json::object();
  for (int j = 0; j < nMoe; j++) {
    Json a = Json::array(); for (int e = 0; e < E; e++) a.push(Json::number(lastLoad[j][e]));
    el.set("layer" + std::to_string(model.moeLayerIds()[j] + 1), a);  // Megatron's layer number
  }
  r.set("expertLoad", el);
  ParamCounts pc = count_params(mc);
  r.set("activeParams", Json::integer((long long)pc.active));
  r.set("totalParams", Json::integer((long long)pc.total));
  (void)K;
  proto::result(r);
  return 0;
}

}  // namespace flame
