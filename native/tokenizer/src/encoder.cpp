#include "encoder.h"

#include <cstring>

#include <utility>

namespace flametok {

namespace {

constexpr size_t kLongCacheLimit = size_t(1) << 16;
// Longer pieces (base64 blobs, long runs) are rarely repeated.
constexpr size_t kLongCacheMaxPiece = 256;

// Decodes the code point at s[i] (valid UTF-8) and its length in bytes.
inline uint32_t decode_utf8(const uint8_t* s, size_t i, size_t& length) {
  const uint8_t b = s[i];
  if (b < 0x80) {
    length = 1;
    return b;
  }
  if (b < 0xE0) {
    length = 2;
    return (uint32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F);
  }
  if (b < 0xF0) {
    length = 3;
    return (uint32_t(b & 0x0F) << 12) | (uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
  }
  length = 4;
  return (uint32_t(b & 0x07) << 18) | (uint32_t(s[i + 1] & 0x3F) << 12) | (uint32_t(s[i + 2] & 0x3F) << 6) |
         (s[i + 3] & 0x3F);
}

// Length of a GPT-2 contraction ('s 't 're 've 'm 'll 'd) starting at s[i] == '\'', or 0.
inline size_t contraction_length(const uint8_t* s, size_t i, size_t n) {
  if (i + 1 >= n) return 0;
  const uint8_t c1 = s[i + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (i + 2 >= n) return 0;
  const uint8_t c2 = s[i + 2];
  if ((c1 == 'r' || c1 == 'v') && c2 == 'e') return 3;
  if (c1 == 'l' && c2 == 'l') return 3;
  return 0;
}

}  // namespace

Encoder::Encoder(EncoderConfig config) : config_(std::move(config)), merges_(config_.merges) {
  for (const auto& [content, id] : config_.raw_added) raw_added_.add(content, id);
  for (const auto& [content, id] : config_.normalized_added) normalized_added_.add(content, id);
  for (const auto& [bytes, id] : config_.whole_tokens) whole_tokens_.emplace(bytes, id);
  config_.merges.clear();
  config_.merges.shrink_to_fit();
  scratch_ids_.resize(256);
  for (int b = 0; b < 128; b++) ascii_class_[b] = config_.classes[b] & kClassMask;
}

inline uint8_t Encoder::class_at(const uint8_t* s, size_t i, size_t& length) const {
  if (s[i] < 0x80) {
    length = 1;
    return ascii_class_[s[i]];
  }
  return config_.classes[decode_utf8(s, i, length)] & kClassMask;
}

bool Encoder::normalization_is_identity(const uint8_t* s, size_t n) const {
  if (config_.normalization == Normalization::kNone) return true;
  size_t i = 0;
  while (i < n) {
    // ASCII, eight bytes at a time: every normalization form leaves it alone.
    if (i + 8 <= n && (load64(s + i) & 0x8080808080808080ull) == 0) {
      i += 8;
      continue;
    }
    if (s[i] < 0x80) {
      i++;
      continue;
    }
    if (config_.normalization == Normalization::kOther) return false;
    size_t length;
    const uint32_t cp = decode_utf8(s, i, length);
    if ((config_.classes[cp] & kNfcInert) == 0) return false;
    i += length;
  }
  return true;
}

size_t Encoder::encode_document(const uint8_t* s, size_t n, uint32_t* out) {
  size_t count = 0;
  for (uint32_t id : config_.prefix) out[count++] = id;
  count += encode_text(s, n, out + count);
  for (uint32_t id : config_.suffix) out[count++] = id;
  if (count > 0) out[count++] = config_.eod;
  return count;
}

size_t Encoder::encode_text(const uint8_t* s, size_t n, uint32_t* out) {
  if (raw_added_.empty()) return encode_segment(s, n, out);
  size_t count = 0;
  size_t last = 0;
  size_t start, length;
  uint32_t id;
  while (raw_added_.next(s, last, n, start, length, id)) {
    if (start > last) count += encode_segment(s + last, start - last, out + count);
    out[count++] = id;
    last = start + length;
  }
  if (last < n) count += encode_segment(s + last, n - last, out + count);
  return count;
}

// A segment between raw added tokens; its normalization is the identity, so the normalized added
// tokens are matched on it as it is.
size_t Encoder::encode_segment(const uint8_t* s, size_t n, uint32_t* out) {
  if (normalized_added_.empty()) return pre_tokenize(s, n, out);
  size_t count = 0;
  size_t last = 0;
  size_t start, length;
  uint32_t id;
  while (normalized_added_.next(s, last, n, start, length, id)) {
    if (start > last) count += pre_tokenize(s + last, start - last, out + count);
    out[count++] = id;
    last = start + length;
  }
  if (last < n) count += pre_tokenize(s + last, n - last, out + count);
  return count;
}

size_t Encoder::encode_normalized(const uint8_t* s, size_t n, uint32_t* out) {
  return n == 0 ? 0 : pre_tokenize(s, n, out);
}

size_t Encoder::pre_tokenize(const uint8_t* piece, size_t piece_length, uint32_t* out) {
  const uint8_t* s = piece;
  size_t n = piece_length;
  if (config_.add_prefix_space && piece[0] != ' ') {
    prefixed_.resize(n + 1);
    prefixed_[0] = ' ';
    std::memcpy(prefixed_.data() + 1, piece, n);
    s = prefixed_.data();
    n++;
  }
  auto hash = [](const uint8_t* p, size_t length) {
    return length > 1 && length <= PieceCache::kMaxKey ? hash_bytes(p, length) : 0;
  };
  if (!config_.use_regex) return encode_piece(s, n, hash(s, n), out);
  // A piece is looked up kAhead pieces after the scanner found it and prefetched its cache slot,
  // so the lookups overlap their memory latency instead of paying it in turn.
  size_t count = 0;
  size_t head = 0;
  size_t pending = 0;
  auto emit = [&](const uint8_t* p, size_t length) {
    const uint64_t h = hash(p, length);
    if (h != 0) cache_.prefetch(h);
    if (pending < kAhead) {
      ahead_[(head + pending++) % kAhead] = Piece{p, length, h};
      return;
    }
    const Piece& oldest = ahead_[head];
    count += encode_piece(oldest.p, oldest.length, oldest.hash, out + count);
    ahead_[head] = Piece{p, length, h};
    head = (head + 1) % kAhead;
  };
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c == '\'') {
      const size_t m = contraction_length(s, i, n);
      if (m > 0) {
        emit(s + i, m);
        i += m;
        continue;
      }
    }
    // Class of the run: the char after a single leading space joins that space to its run.
    size_t length;
    uint8_t cls = class_at(s, i, length);
    size_t k = i + length;
    if (c == ' ' && k < n) {
      size_t length1;
      const uint8_t cls1 = class_at(s, k, length1);
      if (cls1 != kSpace) {
        cls = cls1;
        k += length1;
      }
    }
    if (cls == kSpace) {
      // \s+(?!\S): a run followed by a non-space leaves its last char to the next piece.
      size_t j = k;
      size_t last_start = i;
      while (j < n) {
        size_t lj;
        if (class_at(s, j, lj) != kSpace) break;
        last_start = j;
        j += lj;
      }
      if (j < n && last_start > i) j = last_start;
      emit(s + i, j - i);
      i = j;
      continue;
    }
    size_t j = k;
    while (j < n) {
      const uint8_t cj = s[j];
      if (cj < 0x80) {
        if (ascii_class_[cj] != cls) break;
        j++;
        continue;
      }
      size_t lj;
      if (class_at(s, j, lj) != cls) break;
      j += lj;
    }
    emit(s + i, j - i);
    i = j;
  }
  for (size_t k = 0; k < pending; k++) {
    const Piece& piece = ahead_[(head + k) % kAhead];
    count += encode_piece(piece.p, piece.length, piece.hash, out + count);
  }
  return count;
}

// `h` is hash_bytes(p, n) when the piece fits the inline cache and is longer than one byte.
size_t Encoder::encode_piece(const uint8_t* p, size_t n, uint64_t h, uint32_t* out) {
  if (n == 1) {
    // One byte is one symbol: nothing to merge or look up (a tenth of all pieces).
    const int32_t id = config_.byte_ids[p[0]];
    if (id < 0) return 0;
    out[0] = uint32_t(id);
    return 1;
  }
  if (n > PieceCache::kMaxKey) return encode_long_piece(p, n, out);
  PieceSlot* slot = cache_.find(p, n, h);
  if (slot->hash == 0) {
    // Pieces with many ids (digits, CJK) live in the long cache.
    if (!long_cache_.empty()) {
      auto it = long_cache_.find(std::string(reinterpret_cast<const char*>(p), n));
      if (it != long_cache_.end()) {
        std::memcpy(out, it->second.data(), it->second.size() * sizeof(uint32_t));
        return it->second.size();
      }
    }
    const size_t count = bpe(p, n);
    if (count > PieceCache::kMaxIds) {
      std::memcpy(out, scratch_ids_.data(), count * sizeof(uint32_t));
      if (long_cache_.size() >= kLongCacheLimit) long_cache_.clear();
      long_cache_.emplace(std::string(reinterpret_cast<const char*>(p), n),
                          std::vector<uint32_t>(scratch_ids_.begin(), scratch_ids_.begin() + count));
      return count;
    }
    slot = cache_.insert(slot, p, n, h, scratch_ids_.data(), count);
  }
  const size_t count = slot->count;
  for (size_t k = 0; k < count; k++) out[k] = slot->ids[k];
  return count;
}

// Pieces too long for the inline cache (about 1% of natural text) go through a map.
size_t Encoder::encode_long_piece(const uint8_t* p, size_t n, uint32_t* out) {
  if (n <= kLongCacheMaxPiece) {
    std::string key(reinterpret_cast<const char*>(p), n);
    auto it = long_cache_.find(key);
    if (it != long_cache_.end()) {
      std::memcpy(out, it->second.data(), it->second.size() * sizeof(uint32_t));
      return it->second.size();
    }
    const size_t count = bpe(p, n);
    std::memcpy(out, scratch_ids_.data(), count * sizeof(uint32_t));
    if (long_cache_.size() >= kLongCacheLimit) long_cache_.clear();
    long_cache_.emplace(std::move(key), std::vector<uint32_t>(scratch_ids_.begin(), scratch_ids_.begin() + count));
    return count;
  }
  const size_t count = bpe(p, n);
  std::memcpy(out, scratch_ids_.data(), count * sizeof(uint32_t));
  return count;
}

// BPE of p[0, n) into scratch_ids_; returns the id count.
size_t Encoder::bpe(const uint8_t* p, size_t n) {
  if (scratch_ids_.size() < n) scratch_ids_.resize(n);
  uint32_t* ids = scratch_ids_.data();
  if (config_.ignore_merges) {
    auto it = whole_tokens_.find(std::string(reinterpret_cast<const char*>(p), n));
    if (it != whole_tokens_.end()) {
      ids[0] = it->second;
      return 1;
    }
  }
  size_t count = 0;
  for (size_t i = 0; i < n; i++) {
    const int32_t id = config_.byte_ids[p[i]];
    // Without an unk token Hugging Face silently drops symbols missing from the vocabulary.
    if (id >= 0) ids[count++] = uint32_t(id);
  }
  return merge_word(merges_, ids, count, merge_scratch_);
}

}  // namespace flametok
