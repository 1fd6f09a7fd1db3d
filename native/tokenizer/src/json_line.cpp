#include "json_line.h"

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace flametok {

namespace {

inline bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline const uint8_t* skip_ws(const uint8_t* p, const uint8_t* e) {
  while (p < e && is_ws(*p)) p++;
  return p;
}

// The first '"', '\\' or control character (< 0x20) in [p, e), or e.
inline const uint8_t* find_special(const uint8_t* p, const uint8_t* e) {
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i control = _mm_set1_epi8(0x1F);
  while (e - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                     _mm_cmpeq_epi8(_mm_max_epu8(v, control), control));
    const int mask = _mm_movemask_epi8(hit);
    if (mask != 0) return p + __builtin_ctz(unsigned(mask));
    p += 16;
  }
#endif
  while (p < e && *p != '"' && *p != '\\' && *p >= 0x20) p++;
  return p;
}

inline int hex_digit(uint8_t c) {
  if (c >= '0' && c <= '9') return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

// The four hex digits at p, or -1.
inline int32_t hex4(const uint8_t* p) {
  int32_t v = 0;
  for (int i = 0; i < 4; i++) {
    const int d = hex_digit(p[i]);
    if (d < 0) return -1;
    v = (v << 4) | d;
  }
  return v;
}

// A string's body, from after its opening quote: returns past the closing quote, or nullptr when
// it is not a valid JSON string. `escaped`: whether it contains escapes.
const uint8_t* skip_string(const uint8_t* p, const uint8_t* e, bool& escaped) {
  escaped = false;
  for (;;) {
    p = find_special(p, e);
    if (p == e || *p < 0x20) return nullptr;
    if (*p == '"') return p + 1;
    escaped = true;
    if (e - p < 2) return nullptr;
    const uint8_t c = p[1];
    if (c == 'u') {
      if (e - p < 6 || hex4(p + 2) < 0) return nullptr;
      p += 6;
    } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
      p += 2;
    } else {
      return nullptr;
    }
  }
}

inline void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

// The value of a validated string body [p, q) (q at its closing quote) as UTF-8; false when it
// holds a lone surrogate, which has no UTF-8 form.
bool unescape(const uint8_t* p, const uint8_t* q, std::string& out) {
  out.clear();
  out.reserve(size_t(q - p));
  while (p < q) {
    const uint8_t* b = static_cast<const uint8_t*>(std::memchr(p, '\\', size_t(q - p)));
    if (b == nullptr) {
      out.append(reinterpret_cast<const char*>(p), size_t(q - p));
      break;
    }
    out.append(reinterpret_cast<const char*>(p), size_t(b - p));
    const uint8_t c = b[1];
    p = b + 2;
    switch (c) {
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp = uint32_t(hex4(b + 2));
        p = b + 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return false;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (q - p < 6 || p[0] != '\\' || p[1] != 'u') return false;
          const int32_t low = hex4(p + 2);
          if (low < 0xDC00 || low > 0xDFFF) return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + uint32_t(low - 0xDC00);
          p += 6;
        }
        append_utf8(out, cp);
        break;
      }
      default: out += char(c);  // " \ /
    }
  }
  return true;
}

inline const uint8_t* skip_digits(const uint8_t* p, const uint8_t* e) {
  while (p < e && *p >= '0' && *p <= '9') p++;
  return p;
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
const uint8_t* skip_number(const uint8_t* p, const uint8_t* e) {
  if (p < e && *p == '-') p++;
  if (p == e) return nullptr;
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    p = skip_digits(p + 1, e);
  } else {
    return nullptr;
  }
  if (p < e && *p == '.') {
    const uint8_t* q = skip_digits(p + 1, e);
    if (q == p + 1) return nullptr;
    p = q;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    const uint8_t* q = skip_digits(p, e);
    if (q == p) return nullptr;
    p = q;
  }
  return p;
}

inline const uint8_t* skip_literal(const uint8_t* p, const uint8_t* e, const char* word, size_t n) {
  return size_t(e - p) >= n && std::memcmp(p, word, n) == 0 ? p + n : nullptr;
}

