// Checkpoints: <outputDir>/iter_%07d/{model.safetensors, optimizer.safetensors, state.json}.
// Written into a hidden temporary directory and renamed into place when complete, so a killed run
// never leaves a checkpoint that looks complete. Verified on load: sha256 of both safetensors
// files, model (and for resuming, training) config fingerprints, every tensor's name and shape.
#pragma once
#include <string>
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
  Json data;  // dataset identity (sequence and token counts) recorded at save time
};

std::string checkpoint_dirname(long iteration);
// Returns the directory name (relative to outputDir).
std::string save_checkpoint(const std::string& outputDir, const Config& cfg, const Model& model, const Optimizer& opt,
                            const CheckpointState& st);
// opt == nullptr: weights only (eval / trace; only the model section must match).
void load_checkpoint(const std::string& dir, const Config& cfg, Model& model, Optimizer* opt, CheckpointState* st);

}  // namespace flame
