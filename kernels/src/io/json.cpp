#include "io/json.h"
#include "common.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace flame {

const Json* Json::get(const std::string& key) const {
  for (auto& kv : obj) if (kv.first == key) return &kv.second;
  return nullptr;
}
Json& Json::set(const std::string& key, Json v) {
  for (auto& kv : obj) if (kv.first == key) { kv.second = std::move(v); return kv.second; }
  obj.emplace_back(key, std::move(v));
  return obj.back().second;
}
const char* Json::type_name() const {
  switch (type) { case NUL: return "null"; case BOOL: return "boolean"; case NUM: return "number";
    case STR: return "string"; case ARR: return "array"; default: return "object"; }
}

std::string json_quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break; case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break; case '\r': o += "\\r"; break; case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; } else o += (char)c;
    }
  }
  return o + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == std::floor(v) && std::fabs(v) < 9.007199254740992e15) {
    char b[32]; snprintf(b, sizeof b, "%.0f", v); return b;
  }
  char b[40];
  for (int p = 9; p <= 17; p++) {  // shortest precision that round-trips
    snprintf(b, sizeof b, "%.*g", p, v);
    if (std::strtod(b, nullptr) == v) break;
  }
  return b;
}

static void dump_to(const Json& j, std::string& o) {
  switch (j.type) {
    case Json::NUL: o += "null"; break;
    case Json::BOOL: o += j.b ? "true" : "false"; break;
    case Json::NUM: o += j.is_int ? std::to_string(j.inum) : json_number(j.num); break;
    case Json::STR: o += json_quote(j.str); break;
    case Json::ARR: o += '['; for (size_t i = 0; i < j.arr.size(); i++) { if (i) o += ','; dump_to(j.arr[i], o); } o += ']'; break;
    case Json::OBJ: o += '{';
      for (size_t i = 0; i < j.obj.size(); i++) { if (i) o += ','; o += json_quote(j.obj[i].first); o += ':'; dump_to(j.obj[i].second, o); }
      o += '}'; break;
  }
}
std::string Json::dump() const { std::string o; dump_to(*this, o); return o; }

namespace {
struct Parser {
  const std::string& s; size_t p = 0; const std::string& what; int code;
  [[noreturn]] void err(const std::string& m) { fail(code, what + ": invalid JSON (" + m + ") at offset " + std::to_string(p)); }
  void ws() { while (p < s.size() && (s[p] == ' ' || s[p] == '\n' || s[p] == '\r' || s[p] == '\t')) p++; }
  Json value(int depth) {
    if (depth > 200) err("nesting too deep");
    ws(); if (p >= s.size()) err("unexpected end");
    char c = s[p];
    if (c == '{') {
      p++; Json o = Json::object(); ws();
      if (p < s.size() && s[p] == '}') { p++; return o; }
      for (;;) {
        ws(); if (p >= s.size() || s[p] != '"') err("expected string key");
        std::string k = string();
        ws(); if (p >= s.size() || s[p] != ':') err("expected ':'"); p++;
        Json v = value(depth + 1);
        if (o.get(k)) err("duplicate key \"" + k + "\"");
        o.obj.emplace_back(k, std::move(v));
        ws(); if (p < s.size() && s[p] == ',') { p++; continue; }
        if (p < s.size() && s[p] == '}') { p++; return o; }
        err("expected ',' or '}'");
      }
    }
    if (c == '[') {
      p++; Json a = Json::array(); ws();
      if (p < s.size() && s[p] == ']') { p++; return a; }
      for (;;) {
        a.arr.push_back(value(depth + 1)); ws();
        if (p < s.size() && s[p] == ',') { p++; continue; }
        if (p < s.size() && s[p] == ']') { p++; return a; }
        err("expected ',' or ']'");
      }
    }
    if (c == '"') return Json::string(string());
    if (s.compare(p, 4, "true") == 0) { p += 4; return Json::boolean(true); }
    if (s.compare(p, 5, "false") == 0) { p += 5; return Json::boolean(false); }
    if (s.compare(p, 4, "null") == 0) { p += 4; return Json(); }
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t st = p; bool isint = true;
      if (s[p] == '-') p++;
      if (p >= s.size() || !isdigit((unsigned char)s[p])) err("bad number");
      while (p < s.size() && isdigit((unsigned char)s[p])) p++;
      if (p < s.size() && s[p] == '.') { isint = false; p++; if (p >= s.size() || !isdigit((unsigned char)s[p])) err("bad number"); while (p < s.size() && isdigit((unsigned char)s[p])) p++; }
      if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) { isint = false; p++; if (p < s.size() && (s[p] == '+' || s[p] == '-')) p++; if (p >= s.size() || !isdigit((unsigned char)s[p])) err("bad number"); while (p < s.size() && isdigit((unsigned char)s[p])) p++; }
      std::string t = s.substr(st, p - st);
      Json j = Json::number(std::strtod(t.c_str(), nullptr));
      if (isint && t.size() <= 18) { j.is_int = true; j.inum = std::strtoll(t.c_str(), nullptr, 10); }
      return j;
    }
    err(std::string("unexpected character '") + c + "'");
  }
  std::string string() {
    p++; std::string o;
    for (;;) {
      if (p >= s.size()) err("unterminated string");
      char c = s[p++];
      if (c == '"') return o;
      if ((unsigned char)c < 0x20) err("control character in string");
      if (c != '\\') { o += c; continue; }
      if (p >= s.size()) err("bad escape");
      char e = s[p++];
      switch (e) {
        case '"': o += '"'; break; case '\\': o += '\\'; break; case '/': o += '/'; break;
        case 'b': o += '\b'; break; case 'f': o += '\f'; break; case 'n': o += '\n'; break;
        case 'r': o += '\r'; break; case 't': o += '\t'; break;
        case 'u': {
          auto hex4 = [&]() { if (p + 4 > s.size()) err("bad \\u escape"); unsigned v = 0;
            for (int i = 0; i < 4; i++) { char h = s[p++]; v <<= 4;
              if (h >= '0' && h <= '9') v |= h - '0'; else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
              else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10; else err("bad \\u escape"); }
            return v; };
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && p + 1 < s.size() && s[p] == '\\' && s[p + 1] == 'u') {
            p += 2; unsigned lo = hex4(); cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          if (cp < 0x80) o += (char)cp;
          else if (cp < 0x800) { o += (char)(0xC0 | (cp >> 6)); o += (char)(0x80 | (cp & 63)); }
          else if (cp < 0x10000) { o += (char)(0xE0 | (cp >> 12)); o += (char)(0x80 | ((cp >> 6) & 63)); o += (char)(0x80 | (cp & 63)); }
          else { o += (char)(0xF0 | (cp >> 18)); o += (char)(0x80 | ((cp >> 12) & 63)); o += (char)(0x80 | ((cp >> 6) & 63)); o += (char)(0x80 | (cp & 63)); }
          break;
        }
        default: err("bad escape");
      }
    }
  }
};
}  // namespace

Json json_parse(const std::string& text, const std::string& what, int code) {
  Parser ps{text, 0, what, code};
  Json v = ps.value(0);
  ps.ws();
  if (ps.p != text.size()) ps.err("trailing characters");
  return v;
}

}  // namespace flame
