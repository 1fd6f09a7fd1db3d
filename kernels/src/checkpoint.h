// Checkpoints: <outputDir>/iter_%07d/{model.safetensors, optimizer.safetensors, state.json}.
// Written into a hidden temporary directory and renamed into place when complete, so a killed run
// never leaves a checkpoint that looks complete. Verified on load: sha256 of both safetensors
// files, model (and for resuming, training) config fingerprints, every tensor's name and shape.
#pragma once
#include <string>
#include <utility>
#include <vector>
#include "config.h"
#include "model.h"

namespace flame {

struct Optimizer {
  std::vector<real> m, v;  // Adam moments, same flat layout as Model::params
  long step = 0;
};

struct CheckpointState {
  long iteration = 0;
  uint64_t consumedSamples = 0;
  Json data;       // dataset identity (sequence and token counts) recorded at save time
  Json dataOrder;  // the train split's SplitData::dataOrder(); written when set
  // Set on load when the checkpoint was accepted for resuming under another learning-rate
  // schedule that agrees with its own up to its iteration (see load_checkpoint).
  bool scheduleDiffers = false;
  // Set on load: the sha256 of each file as recorded in state.json "files" (and verified).
  Json files;
};

// The safetensors files of a loaded checkpoint, which save_checkpoint may reuse instead of writing
// the same bytes again (adopt): dir and its verified hashes (CheckpointState::files). On return,
// how each file was put in place: "linked", "copied" or "written".
struct ReusableFiles {
  std::string dir;
  Json hashes;
  std::vector<std::pair<std::string, std::string>> placed;
};

std::string checkpoint_dirname(long iteration);
// Returns the directory name (relative to outputDir).
// With reuse, each safetensors file that provably holds the bytes this would write (the same
// header and, by its recorded hash, the very bytes the tensors were loaded from) is hard-linked
// from reuse->dir, or copied where linking fails, instead of rewritten.
std::string save_checkpoint(const std::string& outputDir, const Config& cfg, const Model& model, const Optimizer& opt,
                            const CheckpointState& st, ReusableFiles* reuse = nullptr);
// opt == nullptr: weights only (eval / trace; only the model section must match).
// With opt, for resuming, the training config must match too (trainFingerprint). When it does not
// and dataOrder (the resuming run's train split order) is given, the checkpoint is still accepted
// if it is a state the new run passes through: the two train configs differ only in the schedule
// keys (trainIters, lr, minLr, warmupFraction, warmupIters, wsdIters, wsdDecayStyle), the
// checkpoint recorded the same data order, and both schedules give bitwise the same lr for every
// iteration up to the checkpoint's.
void load_checkpoint(const std::string& dir, const Config& cfg, Model& model, Optimizer* opt, CheckpointState* st,
                     const Json* dataOrder = nullptr);
// load_checkpoint for continuing cfg's training run from dir (train's resume, adopt): with the
// train split's dataOrder for the schedule rule above, and besides its checks the checkpoint must
// have been trained on the same dataset (dataInfo: the train split's identity(), where the
// checkpoint recorded one), have consumed iteration * globalBatchSize samples, and lie within
// trainIters. Refusals exit with EXIT_CHECKPOINT.
CheckpointState load_resume_checkpoint(const std::string& dir, const Config& cfg, Model& model, Optimizer& opt,
                                       const Json& dataInfo, const Json& dataOrder);

}  // namespace flame
