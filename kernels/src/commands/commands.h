#pragma once
#include <string>
#include "config.h"
namespace flame {
class SplitData;
struct CliArgs {
  std::string command, configPath, checkpoint, output, backend;
  std::string from, out;         // adopt: --from, --out
  long threads = -1;
  std::string split;             // samples: --split
  long start = 0, count = -1;    // samples: --start, --count (-1: to the end of the split)
};
int cmd_train(const Config& cfg, const CliArgs& a);
int cmd_eval(const Config& cfg, const CliArgs& a);
int cmd_trace(const Config& cfg, const CliArgs& a);
int cmd_params(const Config& cfg, const CliArgs& a);
int cmd_samples(const Config& cfg, const CliArgs& a);
int cmd_adopt(const Config& cfg, const CliArgs& a);
// The train split as `command` (train, adopt) reads it: checks that the config has the train and
// data sections and enough train samples for trainIters.
SplitData open_train_split(const Config& cfg, const std::string& command);
void setup_threads(const Config& cfg, const CliArgs& a);
// Reads seqLength+1-token samples, checks token ids against the vocabulary.
void check_tokens(const int32_t* t, size_t n, long vocab, const std::string& where);
void write_file_atomic(const std::string& path, const std::string& bytes);
}
