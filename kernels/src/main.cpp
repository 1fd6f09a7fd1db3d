// flame-worker: the numerical engine of flame-pipe (CPU backend).
//   flame-worker <train|eval|trace|params> --config FILE [--checkpoint DIR] [--threads N] [--output PATH]
//   flame-worker samples --config FILE --split S [--start N] [--count N]
//   flame-worker adopt --config FILE --from CKPT --out DIR
//   flame-worker version
#include <cstdio>
#include <malloc.h>
#include <cerrno>
#include <cstring>
#include <new>
#include <unistd.h>
#include <string>
#include "commands/commands.h"
#include "common.h"
#include "cpu/gemm.h"
#include "engine/engine.h"
#include "protocol.h"

#ifndef FLAME_FLAGS
#define FLAME_FLAGS ""
#endif
#define FLAME_VERSION "0.1.0"

using namespace flame;

static const char* USAGE =
    "usage: flame-worker <command> [options]\n"
    "commands:\n"
    "  train   --config FILE [--threads N]                 train (resume via runtime.resumeFrom)\n"
    "  eval    --config FILE --checkpoint DIR [--output F] validation loss and log-likelihood requests\n"
    "  trace   --config FILE --checkpoint DIR [--output F] router traces of held-out samples\n"
    "  params  --config FILE                               active / total parameter counts\n"
    "  samples --config FILE --split train|valid|test [--start N] [--count N]\n"
    "                                                      the split's token rows in reading order (JSON lines)\n"
    "  adopt   --config FILE --from CKPT --out DIR         a checkpoint train could resume from, written as this\n"
    "                                                      config's run writes it at that iteration: DIR/iter_N\n"
    "  version                                             worker version, compiler and flags (JSON)\n"
    "options: --backend cpu|cuda|auto overrides runtime.backend\n";

static Json version_json() {
  Json v = Json::object();
  v.set("worker", Json::string("flame-worker"));
  v.set("version", Json::string(FLAME_VERSION));
  v.set("compiler", Json::string(std::string("g++ ") + __VERSION__));
  v.set("flags", Json::string(FLAME_FLAGS));
  Json b = Json::array(); b.push(Json::string("cpu"));
  if (g_cuda_backend) b.push(Json::string("cuda"));
  v.set("backends", b);
  if (g_cuda_backend) v.set("cuda", g_cuda_backend->version());
  v.set("gemmKernel", Json::string(cpu::gemm_kernel_name()));
  v.set("realBits", Json::integer(8 * sizeof(real)));
  return v;
}

// The CPU-only binary hands a cuda / auto run to flame-worker-cuda next to it (same arguments),
// so callers need not know which binary holds the backend. Returns when there is none: then the
// CPU binary fails clearly (cuda) or runs on the CPU (auto).
static void exec_cuda_worker(char** argv) {
  std::string path;
  if (const char* e = getenv("FLAME_WORKER_CUDA")) path = e;
  else {
    char buf[4096]; ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return;
    buf[n] = 0; std::string self = buf;
    path = self.substr(0, self.rfind('/') + 1) + "flame-worker-cuda";
  }
  if (access(path.c_str(), X_OK) != 0) return;
  argv[0] = (char*)path.c_str();
  execv(path.c_str(), argv);
  fprintf(stderr, "flame-worker: warning: cannot execute %s: %s\n", path.c_str(), strerror(errno));
}

int main(int argc, char** argv) {
  // Threads that wait at OpenMP barriers should sleep, not spin: on a shared 2-core machine a
  // spinning worker thread steals the core its partner needs (measured 2x slower steps under load).
  // libgomp reads OMP_WAIT_POLICY when it is loaded, so set it and re-execute once; an explicit
  // OMP_WAIT_POLICY in the environment is respected.
  if (!getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);  // only returns on failure: then carry on with the default
  }
  // Keep freed activation buffers in the heap instead of returning them to the OS: re-faulting
  // them every micro-step cost ~15% of a training step.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  proto::init();
  CliArgs a;
  try {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
      fputs(USAGE, argc < 2 ? stderr : stdout);
      return argc < 2 ? EXIT_CONFIG : 0;
    }
    a.command = argv[1];
    for (int i = 2; i < argc; i++) {
      std::string f = argv[i];
      auto val = [&]() -> std::string {
        if (i + 1 >= argc) fail(EXIT_CONFIG, "option " + f + " needs a value");
        return argv[++i];
      };
      if (f == "--config") a.configPath = val();
      else if (f == "--checkpoint") a.checkpoint = val();
      else if (f == "--output") a.output = val();
      else if (f == "--backend") a.backend = val();
      else if (f == "--split") a.split = val();
      else if (f == "--from") a.from = val();
      else if (f == "--out") a.out = val();
      else if (f == "--start" || f == "--count") {
        std::string v = val(); char* end; long n = strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || n < 0) fail(EXIT_CONFIG, "option " + f + ": expected a non-negative integer, got \"" + v + "\"");
        (f == "--start" ? a.start : a.count) = n;
      }
      else if (f == "--threads") {
        std::string v = val(); char* end; long n = strtol(v.c_str(), &end, 10);
        if (*end || n < 1) fail(EXIT_CONFIG, "option --threads: expected a positive integer, got \"" + v + "\"");
        a.threads = n;
      } else fail(EXIT_CONFIG, "unknown option " + f + "\n" + USAGE);
    }
    if (a.command == "version") {
      std::string s = version_json().dump();
      printf("%s\n", s.c_str()); fflush(stdout);
      return 0;
    }
    if (a.command != "train" && a.command != "eval" && a.command != "trace" && a.command != "params" && a.command != "samples" &&
        a.command != "adopt")
      fail(EXIT_CONFIG, "unknown command \"" + a.command + "\"\n" + USAGE);
    if (a.configPath.empty()) fail(EXIT_CONFIG, a.command + ": --config FILE is required");
    Config cfg = load_config(a.configPath);
    if (!a.backend.empty()) {
      if (a.backend != "cpu" && a.backend != "cuda" && a.backend != "auto") fail(EXIT_CONFIG, "option --backend: expected cpu, cuda or auto, got \"" + a.backend + "\"");
      cfg.runtime.backend = a.backend;
    }
    bool numeric = a.command != "params" && a.command != "samples" && a.command != "adopt";
    if (numeric && cfg.runtime.backend != "cpu" && !g_cuda_backend) exec_cuda_worker(argv);
    if (a.command == "train") return cmd_train(cfg, a);
    if (a.command == "eval") return cmd_eval(cfg, a);
    if (a.command == "trace") return cmd_trace(cfg, a);
    if (a.command == "samples") return cmd_samples(cfg, a);
    if (a.command == "adopt") return cmd_adopt(cfg, a);
    return cmd_params(cfg, a);
  } catch (FlameError& e) {
    std::string m = e.what();
    std::string first = m.substr(0, m.find('\n'));
    fprintf(stderr, "flame-worker: error: %s\n", m.c_str());
    proto::log("error", first);
    return e.code;
  } catch (std::bad_alloc&) {
    fprintf(stderr, "flame-worker: error: out of memory\n");
    proto::log("error", "out of memory");
    return EXIT_OTHER;
  } catch (std::exception& e) {
    fprintf(stderr, "flame-worker: error: %s\n", e.what());
    proto::log("error", e.what());
    return EXIT_OTHER;
  }
}
