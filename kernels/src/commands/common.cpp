#include "commands/commands.h"
#include "common.h"
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <omp.h>
#include <unistd.h>
namespace flame {
void setup_threads(const Config& cfg, const CliArgs& a) {
  long n = a.threads >= 0 ? a.threads : cfg.runtime.threads;
  if (n > 0) omp_set_num_threads((int)n);
}
void check_tokens(const int32_t* t, size_t n, long vocab, const std::string& where) {
  for (size_t i = 0; i < n; i++)
    if (t[i] < 0 || t[i] >= vocab) fail(EXIT_DATA, where + ": token id " + std::to_string(t[i]) + " is outside the vocabulary (model.vocabSize " + std::to_string(vocab) + ")");
}
void write_file_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp-" + std::to_string(getpid());
  FILE* f = fopen(tmp.c_str(), "wb");
  if (!f) fail(EXIT_OTHER, "cannot write " + tmp + ": " + strerror(errno));
  bool ok = fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (fclose(f) != 0 || !ok) { unlink(tmp.c_str()); fail(EXIT_OTHER, "cannot write " + tmp + ": " + strerror(errno)); }
  if (rename(tmp.c_str(), path.c_str()) != 0) fail(EXIT_OTHER, "cannot rename " + tmp + " to " + path + ": " + strerror(errno));
}
}
