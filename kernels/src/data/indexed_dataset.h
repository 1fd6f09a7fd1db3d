// Megatron indexed dataset (.idx + .bin), read-only, memory-mapped.
// .idx (little-endian): magic "MMIDIDX\0\0" (9 bytes), u64 version = 1, u8 dtype code
// (1 u8, 2 i8, 3 i16, 4 i32, 5 i64, 6 f64, 7 f32, 8 u16), u64 sequence count S, u64 document-index
// count D (= documents + 1), i32 sequence lengths[S], i64 byte pointers[S], i64 document indices[D].
// .bin: the raw token stream, no header.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace flame {

class IndexedDataset {
 public:
  explicit IndexedDataset(const std::string& prefix);  // throws FlameError(EXIT_DATA) on any defect
  ~IndexedDataset();
  IndexedDataset(const IndexedDataset&) = delete;
  IndexedDataset& operator=(const IndexedDataset&) = delete;

  size_t numSequences() const { return lengths_.size(); }
  size_t numDocuments() const { return docIdx_.empty() ? 0 : docIdx_.size() - 1; }
  const std::vector<int32_t>& lengths() const { return lengths_; }
  const std::vector<int64_t>& documentIndices() const { return docIdx_; }
  int dtypeCode() const { return dtype_; }
  uint64_t totalTokens() const { return totalTokens_; }
  // tokens [offset, offset+n) of sequence i, widened to int32
  void read(size_t seq, size_t offset, size_t n, int32_t* out) const;
  std::string prefix;

 private:
  std::vector<int32_t> lengths_;
  std::vector<int64_t> pointers_, docIdx_;
  int dtype_ = 0, itemsize_ = 0;
  uint64_t totalTokens_ = 0;
  const uint8_t* bin_ = nullptr;
  size_t binSize_ = 0;
};

}  // namespace flame
