// adopt: takes a checkpoint of another run as a checkpoint of this config's run. The checkpoint is
// loaded and checked exactly as `train` would to resume from it (load_resume_checkpoint: the same
// model, the same data, and a training config that is the same or differs only in a schedule that
// agrees step for step up to the checkpoint), so it is a state this config's run passes through.
// It is then written into --out as this run would have written it at that iteration: the same
// safetensors bytes (hard-linked from --from where provably identical, see save_checkpoint) and a
// state.json with this config's model, train, data and fingerprints. A run of this config can
// then resume from, evaluate or trace it as its own.
#include "commands/commands.h"
#include "checkpoint.h"
#include "common.h"
#include "data/split_data.h"
#include "model.h"
#include "protocol.h"

namespace flame {

int cmd_adopt(const Config& cfg, const CliArgs& a) {
  if (a.from.empty()) fail(EXIT_CONFIG, "adopt: --from CKPT is required");
  if (a.out.empty()) fail(EXIT_CONFIG, "adopt: --out DIR is required");
  SplitData train = open_train_split(cfg, "adopt");
  Json dataInfo = train.identity(), dataOrder = train.dataOrder();
  Model model(cfg.model);
  Optimizer opt;
  CheckpointState st = load_resume_checkpoint(a.from, cfg, model, opt, dataInfo, dataOrder);

  // What this config's run records at that iteration (see cmd_train): its own dataset identity and
  // data order, which the checks above found equal to the checkpoint's wherever it recorded them.
  CheckpointState mine;
  mine.iteration = st.iteration;
  mine.consumedSamples = (uint64_t)st.iteration * cfg.train.globalBatchSize;
  mine.data = dataInfo;
  mine.dataOrder = dataOrder;
  ReusableFiles reuse{a.from, st.files, {}};
  std::string name = save_checkpoint(a.out, cfg, model, opt, mine, &reuse);

  std::string n = std::to_string(st.iteration), how;
  for (auto& p : reuse.placed) how += (how.empty() ? "" : ", ") + p.first + " " + p.second;
  proto::log("info", "adopted " + a.from + " at iteration " + n + " as " + a.out + "/" + name +
                         (st.scheduleDiffers ? ": its schedule agrees with this one up to iteration " + n : "") +
                         " (" + how + ")");
  Json r = Json::object();
  r.set("checkpoint", Json::string(name));
  r.set("iteration", Json::integer(st.iteration));
  proto::result(r);
  return 0;
}

}  // namespace flame
