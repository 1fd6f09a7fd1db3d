#include "config.h"
#include "common.h"
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

namespace flame {

long TrainConfig::resolvedWsdIters() const {
  if (wsdIters >= 0) return wsdIters;
  // FLAME-MoE passes --lr-wsd-decay-iters $((TRAIN_ITERS / 10)) (integer division).
  return (long)std::floor((double)trainIters * wsdDecayFraction + 1e-9);
}

namespace {

[[noreturn]] void bad(const std::string& path, const std::string& expected, const Json& got) {
  std::string g = got.dump();
  if (g.size() > 60) g = g.substr(0, 57) + "...";
  fail(EXIT_CONFIG, "config." + path + ": expected " + expected + ", got " + g);
}

struct Section {
  const Json* obj; std::string name; std::set<std::string> seen;
  Section(const Json* o, const std::string& n) : obj(o), name(n) {}
  const Json* take(const char* key) { seen.insert(key); return obj ? obj->get(key) : nullptr; }
  std::string path(const char* key) const { return name + "." + key; }
  void intv(const char* key, long& out, long minv, bool required = false) {
    const Json* v = take(key);
    if (!v) { if (required) fail(EXIT_CONFIG, "config." + path(key) + ": missing required key"); return; }
    bool ok = v->type == Json::NUM && v->num == std::floor(v->num) && std::fabs(v->num) < 9e15 && v->num >= (double)minv;
    if (!ok) bad(path(key), minv > 0 ? "positive integer" : (minv == 0 ? "non-negative integer" : "integer"), *v);
    out = (long)v->num;
  }
  void num(const char* key, double& out, double minv, bool minExclusive, double maxv = INFINITY) {
    const Json* v = take(key);
    if (!v) return;
    bool ok = v->type == Json::NUM && std::isfinite(v->num) && (minExclusive ? v->num > minv : v->num >= minv) && v->num <= maxv;
    if (!ok) {
      std::ostringstream e; e << "number " << (minExclusive ? "> " : ">= ") << minv;
      if (std::isfinite(maxv)) e << " and <= " << maxv;
      bad(path(key), e.str(), *v);
    }
    out = v->num;
  }
  void str(const char* key, std::string& out, bool nonEmpty = true) {
    const Json* v = take(key);
    if (!v) return;
    if (v->type != Json::STR || (nonEmpty && v->str.empty())) bad(path(key), nonEmpty ? "non-empty string" : "string", *v);
    out = v->str;
  }
  void boolean(const char* key, bool& out) {
    const Json* v = take(key);
    if (!v) return;
    if (v->type != Json::BOOL) bad(path(key), "boolean", *v);
    out = v->b;
  }
  void finish() {
    if (!obj) return;
    for (auto& kv : obj->obj)
      if (!seen.count(kv.first)) fail(EXIT_CONFIG, "config." + name + "." + kv.first + ": unknown key");
  }
};

std::vector<double> parse_split(const std::string& s, const std::string& path) {
  std::vector<double> out; std::string cur;
  for (size_t i = 0; i <= s.size(); i++) {
    if (i == s.size() || s[i] == ',') {
      char* end = nullptr; double v = std::strtod(cur.c_str(), &end);
      if (cur.empty() || *end != 0 || !(v >= 0) || !std::isfinite(v)) fail(EXIT_CONFIG, "config." + path + ": expected three non-negative numbers like \"90,5,5\", got " + json_quote(s));
      out.push_back(v); cur.clear();
    } else cur += s[i];
  }
  if (out.size() != 3 || out[0] + out[1] + out[2] <= 0) fail(EXIT_CONFIG, "config." + path + ": expected three non-negative numbers like \"90,5,5\", got " + json_quote(s));
  return out;
}

// data.blend: [{"weight": w > 0, "prefix": "path"}, ...], Megatron's `--data-path w1 p1 w2 p2 ...`
std::vector<BlendEntry> parse_blend(const Json& v) {
  const char* shape = "non-empty array of {\"weight\": number > 0, \"prefix\": \"path\"}";
  if (v.type != Json::ARR || v.arr.empty()) bad("data.blend", shape, v);
  if (v.arr.size() >= 32767) fail(EXIT_CONFIG, "config.data.blend: " + std::to_string(v.arr.size()) + " entries; Megatron blends fewer than 32767 datasets");
  std::vector<BlendEntry> out;
  for (size_t i = 0; i < v.arr.size(); i++) {
    const Json& e = v.arr[i];
    std::string path = "data.blend[" + std::to_string(i) + "]";
    if (e.type != Json::OBJ) bad(path, "object {\"weight\": number > 0, \"prefix\": \"path\"}", e);
    Section s(&e, path);
    BlendEntry b;
    for (const char* key : {"weight", "prefix"})
      if (!e.get(key)) fail(EXIT_CONFIG, "config." + s.path(key) + ": missing required key");
    s.num("weight", b.weight, 0, true);
    s.str("prefix", b.prefix);
    s.finish();
    out.push_back(b);
  }
  return out;
}

}  // namespace

std::vector<bool> parse_layer_pattern(const std::string& s0, const std::string& keyPath) {
  // Megatron's --moe-layer-freq accepts a python expression like "[0]*1+[1]*8": terms joined by
  // '+', each "[a,b,...]*n" or "[a,...]".
  std::string s; for (char c : s0) if (c != ' ') s += c;
  std::vector<bool> out; size_t p = 0;
  auto err = [&]() { fail(EXIT_CONFIG, "config." + keyPath + ": expected a pattern like \"[0]*1+[1]*8\", got " + json_quote(s0)); };
  if (s.empty()) err();
  while (p < s.size()) {
    if (s[p] != '[') err();
    p++; std::vector<bool> term;
    while (p < s.size() && s[p] != ']') {
      if (s[p] == '0') term.push_back(false); else if (s[p] == '1') term.push_back(true); else err();
      p++; if (p < s.size() && s[p] == ',') p++;
    }
    if (p >= s.size()) err();
    p++; long rep = 1;
    if (p < s.size() && s[p] == '*') {
      p++; size_t st = p; while (p < s.size() && isdigit((unsigned char)s[p])) p++;
      if (st == p) err();
      rep = std::stol(s.substr(st, p - st));
    }
    for (long r = 0; r < rep; r++) out.insert(out.end(), term.begin(), term.end());
    if (p < s.size()) { if (s[p] != '+') err(); p++; if (p >= s.size()) err(); }
  }
  return out;
}

Config parse_config(const Json& root) {
  if (root.type != Json::OBJ) fail(EXIT_CONFIG, "config: expected a JSON object at the top level");
  Config c;
  static const std::set<std::string> sections = {"model", "train", "data", "eval", "trace", "runtime"};
  for (auto& kv : root.obj) {
    if (!sections.count(kv.first)) fail(EXIT_CONFIG, "config." + kv.first + ": unknown key");
    if (kv.second.type != Json::OBJ) bad(kv.first, "object", kv.second);
  }
  const Json* mj = root.get("model");
  if (!mj) fail(EXIT_CONFIG, "config.model: missing required section");

  {
    Section s(mj, "model"); ModelConfig& m = c.model;
    s.intv("vocabSize", m.vocabSize, 1);
    s.intv("hiddenSize", m.hiddenSize, 1, true);
    s.intv("numLayers", m.numLayers, 1, true);
    s.intv("numAttentionHeads", m.numAttentionHeads, 1);
    s.intv("ffnHiddenSize", m.ffnHiddenSize, 1);
    s.intv("moeFfnHiddenSize", m.moeFfnHiddenSize, 1);
    s.intv("numExperts", m.numExperts, 1);
    s.intv("topK", m.topK, 1);
    s.intv("sharedExpertSize", m.sharedExpertSize, 0);
    s.intv("seqLength", m.seqLength, 1);
    s.num("ropeBase", m.ropeBase, 0, true);
    s.num("normEps", m.normEps, 0, true);
    s.num("initStd", m.initStd, 0, true);
    s.num("auxLossCoeff", m.auxLossCoeff, 0, false);
    s.num("zLossCoeff", m.zLossCoeff, 0, false);
    if (const Json* v = s.take("moeLayers")) {
      if (v->type == Json::STR) m.moeLayers = parse_layer_pattern(v->str, "model.moeLayers");
      else if (v->type == Json::ARR) {
        for (auto& e : v->arr) {
          if (e.type == Json::BOOL) m.moeLayers.push_back(e.b);
          else if (e.type == Json::NUM && (e.num == 0 || e.num == 1)) m.moeLayers.push_back(e.num == 1);
          else bad("model.moeLayers", "array of booleans (or 0/1) or a pattern string like \"[0]*1+[1]*8\"", *v);
        }
      } else bad("model.moeLayers", "array of booleans or a pattern string like \"[0]*1+[1]*8\"", *v);
      if ((long)m.moeLayers.size() != m.numLayers)
        fail(EXIT_CONFIG, "config.model.moeLayers: has " + std::to_string(m.moeLayers.size()) + " entries but numLayers is " + std::to_string(m.numLayers));
    } else {
      m.moeLayers.assign(m.numLayers, true);
      m.moeLayers[0] = false;  // FLAME-MoE: "[0]*1+[1]*(L-1)"
      if (m.numLayers == 1) m.moeLayers[0] = true;
    }
    s.finish();
    if (m.hiddenSize % m.numAttentionHeads != 0)
      fail(EXIT_CONFIG, "config.model.hiddenSize: " + std::to_string(m.hiddenSize) + " is not divisible by numAttentionHeads " + std::to_string(m.numAttentionHeads));
    if (m.headDim() % 2 != 0) fail(EXIT_CONFIG, "config.model.hiddenSize: head dimension " + std::to_string(m.headDim()) + " must be even for RoPE");
    if (m.anyDense() && !mj->get("ffnHiddenSize")) fail(EXIT_CONFIG, "config.model.ffnHiddenSize: missing required key (the model has dense layers)");
    if (m.numMoeLayers() > 0) {
      if (!mj->get("moeFfnHiddenSize")) fail(EXIT_CONFIG, "config.model.moeFfnHiddenSize: missing required key (the model has MoE layers)");
      if (m.topK > m.numExperts) fail(EXIT_CONFIG, "config.model.topK: " + std::to_string(m.topK) + " exceeds numExperts " + std::to_string(m.numExperts));
      if (m.numExperts > 256) fail(EXIT_CONFIG, "config.model.numExperts: at most 256 supported (trace stores expert ids as uint8)");
    }
    if (m.sharedExpertSize < 0) m.sharedExpertSize = 2 * m.moeFfnHiddenSize;
  }
  if (const Json* tj = root.get("train")) {
    c.hasTrain = true;
    Section s(tj, "train"); TrainConfig& t = c.train;
    s.intv("globalBatchSize", t.globalBatchSize, 1);
    s.intv("microBatchSize", t.microBatchSize, 1);
    s.intv("trainIters", t.trainIters, 1, true);
    s.num("lr", t.lr, 0, false);
    s.num("minLr", t.minLr, 0, false);
    s.num("warmupFraction", t.warmupFraction, 0, false, 1);
    s.intv("warmupIters", t.warmupIters, 0);
    s.num("wsdDecayFraction", t.wsdDecayFraction, 0, false, 1);
    s.intv("wsdIters", t.wsdIters, 0);
    s.str("wsdDecayStyle", t.wsdDecayStyle);
    if (t.wsdDecayStyle != "exponential" && t.wsdDecayStyle != "linear" && t.wsdDecayStyle != "cosine" && t.wsdDecayStyle != "minus_sqrt")
      bad("train.wsdDecayStyle", "\"exponential\", \"linear\", \"cosine\" or \"minus_sqrt\"", *tj->get("wsdDecayStyle"));
    s.num("weightDecay", t.weightDecay, 0, false);
    s.num("clipGrad", t.clipGrad, 0, false);
    s.num("beta1", t.beta1, 0, false, 0.999999);
    s.num("beta2", t.beta2, 0, false, 0.999999999);
    s.num("eps", t.eps, 0, true);
    s.intv("seed", t.seed, 0);
    s.intv("saveInterval", t.saveInterval, 0);
    if (const Json* v = s.take("saveIters")) {
      const char* shape = "array of positive integers";
      if (v->type != Json::ARR) bad("train.saveIters", shape, *v);
      for (auto& e : v->arr) {
        if (e.type != Json::NUM || e.num < 1 || e.num != std::floor(e.num) || e.num >= 9e15) bad("train.saveIters", shape, *v);
        t.saveIters.push_back((long)e.num);
      }
      std::sort(t.saveIters.begin(), t.saveIters.end());
      t.saveIters.erase(std::unique(t.saveIters.begin(), t.saveIters.end()), t.saveIters.end());
    }
    s.intv("logInterval", t.logInterval, 1);
    s.finish();
    if (t.globalBatchSize % t.microBatchSize != 0)
      fail(EXIT_CONFIG, "config.train.globalBatchSize: " + std::to_string(t.globalBatchSize) + " is not a multiple of microBatchSize " + std::to_string(t.microBatchSize));
    if (t.resolvedWsdIters() > t.trainIters) fail(EXIT_CONFIG, "config.train.wsdIters: exceeds trainIters");
    if (!t.saveIters.empty() && t.saveIters.back() > t.trainIters)
      fail(EXIT_CONFIG, "config.train.saveIters: " + std::to_string(t.saveIters.back()) + " exceeds trainIters " + std::to_string(t.trainIters));
  }
  if (const Json* dj = root.get("data")) {
    c.hasData = true;
    Section s(dj, "data"); DataConfig& d = c.data;
    s.str("prefix", d.prefix);
    if (const Json* v = s.take("blend")) d.blend = parse_blend(*v);
    if (!d.prefix.empty() && !d.blend.empty())
      fail(EXIT_CONFIG, "config.data: give either prefix (one dataset) or blend (weighted datasets), not both");
    if (const Json* v = s.take("splitSamples")) {
      if (v->type != Json::OBJ) bad("data.splitSamples", "object {\"train\": n, \"valid\": n, \"test\": n}", *v);
      Section ss(v, "data.splitSamples");
      ss.intv("train", d.splitSamples[0], 0, true);
      ss.intv("valid", d.splitSamples[1], 0, true);
      ss.intv("test", d.splitSamples[2], 0, true);
      ss.finish();
      d.hasSplitSamples = true;
    }
    if (const Json* v = s.take("split")) {
      if (v->type != Json::STR) bad("data.split", "string like \"90,5,5\"", *v);
      d.split = parse_split(v->str, "data.split"); d.splitString = v->str;
    }
    s.intv("seed", d.seed, 0);
    s.finish();
    if (d.seed > 4294967295L) fail(EXIT_CONFIG, "config.data.seed: must be < 2^32 (numpy RandomState)");
  }
  if (const Json* ej = root.get("eval")) {
    Section s(ej, "eval"); EvalConfig& e = c.eval;
    s.intv("valSamples", e.valSamples, 0);
    s.str("split", e.split);
    if (e.split != "valid" && e.split != "test") bad("eval.split", "\"valid\" or \"test\"", *ej->get("split"));
    s.str("requests", e.requests);
    s.str("output", e.output);
    s.intv("microBatchSize", e.microBatchSize, 1);
    s.finish();
  }
  if (const Json* tj = root.get("trace")) {
    Section s(tj, "trace"); TraceConfig& t = c.trace;
    s.intv("numSamples", t.numSamples, 1);
    if (const Json* v = s.take("indices")) {
      if (v->type != Json::ARR) bad("trace.indices", "array of non-negative integers", *v);
      for (auto& e : v->arr) {
        if (e.type != Json::NUM || e.num < 0 || e.num != std::floor(e.num)) bad("trace.indices", "array of non-negative integers", *v);
        t.indices.push_back((long)e.num);
      }
    }
    s.str("split", t.split);
    if (t.split != "train" && t.split != "valid" && t.split != "test") bad("trace.split", "\"train\", \"valid\" or \"test\"", *tj->get("split"));
    s.str("output", t.output);
    s.finish();
  }
  if (const Json* rj = root.get("runtime")) {
    Section s(rj, "runtime"); RuntimeConfig& r = c.runtime;
    s.intv("threads", r.threads, 0);
    s.str("outputDir", r.outputDir);
    s.str("resumeFrom", r.resumeFrom);
    s.str("backend", r.backend);
    if (r.backend != "cpu" && r.backend != "cuda" && r.backend != "auto") bad("runtime.backend", "\"cpu\", \"cuda\" or \"auto\"", *rj->get("backend"));
    s.boolean("expertLoadDetail", r.expertLoadDetail);
    s.str("precision", r.precision);
    if (r.precision != "bf16" && r.precision != "fp32") bad("runtime.precision", "\"bf16\" or \"fp32\"", *rj->get("precision"));
    s.boolean("deterministic", r.deterministic);
    s.str("attention", r.attention);
    if (r.attention != "flash" && r.attention != "plain") bad("runtime.attention", "\"flash\" or \"plain\"", *rj->get("attention"));
    s.str("cublas", r.cublas);
    s.finish();
  }
  return c;
}

Config load_config(const std::string& path) {
  std::string text;
  try { text = read_file(path); } catch (FlameError& e) { fail(EXIT_CONFIG, std::string("config: ") + e.what()); }
  return parse_config(json_parse(text, "config " + path, EXIT_CONFIG));
}

Json Config::modelJson() const {
  const ModelConfig& m = model;
  Json j = Json::object();
  j.set("vocabSize", Json::integer(m.vocabSize));
  j.set("hiddenSize", Json::integer(m.hiddenSize));
  j.set("numLayers", Json::integer(m.numLayers));
  j.set("numAttentionHeads", Json::integer(m.numAttentionHeads));
  j.set("ffnHiddenSize", Json::integer(m.anyDense() ? m.ffnHiddenSize : 0));
  bool moe = m.numMoeLayers() > 0;
  j.set("moeFfnHiddenSize", Json::integer(moe ? m.moeFfnHiddenSize : 0));
  j.set("numExperts", Json::integer(moe ? m.numExperts : 0));
  j.set("topK", Json::integer(moe ? m.topK : 0));
  j.set("sharedExpertSize", Json::integer(moe ? m.sharedExpertSize : 0));
  Json a = Json::array(); for (bool b : m.moeLayers) a.push(Json::boolean(b));
  j.set("moeLayers", a);
  j.set("seqLength", Json::integer(m.seqLength));
  j.set("ropeBase", Json::number(m.ropeBase));
  j.set("normEps", Json::number(m.normEps));
  j.set("initStd", Json::number(m.initStd));
  j.set("auxLossCoeff", Json::number(m.auxLossCoeff));
  j.set("zLossCoeff", Json::number(m.zLossCoeff));
  return j;
}

Json Config::trainJson() const {
  const TrainConfig& t = train;
  Json j = Json::object();
  j.set("globalBatchSize", Json::integer(t.globalBatchSize));
  j.set("microBatchSize", Json::integer(t.microBatchSize));
  j.set("trainIters", Json::integer(t.trainIters));
  j.set("lr", Json::number(t.lr)); j.set("minLr", Json::number(t.minLr));
  j.set("warmupFraction", Json::number(t.warmupFraction));
  // Only where given, so that checkpoints written before it existed keep their fingerprints and resume.
  if (t.warmupIters >= 0) j.set("warmupIters", Json::integer(t.warmupIters));
  j.set("wsdIters", Json::integer(t.resolvedWsdIters()));
  // Only when not Megatron's default, so that checkpoints written before it existed keep their fingerprints.
  if (t.wsdDecayStyle != "exponential") j.set("wsdDecayStyle", Json::string(t.wsdDecayStyle));
  j.set("weightDecay", Json::number(t.weightDecay)); j.set("clipGrad", Json::number(t.clipGrad));
  j.set("beta1", Json::number(t.beta1)); j.set("beta2", Json::number(t.beta2)); j.set("eps", Json::number(t.eps));
  j.set("seed", Json::integer(t.seed));
  j.set("dataSplit", Json::string(data.splitString));
  j.set("dataSeed", Json::integer(data.seed));
  // Only where given, so that single-dataset checkpoints written before these existed still resume.
  if (!data.blend.empty()) {  // the weights set the blend's order (the datasets: state.json "data")
    Json w = Json::array();
    for (auto& b : data.blend) w.push(Json::number(b.weight));
    j.set("dataBlendWeights", w);
  }
  if (data.hasSplitSamples) j.set("dataTrainSamples", Json::integer(data.splitSamples[0]));  // sets the order
  return j;
}

std::string Config::modelFingerprint() const { std::string s = modelJson().dump(); return sha256_hex(s.data(), s.size()); }
std::string Config::trainFingerprint() const {
  Json j = Json::object(); j.set("model", modelJson()); j.set("train", trainJson());
  std::string s = j.dump(); return sha256_hex(s.data(), s.size());
}

}  // namespace flame
