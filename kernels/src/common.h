// Shared basics: the scalar type, errors with exit codes, small helpers.
#pragma once
#include <cstdint>
#include <cstddef>
#include <string>
#include <stdexcept>
#include <vector>

namespace flame {

// The model code is written once against `real`. The worker is built with float (fp32 throughout,
// as the router is fp32 in Megatron anyway); the gradient-check test builds the very same sources
// with -DFLAME_DOUBLE so finite differences are tight.
#ifdef FLAME_DOUBLE
typedef double real;
#else
typedef float real;
#endif

// Exit codes: 2 = bad config / usage, 3 = data files, 4 = checkpoint, 1 = anything else.
enum ExitCode { EXIT_OTHER = 1, EXIT_CONFIG = 2, EXIT_DATA = 3, EXIT_CHECKPOINT = 4 };

struct FlameError : std::runtime_error {
  int code;
  FlameError(int c, const std::string& m) : std::runtime_error(m), code(c) {}
};

[[noreturn]] inline void fail(int code, const std::string& msg) { throw FlameError(code, msg); }

std::string read_file(const std::string& path);  // throws FlameError(EXIT_OTHER) on failure
std::string sha256_hex(const void* data, size_t n);
std::string sha256_file(const std::string& path);
double now_seconds();

}  // namespace flame
