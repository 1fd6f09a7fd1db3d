// The BPE merge step on token ids: a word starts as one id per byte and adjacent pairs are merged
// lowest rank first (leftmost on ties), the order of Hugging Face's `Word::merge_all`.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace flametok {

// Open-addressing hash table (left id, right id) -> (rank, merged id).
class MergeTable {
 public:
  // `triples` holds (left, right, merged) per merge, in rank order; a repeated pair keeps its
  // first (lowest) rank, as the Hugging Face loader does.
  explicit MergeTable(const std::vector<int32_t>& triples);

  // Rank of merging (a, b), or -1; on success `merged` is the id of the merged token.
  inline int32_t find(uint32_t a, uint32_t b, uint32_t& merged) const {
    const uint64_t key = (uint64_t(a) << 32) | b;
    size_t slot = slot_of(key);
    for (;;) {
      const Entry& e = entries_[slot];
      if (e.key == key) {
        merged = e.merged;
        return e.rank;
      }
      if (e.key == kEmpty) return -1;
      slot = (slot + 1) & mask_;
    }
  }

  size_t memory_bytes() const { return entries_.size() * sizeof(Entry); }

 private:
  struct Entry {
    uint64_t key;
    int32_t rank;
    uint32_t merged;
  };
  // Ids are below 2^31, so no real pair has this key.
  static constexpr uint64_t kEmpty = ~uint64_t(0);

  inline size_t slot_of(uint64_t key) const {
    return size_t((key * 0x9E3779B97F4A7C15ull) >> 32) & mask_;
  }

  std::vector<Entry> entries_;
  size_t mask_ = 0;
};

// Buffers for long words, reused between calls.
struct MergeScratch {
  std::vector<int32_t> next, prev;
  std::vector<uint64_t> heap;
};

// Merges ids[0, n) in place and returns the new length.
size_t merge_word(const MergeTable& table, uint32_t* ids, size_t n, MergeScratch& scratch);

}  // namespace flametok
