// A small JSON value, parser and writer (no dependencies). Objects keep insertion order so the
// bytes we write are deterministic.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace flame {

struct Json {
  enum Type { NUL, BOOL, NUM, STR, ARR, OBJ } type = NUL;
  bool b = false;
  double num = 0;
  bool is_int = false;   // number literal had no fraction/exponent
  long long inum = 0;    // exact value when is_int
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;

  Json() {}
  static Json null() { return Json(); }
  static Json boolean(bool v) { Json j; j.type = BOOL; j.b = v; return j; }
  static Json number(double v) { Json j; j.type = NUM; j.num = v; return j; }
  static Json integer(long long v) { Json j; j.type = NUM; j.num = (double)v; j.is_int = true; j.inum = v; return j; }
  static Json string(const std::string& s) { Json j; j.type = STR; j.str = s; return j; }
  static Json array() { Json j; j.type = ARR; return j; }
  static Json object() { Json j; j.type = OBJ; return j; }

  const Json* get(const std::string& key) const;
  Json& set(const std::string& key, Json v);   // replaces or appends
  Json& push(Json v) { arr.push_back(std::move(v)); return arr.back(); }

  std::string dump() const;  // compact, deterministic
  const char* type_name() const;
};

// Throws FlameError(code) with "<what>: <reason> at offset N".
Json json_parse(const std::string& text, const std::string& what, int code);
std::string json_quote(const std::string& s);
std::string json_number(double v);  // shortest round-trip repr; non-finite -> null

}  // namespace flame
