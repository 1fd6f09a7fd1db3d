// Added tokens (special tokens, GPT-NeoX's runs of spaces) are split off before pre-tokenization,
// leftmost-longest as Hugging Face's AddedVocabulary does: at the first position where any token
// starts, the longest token starting there wins.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string>
#include <utility>
#include <vector>

namespace flametok {

// The first i >= from with s[i] == a and s[i + 1] == b, or n.
inline size_t find_pair(const uint8_t* s, size_t i, size_t n, uint8_t a, uint8_t b) {
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(char(a));
  const __m128i vb = _mm_set1_epi8(char(b));
  while (i + 17 <= n) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
    const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i + 1));
    const int mask = _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(y, vb)));
    if (mask != 0) return i + size_t(__builtin_ctz(unsigned(mask)));
    i += 16;
  }
#endif
  for (; i + 1 < n; i++) {
    if (s[i] == a && s[i + 1] == b) return i;
  }
  return n;
}

class AddedTokens {
 public:
  AddedTokens() : nodes_(1), first_byte_{}, one_byte_{}, pairs_{} {}

  void add(const std::string& content, uint32_t id) {
    if (content.empty()) return;
    size_t node = 0;
    for (unsigned char c : content) {
      int32_t child = child_of(node, c);
      if (child < 0) {
        child = int32_t(nodes_.size());
        nodes_[node].children.emplace_back(c, child);
        nodes_.emplace_back();
      }
      node = size_t(child);
    }
    // The first of a duplicate keeps its id.
    if (nodes_[node].id < 0) nodes_[node].id = int64_t(id);
    const unsigned char first = static_cast<unsigned char>(content[0]);
    first_byte_[first] = true;
    if (content.size() == 1) {
      one_byte_[first] = true;
      one_byte_tokens_ = true;
    } else {
      const unsigned pair = (unsigned(first) << 8) | static_cast<unsigned char>(content[1]);
      if ((pairs_[pair >> 6] >> (pair & 63) & 1) == 0) {
        pairs_[pair >> 6] |= uint64_t(1) << (pair & 63);
        distinct_pairs_++;
        last_pair_ = pair;
      }
    }
    firsts_ = 0;
    for (int b = 0; b < 256; b++) {
      if (first_byte_[b]) {
        single_first_ = b;
        firsts_++;
      }
    }
  }

  bool empty() const { return nodes_.size() == 1; }

  // The next match in s[from, n): its start, length and id; false when there is none.
  bool next(const uint8_t* s, size_t from, size_t n, size_t& start, size_t& length, uint32_t& id) const {
    for (size_t i = from; i < n; i++) {
      if (!one_byte_tokens_ && distinct_pairs_ == 1) {
        // All tokens start with the same two bytes ("<|" of special tokens, "  " of space runs).
        i = find_pair(s, i, n, uint8_t(last_pair_ >> 8), uint8_t(last_pair_));
        if (i == n) return false;
      } else if (firsts_ == 1) {
        // One first byte (the usual "<" of special tokens, or " " of space runs): memchr finds it.
        const void* hit = std::memchr(s + i, single_first_, n - i);
        if (hit == nullptr) return false;
        i = size_t(static_cast<const uint8_t*>(hit) - s);
      } else if (!first_byte_[s[i]]) {
        continue;
      }
      // Most candidates fail on their second byte ("<" in text, a single space before a word).
      if (!one_byte_[s[i]]) {
        if (i + 1 == n) return false;
        const unsigned pair = (unsigned(s[i]) << 8) | s[i + 1];
        if ((pairs_[pair >> 6] >> (pair & 63) & 1) == 0) continue;
      }
      size_t node = 0;
      size_t best = 0;
      for (size_t j = i; j < n; j++) {
        const int32_t child = child_of(node, s[j]);
        if (child < 0) break;
        node = size_t(child);
        if (nodes_[node].id >= 0) {
          best = j + 1 - i;
          id = uint32_t(nodes_[node].id);
        }
      }
      if (best > 0) {
        start = i;
        length = best;
        return true;
      }
    }
    return false;
  }

 private:
  struct Node {
    int64_t id = -1;
    std::vector<std::pair<unsigned char, int32_t>> children;
  };

  int32_t child_of(size_t node, unsigned char c) const {
    for (const auto& [byte, child] : nodes_[node].children) {
      if (byte == c) return child;
    }
    return -1;
  }

  std::vector<Node> nodes_;
  bool first_byte_[256];
  bool one_byte_[256];           // some token is this one byte
  uint64_t pairs_[65536 / 64];   // some token starts with these two bytes
  int firsts_ = 0;               // distinct first bytes
  int single_first_ = 0;         // the first byte, when there is only one
  bool one_byte_tokens_ = false;
  int distinct_pairs_ = 0;       // distinct first two bytes of the longer tokens
  unsigned last_pair_ = 0;       // the first two bytes, when they are the same for all
};

}  // namespace flametok
