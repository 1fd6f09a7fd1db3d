#include "bpe.h"

#include <algorithm>
#include <cstring>
#include <functional>

namespace flametok {

MergeTable::MergeTable(const std::vector<int32_t>& triples) {
  const size_t pairs = triples.size() / 3;
  size_t size = 16;
  while (size < pairs * 2) size *= 2;
  mask_ = size - 1;
  entries_.assign(size, Entry{kEmpty, 0, 0});
  for (size_t rank = 0; rank < pairs; rank++) {
    const uint64_t key = (uint64_t(uint32_t(triples[3 * rank])) << 32) | uint32_t(triples[3 * rank + 1]);
    size_t slot = slot_of(key);
    while (entries_[slot].key != kEmpty && entries_[slot].key != key) slot = (slot + 1) & mask_;
    if (entries_[slot].key == key) continue;
    entries_[slot] = Entry{key, int32_t(rank), uint32_t(triples[3 * rank + 2])};
  }
}

namespace {

constexpr size_t kSmallWord = 64;
constexpr int32_t kNoMerge = 0x7fffffff;

// Pair ranks are looked up once and refreshed only next to each merge; the lowest is found by a
// scan, which beats a heap on the short words that make up nearly all cache misses.
size_t merge_small(const MergeTable& table, uint32_t* ids, size_t n) {
  int32_t ranks[kSmallWord];
  uint32_t merged[kSmallWord];
  auto refresh = [&](size_t p) {
    const int32_t r = table.find(ids[p], ids[p + 1], merged[p]);
    ranks[p] = r < 0 ? kNoMerge : r;
  };
  for (size_t p = 0; p + 1 < n; p++) refresh(p);
  while (n > 1) {
    size_t best = 0;
    int32_t best_rank = ranks[0];
    for (size_t p = 1; p + 1 < n; p++) {
      if (ranks[p] < best_rank) {
        best_rank = ranks[p];
        best = p;
      }
    }
    if (best_rank == kNoMerge) break;
    ids[best] = merged[best];
    std::memmove(ids + best + 1, ids + best + 2, (n - best - 2) * sizeof(uint32_t));
    if (n - best >= 3) {
      std::memmove(ranks + best + 1, ranks + best + 2, (n - best - 3) * sizeof(int32_t));
      std::memmove(merged + best + 1, merged + best + 2, (n - best - 3) * sizeof(uint32_t));
    }
    n--;
    if (best > 0) refresh(best - 1);
    if (best + 1 < n) refresh(best);
  }
  return n;
}

// Long words (runs of digits, base64, repeated characters): a min-heap of (rank, position) over a
// linked list of symbols; entries made stale by a neighbouring merge are skipped when popped.
size_t merge_large(const MergeTable& table, uint32_t* ids, size_t n, MergeScratch& s) {
  s.next.resize(n);
  s.prev.resize(n);
  std::vector<uint64_t>& heap = s.heap;
  heap.clear();
  for (size_t i = 0; i < n; i++) {
    s.next[i] = i + 1 < n ? int32_t(i + 1) : -1;
    s.prev[i] = int32_t(i) - 1;
  }
  const auto cmp = std::greater<uint64_t>();
  auto consider = [&](int32_t pos) {
    const int32_t nx = s.next[pos];
    if (nx < 0) return;
    uint32_t merged = 0;
    const int32_t r = table.find(ids[pos], ids[nx], merged);
    if (r < 0) return;
    heap.push_back((uint64_t(uint32_t(r)) << 32) | uint32_t(pos));
    std::push_heap(heap.begin(), heap.end(), cmp);
  };
  for (size_t i = 0; i + 1 < n; i++) consider(int32_t(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), cmp);
    const uint64_t key = heap.back();
    heap.pop_back();
    const int32_t rank = int32_t(key >> 32);
    const int32_t pos = int32_t(uint32_t(key));
    // A merged-away symbol is marked by prev == -2.
    if (s.prev[pos] == -2) continue;
    const int32_t nx = s.next[pos];
    if (nx < 0) continue;
    uint32_t merged = 0;
    if (table.find(ids[pos], ids[nx], merged) != rank) continue;
    ids[pos] = merged;
    const int32_t nn = s.next[nx];
    s.prev[nx] = -2;
    s.next[pos] = nn;
    if (nn >= 0) s.prev[nn] = pos;
    if (s.prev[pos] >= 0) consider(s.prev[pos]);
    consider(pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = s.next[i]) ids[out++] = ids[i];
  return out;
}

}  // namespace

size_t merge_word(const MergeTable& table, uint32_t* ids, size_t n, MergeScratch& scratch) {
  if (n < 2) return n;
  return n <= kSmallWord ? merge_small(table, ids, n) : merge_large(table, ids, n, scratch);
}

}  // namespace flametok
