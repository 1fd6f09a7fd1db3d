// The text field of one jsonl line, found by a validating scan: for a line that JSON.parse
// accepts as an object whose field is a string, the field's value as UTF-8 (the last one when the
// key repeats, as JSON.parse and Python's json.loads take it). Everything else is refused and left
// to the JavaScript reader, which names the error or copes with it (Python's NaN and Infinity,
// lone surrogates, missing or non-string fields, malformed JSON, nesting deeper than kMaxDepth).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace flametok {

class JsonLineScanner {
 public:
  static constexpr size_t kMaxDepth = 256;

  // On true, text[0, text_length) is the field's value: a span of `line` when it has no escapes,
  // else a buffer owned by the scanner (valid until the next call). `line` is valid UTF-8.
  bool find_text(const uint8_t* line, size_t n, const std::string& key, const uint8_t*& text, size_t& text_length);

 private:
  std::string value_, key_;
  std::vector<uint8_t> stack_;
};

}  // namespace flametok
