// JSON-lines worker protocol (docs/worker-protocol.md): one object per line on the descriptor in
// FLAME_PROTOCOL_FD, else stdout; flushed per line. Human-oriented text goes to stderr.
#pragma once
#include <string>
#include "io/json.h"
namespace flame { namespace proto {
void init();
void progress(long step, long total);
void metric(const std::string& name, long step, double value);
void log(const std::string& level, const std::string& message);
void artifact(const std::string& name, const std::string& path);
void result(const Json& value);
}}