// `"key" :` from the opening quote; returns past the colon, or nullptr.
const uint8_t* skip_key(const uint8_t* p, const uint8_t* e) {
  if (p == e || *p != '"') return nullptr;
  bool escaped;
  p = skip_string(p + 1, e, escaped);
  if (p == nullptr) return nullptr;
  p = skip_ws(p, e);
  return p < e && *p == ':' ? p + 1 : nullptr;
}

// One JSON value (leading whitespace allowed): returns past it, or nullptr when invalid. Nesting
// is tracked on an explicit stack, so hostile input cannot exhaust the C++ stack.
const uint8_t* skip_value(const uint8_t* p, const uint8_t* e, std::vector<uint8_t>& stack) {
  stack.clear();
  for (;;) {
    p = skip_ws(p, e);
    if (p == e) return nullptr;
    switch (*p) {
      case '{':
      case '[': {
        const uint8_t open = *p;
        p = skip_ws(p + 1, e);
        if (p < e && *p == (open == '{' ? '}' : ']')) {
          p++;
          break;
        }
        if (stack.size() >= JsonLineScanner::kMaxDepth) return nullptr;
        stack.push_back(open);
        if (open == '{' && (p = skip_key(p, e)) == nullptr) return nullptr;
        continue;
      }
      case '"': {
        bool escaped;
        p = skip_string(p + 1, e, escaped);
        break;
      }
      case 't': p = skip_literal(p, e, "true", 4); break;
      case 'f': p = skip_literal(p, e, "false", 5); break;
      case 'n': p = skip_literal(p, e, "null", 4); break;
      default: p = skip_number(p, e);
    }
    if (p == nullptr) return nullptr;
    // A value ended: close containers until one continues with its next element.
    for (;;) {
      if (stack.empty()) return p;
      p = skip_ws(p, e);
      if (p == e) return nullptr;
      const bool object = stack.back() == '{';
      if (*p == ',') {
        p = skip_ws(p + 1, e);
        if (object && (p = skip_key(p, e)) == nullptr) return nullptr;
        break;
      }
      if (*p != (object ? '}' : ']')) return nullptr;
      p++;
      stack.pop_back();
    }
  }
}

}  // namespace

bool JsonLineScanner::find_text(const uint8_t* line, size_t n, const std::string& key, const uint8_t*& text,
                                size_t& text_length) {
  const uint8_t* e = line + n;
  const uint8_t* p = skip_ws(line, e);
  if (p == e || *p != '{') return false;
  p = skip_ws(p + 1, e);
  const uint8_t* value = nullptr;  // body of the last string value of `key`
  const uint8_t* value_end = nullptr;
  bool value_escaped = false;
  if (p < e && *p == '}') {
    p++;
  } else {
    for (;;) {
      if (p == e || *p != '"') return false;
      bool escaped;
      const uint8_t* k = p + 1;
      const uint8_t* q = skip_string(k, e, escaped);
      if (q == nullptr) return false;
      const size_t klen = size_t(q - 1 - k);
      const bool is_key = escaped ? unescape(k, q - 1, key_) && key_ == key
                                  : klen == key.size() && std::memcmp(k, key.data(), klen) == 0;
      p = skip_ws(q, e);
      if (p == e || *p != ':') return false;
      p = skip_ws(p + 1, e);
      if (is_key && p < e && *p == '"') {
        value = p + 1;
        p = skip_string(value, e, value_escaped);
        value_end = p == nullptr ? nullptr : p - 1;
      } else {
        // A later non-string value of the key replaces an earlier string one.
        if (is_key) value = nullptr;
        p = skip_value(p, e, stack_);
      }
      if (p == nullptr) return false;
      p = skip_ws(p, e);
      if (p == e) return false;
      if (*p == ',') {
        p = skip_ws(p + 1, e);
        continue;
      }
      if (*p != '}') return false;
      p++;
      break;
    }
  }
  if (skip_ws(p, e) != e || value == nullptr) return false;
  if (!value_escaped) {
    text = value;
    text_length = size_t(value_end - value);
    return true;
  }
  if (!unescape(value, value_end, value_)) return false;
  text = reinterpret_cast<const uint8_t*>(value_.data());
  text_length = value_.size();
  return true;
}

}  // namespace flametok
