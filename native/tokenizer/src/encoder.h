// A byte-level BPE encoder (GPT-2 / GPT-NeoX family) on UTF-8 bytes, giving the ids of Hugging
// Face's `tokenizers`: added tokens are split off first, then the GPT-2 pre-tokenizer pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (a hand-written scanner over the Unicode classes Oniguruma uses), then BPE per piece with a
// cache. The same algorithm as src/tokenize/Tokenizer.ts, which is the portable fallback.
//
// Normalization stays with the caller (JavaScript's String.prototype.normalize): the encoder
// takes text only when normalization would leave it unchanged, which `normalization_is_identity`
// decides from a per-code-point table.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "added_tokens.h"
#include "bpe.h"
#include "piece_cache.h"

namespace flametok {

// Low two bits of a class-table entry: the pre-tokenizer class; bit 2: NFC leaves the code point
// unchanged in any context (NFC_Quick_Check = Yes, canonical combining class 0, never the second
// of a canonical composition).
enum : uint8_t { kOther = 0, kLetter = 1, kNumber = 2, kSpace = 3, kClassMask = 3, kNfcInert = 4 };
constexpr size_t kCodePoints = 0x110000;

enum class Normalization : uint8_t {
  kNone,  // no normalizer
  kNfc,   // NFC only: identity on text made of NFC-inert code points
  kOther  // any other: identity only on ASCII
};

struct EncoderConfig {
  std::vector<uint8_t> classes;  // kCodePoints entries
  int32_t byte_ids[256];         // id of each byte's symbol, -1 when missing from the vocabulary
  std::vector<int32_t> merges;   // (left, right, merged) triples in rank order
  std::vector<std::pair<std::string, uint32_t>> raw_added;         // matched on the raw text
  std::vector<std::pair<std::string, uint32_t>> normalized_added;  // matched after normalization
  std::vector<std::pair<std::string, uint32_t>> whole_tokens;      // ignore_merges: bytes -> id
  std::vector<uint32_t> prefix, suffix;                            // post-processor template
  bool add_prefix_space = false;
  bool use_regex = true;
  bool ignore_merges = false;
  Normalization normalization = Normalization::kNone;
  uint32_t eod = 0;
};

class Encoder {
 public:
  explicit Encoder(EncoderConfig config);

  // Memory held by the encoder's tables, roughly.
  size_t memory_bytes() const { return PieceCache::kBytes + config_.classes.size() + merges_.memory_bytes(); }

  // Whether the tokenizer's normalizers leave `s[0, n)` (valid UTF-8) unchanged.
  bool normalization_is_identity(const uint8_t* s, size_t n) const;

  // Most ids `encode_*` append for `n` bytes of input.
  size_t max_ids(size_t n) const {
    return n * (config_.add_prefix_space ? 2 : 1) + config_.prefix.size() + config_.suffix.size() + 2;
  }

  // Ids of text whose normalization is the identity: added tokens, pre-tokenizer, BPE (no
  // template). Appends to `out` (room for max_ids(n)) and returns the count.
  size_t encode_text(const uint8_t* s, size_t n, uint32_t* out);

  // Ids of an already normalized segment without added tokens: pre-tokenizer and BPE only.
  size_t encode_normalized(const uint8_t* s, size_t n, uint32_t* out);

  // What Megatron writes for one document: template + text, then EOD when there is any token.
  size_t encode_document(const uint8_t* s, size_t n, uint32_t* out);

 private:
  size_t encode_segment(const uint8_t* s, size_t n, uint32_t* out);
  size_t pre_tokenize(const uint8_t* s, size_t n, uint32_t* out);
  size_t encode_piece(const uint8_t* p, size_t n, uint64_t h, uint32_t* out);
  size_t encode_long_piece(const uint8_t* p, size_t n, uint32_t* out);
  size_t bpe(const uint8_t* p, size_t n);

  inline uint8_t class_at(const uint8_t* s, size_t i, size_t& length) const;

  EncoderConfig config_;
  MergeTable merges_;
  AddedTokens raw_added_, normalized_added_;
  std::unordered_map<std::string, uint32_t> whole_tokens_;
  PieceCache cache_;
  std::unordered_map<std::string, std::vector<uint32_t>> long_cache_;
  std::vector<uint32_t> scratch_ids_;
  std::vector<uint8_t> prefixed_;
  MergeScratch merge_scratch_;
  uint8_t ascii_class_[128];

  struct Piece {
    const uint8_t* p;
    size_t length;
    uint64_t hash;
  };
  static constexpr size_t kAhead = 16;
  Piece ahead_[kAhead];
};

}  // namespace flametok
