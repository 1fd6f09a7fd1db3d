// safetensors (https://github.com/huggingface/safetensors format): u64 little-endian header length
// N, N bytes of JSON header {name: {dtype, shape, data_offsets: [begin, end)}, "__metadata__": {..}}
// (padded with spaces to a multiple of 8), then the raw little-endian tensor bytes.
// We write tensors in a fixed order with deterministic headers so equal weights give equal files.
#pragma once
#include <cstddef>
#include <string>
#include <utility>
#include <vector>
#include "io/json.h"

namespace flame {

struct StTensorOut {
  std::string name;
  std::vector<long> shape;
  const float* data;  // F32
};
void safetensors_write(const std::string& path, const std::vector<StTensorOut>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata);
// What safetensors_write puts before the tensor data (u64 header length, padded header), and the
// size of the data after it: a file holds exactly what it would write for these tensors iff it
// starts with this prefix, is that much longer, and its data bytes are the tensors' F32 bytes.
std::string safetensors_prefix(const std::vector<StTensorOut>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata);
size_t safetensors_data_bytes(const std::vector<StTensorOut>& tensors);

struct StEntry { std::string name, dtype; std::vector<long> shape; size_t begin = 0, end = 0; };
struct SafetensorsFile {
  std::string path, bytes;
  size_t dataStart = 0;
  std::vector<StEntry> entries;
  Json metadata;
  const StEntry* get(const std::string& name) const;
  const char* data(const StEntry& e) const { return bytes.data() + dataStart + e.begin; }
};
// errCode: the exit code for malformed files (EXIT_CHECKPOINT for checkpoints)
SafetensorsFile safetensors_read(const std::string& path, int errCode);

}  // namespace flame
