// The CUDA engine (engine/engine.h) and its availability check, for the worker and the tests.
#pragma once
#include <memory>
#include <string>
#include "engine/engine.h"

namespace flame { namespace cuda {
// "" when a CUDA device and cuBLAS can be used with this config, else why not.
std::string unavailable(const Config& cfg);
// runtime.precision selects the activation type: "bf16" or "fp32".
std::unique_ptr<Engine> make_engine(const Config& cfg, Model& model);
Json version_info();
}}  // namespace flame::cuda
