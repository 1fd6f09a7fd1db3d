#include "io/safetensors.h"
#include "common.h"
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace flame {

std::string safetensors_prefix(const std::vector<StTensorOut>& tensors,
                               const std::vector<std::pair<std::string, std::string>>& metadata) {
  Json h = Json::object();
  if (!metadata.empty()) {
    Json m = Json::object();
    for (auto& kv : metadata) m.set(kv.first, Json::string(kv.second));
    h.set("__metadata__", m);
  }
  size_t off = 0;
  for (auto& t : tensors) {
    size_t n = 1; for (long s : t.shape) n *= (size_t)s;
    Json e = Json::object();
    e.set("dtype", Json::string("F32"));
    Json sh = Json::array(); for (long s : t.shape) sh.push(Json::integer(s));
    e.set("shape", sh);
    Json o = Json::array(); o.push(Json::integer((long long)off)); o.push(Json::integer((long long)(off + 4 * n)));
    e.set("data_offsets", o);
    h.set(t.name, e);
    off += 4 * n;
  }
  std::string hs = h.dump();
  while (hs.size() % 8) hs += ' ';
  uint64_t n = hs.size();
  std::string out(8, '\0');
  memcpy(&out[0], &n, 8);
  return out + hs;
}

size_t safetensors_data_bytes(const std::vector<StTensorOut>& tensors) {
  size_t total = 0;
  for (auto& t : tensors) { size_t n = 1; for (long s : t.shape) n *= (size_t)s; total += 4 * n; }
  return total;
}

void safetensors_write(const std::string& path, const std::vector<StTensorOut>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata) {
  std::string prefix = safetensors_prefix(tensors, metadata);
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) fail(EXIT_OTHER, "cannot write " + path + ": " + strerror(errno));
  bool ok = fwrite(prefix.data(), 1, prefix.size(), f) == prefix.size();
  for (auto& t : tensors) {
    size_t cnt = 1; for (long s : t.shape) cnt *= (size_t)s;
    ok = ok && fwrite(t.data, 4, cnt, f) == cnt;
  }
  ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (fclose(f) != 0 || !ok) fail(EXIT_OTHER, "cannot write " + path + ": " + strerror(errno));
}

const StEntry* SafetensorsFile::get(const std::string& name) const {
  for (auto& e : entries) if (e.name == name) return &e;
  return nullptr;
}

SafetensorsFile safetensors_read(const std::string& path, int code) {
  SafetensorsFile s; s.path = path;
  try { s.bytes = read_file(path); } catch (FlameError& e) { fail(code, e.what()); }
  auto bad = [&](const std::string& m) { fail(code, "corrupt safetensors file " + path + ": " + m); };
  if (s.bytes.size() < 8) bad("too short");
  uint64_t n; memcpy(&n, s.bytes.data(), 8);
  if (n > s.bytes.size() - 8) bad("header length " + std::to_string(n) + " exceeds file size");
  Json h = json_parse(s.bytes.substr(8, n), "safetensors header of " + path, code);
  if (h.type != Json::OBJ) bad("header is not an object");
  s.dataStart = 8 + n;
  size_t dataLen = s.bytes.size() - s.dataStart;
  for (auto& kv : h.obj) {
    if (kv.first == "__metadata__") { s.metadata = kv.second; continue; }
    StEntry e; e.name = kv.first;
    const Json* dt = kv.second.get("dtype"); const Json* sh = kv.second.get("shape"); const Json* off = kv.second.get("data_offsets");
    if (!dt || dt->type != Json::STR || !sh || sh->type != Json::ARR || !off || off->type != Json::ARR || off->arr.size() != 2) bad("bad entry " + e.name);
    e.dtype = dt->str;
    size_t cnt = 1;
    for (auto& d : sh->arr) { if (d.type != Json::NUM || d.num < 0) bad("bad shape of " + e.name); e.shape.push_back((long)d.num); cnt *= (size_t)d.num; }
    e.begin = (size_t)off->arr[0].num; e.end = (size_t)off->arr[1].num;
    size_t item = e.dtype == "F32" ? 4 : e.dtype == "F64" ? 8 : e.dtype == "F16" || e.dtype == "BF16" ? 2 : 0;
    if (e.begin > e.end || e.end > dataLen) bad("data offsets of " + e.name + " out of range");
    if (item && e.end - e.begin != cnt * item) bad("byte size of " + e.name + " does not match its shape");
    s.entries.push_back(e);
  }
  return s;
}

}  // namespace flame
