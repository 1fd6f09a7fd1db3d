// The worker's one JSON config: model / train / data / eval / trace / runtime sections.
// Defaults are FLAME-MoE's constants (Megatron-LM as configured by configs/model/flame-moe.sh and
// configs/train/flame-moe.sh). Every key is validated; unknown keys are errors.
#pragma once
#include <string>
#include <vector>
#include "data/blended_dataset.h"
#include "io/json.h"

namespace flame {

struct ModelConfig {
  long vocabSize = 50304;       // padded vocabulary (pythia tokenizer 50277 padded to 128*k)
  long hiddenSize = 0;
  long numLayers = 0;
  long numAttentionHeads = 16;
  long ffnHiddenSize = 0;       // dense SwiGLU width (first layer in FLAME-MoE)
  long moeFfnHiddenSize = 0;    // per-expert SwiGLU width
  long numExperts = 64;
  long topK = 6;
  long sharedExpertSize = -1;   // -1 = default 2*moeFfnHiddenSize; 0 = no shared expert
  std::vector<bool> moeLayers;  // default: [0]*1 + [1]*(numLayers-1)
  long seqLength = 2048;
  double ropeBase = 10000.0;
  double normEps = 1e-6;
  double initStd = 0.02;
  double auxLossCoeff = 0.01;
  double zLossCoeff = 0.001;

  long headDim() const { return hiddenSize / numAttentionHeads; }
  long numMoeLayers() const { long n = 0; for (bool b : moeLayers) n += b; return n; }
  bool anyDense() const { return numMoeLayers() < numLayers; }
};

struct TrainConfig {
  long globalBatchSize = 1024;
  long microBatchSize = 1;
  long trainIters = 0;
  double lr = 3e-4, minLr = 3e-5;
  double warmupFraction = 0.01;
  long warmupIters = -1;        // -1: warmupFraction * trainIters; else absolute (--lr-warmup-iters)
  double wsdDecayFraction = 0.1;
  long wsdIters = -1;           // -1: floor(trainIters * wsdDecayFraction)
  std::string wsdDecayStyle = "exponential";  // --lr-wsd-decay-style: or linear, cosine, minus_sqrt
  double weightDecay = 0.01, clipGrad = 1.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  long seed = 1234;             // parameter init seed
  long saveInterval = 0;        // 0: only at the end
  std::vector<long> saveIters;  // further iterations to checkpoint at (sorted, unique, <= trainIters)
  long logInterval = 10;        // expert-load metrics cadence

  long resolvedWsdIters() const;
};

struct DataConfig {
  std::string prefix;             // one dataset (Megatron `--data-path PREFIX`)
  std::vector<BlendEntry> blend;  // or a weighted blend (`--data-path W1 PREFIX1 W2 PREFIX2 ...`)
  std::vector<double> split = {90, 5, 5};
  std::string splitString = "90,5,5";
  long seed = 1234;
  // Megatron's train_valid_test_num_samples (the target size of each split, which sets each
  // dataset's sample count and so the order); when absent each command uses its own default.
  bool hasSplitSamples = false;
  long splitSamples[3] = {0, 0, 0};

  bool given() const { return !prefix.empty() || !blend.empty(); }
};

struct EvalConfig {
  long valSamples = 64;
  std::string split = "valid";  // "valid" or "test"
  std::string requests;         // optional JSONL of log-likelihood requests
  std::string output;           // JSONL of scored requests; default <outputDir>/loglikelihood.jsonl
  long microBatchSize = 0;      // 0: train.microBatchSize (or 4)
};

struct TraceConfig {
  long numSamples = 8;
  std::vector<long> indices;    // explicit test-split sample indices (overrides numSamples)
  std::string split = "test";
  std::string output;           // default <outputDir>/trace.bin
};

struct RuntimeConfig {
  long threads = 0;             // 0: OMP default
  std::string outputDir = ".";
  std::string resumeFrom;
  std::string backend = "cpu";    // "cpu", "cuda" or "auto" (cuda when a GPU can be used)
  bool expertLoadDetail = false;  // also emit expert_load/layer{n}/e{j} metrics (n: Megatron's 1-based number)
  // CUDA backend only (the CPU backend is fp32 and deterministic throughout):
  std::string precision = "bf16"; // "bf16": bf16 GEMMs / activations, fp32 master weights,
                                  // gradients, optimizer and router; "fp32": fp32 everywhere
  bool deterministic = true;      // fixed-order reductions only; false allows fp32 atomics
  std::string attention = "flash";  // "flash" (no score matrix) or "plain" (materialises P)
  std::string cublas;             // path of libcublas.so (default: searched, see cuda/cublas.cu)
};

struct Config {
  ModelConfig model;
  TrainConfig train;
  DataConfig data;
  EvalConfig eval;
  TraceConfig trace;
  RuntimeConfig runtime;
  bool hasTrain = false, hasData = false;

  // sha256 over the canonical model section: checkpoints must match it to be loaded at all.
  std::string modelFingerprint() const;
  // model + everything that changes the training trajectory (not saveInterval/saveIters/logInterval/runtime).
  std::string trainFingerprint() const;
  Json modelJson() const;
  Json trainJson() const;
};

Config parse_config(const Json& root);
Config load_config(const std::string& path);
// "[0]*1+[1]*8" or a list of 0/1 -> booleans
std::vector<bool> parse_layer_pattern(const std::string& s, const std::string& keyPath);

}  // namespace flame
