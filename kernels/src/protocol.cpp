#include "protocol.h"
#include <cerrno>
#include <cstdlib>
#include <unistd.h>
namespace flame { namespace proto {
static int g_fd = 1;
void init() {
  const char* e = getenv("FLAME_PROTOCOL_FD");
  if (e && *e) { char* end; long v = strtol(e, &end, 10); if (*end == 0 && v >= 0) g_fd = (int)v; }
}
static void emit(const std::string& line) {
  std::string s = line + "\n"; size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(g_fd, s.data() + off, s.size() - off);
    if (n < 0) { if (errno == EINTR) continue; return; }
    off += (size_t)n;
  }
}
void progress(long step, long total) { emit("{\"type\":\"progress\",\"step\":" + std::to_string(step) + ",\"total\":" + std::to_string(total) + "}"); }
void metric(const std::string& name, long step, double value) {
  emit("{\"type\":\"metric\",\"name\":" + json_quote(name) + ",\"step\":" + std::to_string(step) + ",\"value\":" + json_number(value) + "}");
}
void log(const std::string& level, const std::string& message) {
  emit("{\"type\":\"log\",\"level\":" + json_quote(level) + ",\"message\":" + json_quote(message) + "}");
}
void artifact(const std::string& name, const std::string& path) {
  emit("{\"type\":\"artifact\",\"name\":" + json_quote(name) + ",\"path\":" + json_quote(path) + "}");
}
void result(const Json& value) { emit("{\"type\":\"result\",\"value\":" + value.dump() + "}"); }
}}
