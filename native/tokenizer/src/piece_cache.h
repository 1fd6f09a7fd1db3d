// Cache of pre-token bytes -> ids. Natural text repeats its pieces, so almost every piece is a hit
// and the hit path is bound by memory latency: each slot is one 64-byte cache line holding the
// hash, the key (up to 24 bytes) and the ids (up to 8) inline. Longer keys or id lists are not
// cached here. When half the slots are used the cache is dropped (cheap; encoding stays exact).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace flametok {

struct alignas(64) PieceSlot {
  uint32_t hash;  // 0: empty (stored hashes are forced odd)
  uint8_t length;
  uint8_t count;
  uint8_t pad[2];
  uint8_t key[24];
  uint32_t ids[8];
};
static_assert(sizeof(PieceSlot) == 64, "one slot per cache line");

// Hash of a short byte string: whole 8-byte words, the tail as one overlapping load.
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t hash_bytes(const uint8_t* p, size_t n) {
  constexpr uint64_t k = 0x9E3779B97F4A7C15ull;
  uint64_t h = (n + 1) * 0xC2B2AE3D27D4EB4Full;
  auto mix = [&](uint64_t v) {
    h = (h ^ v) * k;
    h ^= h >> 29;
  };
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 < n; i += 8) mix(load64(p + i));
    mix(load64(p + n - 8));
  } else if (n >= 4) {
    mix(uint64_t(load32(p)) | (uint64_t(load32(p + n - 4)) << 32));
  } else if (n > 0) {
    mix(uint64_t(p[0]) | (uint64_t(p[n / 2]) << 8) | (uint64_t(p[n - 1]) << 16));
  }
  h *= k;
  return h ^ (h >> 32);
}

// a[0, n) == b[0, n) for n <= 24, in word loads (the tail as one overlapping load).
inline bool equal_short(const uint8_t* a, const uint8_t* b, size_t n) {
  if (n >= 8) {
    size_t i = 0;
    for (; i + 8 < n; i += 8) {
      if (load64(a + i) != load64(b + i)) return false;
    }
    return load64(a + n - 8) == load64(b + n - 8);
  }
  if (n >= 4) return load32(a) == load32(b) && load32(a + n - 4) == load32(b + n - 4);
  for (size_t i = 0; i < n; i++) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

class PieceCache {
 public:
  static constexpr size_t kMaxKey = 24;
  static constexpr size_t kMaxIds = 8;
  static constexpr size_t kSlots = size_t(1) << 17;
  static constexpr size_t kBytes = kSlots * sizeof(PieceSlot);  // 8 MiB

  // The table sits in huge pages where the kernel offers them: random probes over 8 MiB would
  // otherwise miss the TLB about as often as the data cache.
  PieceCache() {
    constexpr size_t kHuge = size_t(2) << 20;
    void* memory = nullptr;
    if (posix_memalign(&memory, kHuge, kBytes) != 0) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    madvise(memory, kBytes, MADV_HUGEPAGE);
#endif
    slots_ = static_cast<PieceSlot*>(memory);
    clear();
  }
  ~PieceCache() { std::free(slots_); }
  PieceCache(const PieceCache&) = delete;
  PieceCache& operator=(const PieceCache&) = delete;

  // Starts loading the first slot `find(.., h)` will look at.
  void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[home(h)]); }

  // The slot holding `p[0, n)`, or the empty slot where `insert` will put it (hash == 0).
  PieceSlot* find(const uint8_t* p, size_t n, uint64_t h) {
    const uint32_t stored = uint32_t(h) | 1;
    size_t slot = home(h);
    for (;;) {
      PieceSlot* s = &slots_[slot];
      if (s->hash == stored && s->length == n && equal_short(s->key, p, n)) return s;
      if (s->hash == 0) return s;
      slot = (slot + 1) & (kSlots - 1);
    }
  }

  // Stores ids for a key whose `find` returned the empty `slot`; returns the slot used.
  PieceSlot* insert(PieceSlot* slot, const uint8_t* p, size_t n, uint64_t h, const uint32_t* ids, size_t count) {
    if (entries_ >= kSlots / 2) {
      clear();
      slot = find(p, n, h);
    }
    entries_++;
    slot->hash = uint32_t(h) | 1;
    slot->length = uint8_t(n);
    slot->count = uint8_t(count);
    std::memcpy(slot->key, p, n);
    std::memcpy(slot->ids, ids, count * sizeof(uint32_t));
    return slot;
  }

  void clear() {
    std::memset(static_cast<void*>(slots_), 0, kBytes);
    entries_ = 0;
  }

 private:
  static size_t home(uint64_t h) { return size_t(h >> 40) & (kSlots - 1); }
  PieceSlot* slots_ = nullptr;
  size_t entries_ = 0;
};

}  // namespace flametok
