#include "commands/commands.h"
#include "model.h"
#include "protocol.h"
namespace flame {
int cmd_params(const Config& cfg, const CliArgs&) {
  ParamCounts c = count_params(cfg.model);
  Json r = Json::object();
  r.set("activeParams", Json::integer((long long)c.active));
  r.set("totalParams", Json::integer((long long)c.total));
  Json b = Json::object();
  b.set("embedding", Json::integer((long long)c.embedding));
  b.set("output", Json::integer((long long)c.output));
  b.set("attention", Json::integer((long long)c.attention));
  b.set("norms", Json::integer((long long)c.norms));
  b.set("denseMlp", Json::integer((long long)c.dense));
  b.set("router", Json::integer((long long)c.router));
  b.set("experts", Json::integer((long long)c.experts));
  b.set("activeExperts", Json::integer((long long)c.activeExperts));
  b.set("sharedExperts", Json::integer((long long)c.shared));
  r.set("breakdown", b);
  r.set("modelFingerprint", Json::string(cfg.modelFingerprint()));
  proto::result(r);
  return 0;
}
}
