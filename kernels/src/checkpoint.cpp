#include "checkpoint.h"
#include "common.h"
#include "io/safetensors.h"
#include "schedule.h"
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FLAME_VERSION
#define FLAME_VERSION "0.1.0"
#endif

namespace flame {

std::string checkpoint_dirname(long it) { char b[32]; snprintf(b, sizeof b, "iter_%07ld", it); return b; }

static void mkdirs(const std::string& p) {
  std::string cur;
  for (size_t i = 0; i <= p.size(); i++) {
    if (i == p.size() || p[i] == '/') {
      if (!cur.empty() && mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) fail(EXIT_OTHER, "cannot create directory " + cur + ": " + strerror(errno));
    }
    if (i < p.size()) cur += p[i];
  }
}
static void remove_tree(const std::string& p) {
  DIR* d = opendir(p.c_str());
  if (!d) { unlink(p.c_str()); return; }
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    std::string c = p + "/" + n; struct stat st;
    if (lstat(c.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(c); else unlink(c.c_str());
  }
  closedir(d); rmdir(p.c_str());
}
static void write_text(const std::string& path, const std::string& s) {
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) fail(EXIT_OTHER, "cannot write " + path + ": " + strerror(errno));
  bool ok = fwrite(s.data(), 1, s.size(), f) == s.size() && fflush(f) == 0 && fsync(fileno(f)) == 0;
  if (fclose(f) != 0 || !ok) fail(EXIT_OTHER, "cannot write " + path + ": " + strerror(errno));
}

// Weights are stored as F32 whatever `real` is (the double build is only for tests).
static std::vector<float> to_f32(const real* p, size_t n) { return std::vector<float>(p, p + n); }

// Copies src to dst (a new file), fsynced; for reuse where a hard link cannot be made.
static void copy_file(const std::string& src, const std::string& dst) {
  FILE* in = fopen(src.c_str(), "rb");
  if (!in) fail(EXIT_OTHER, "cannot read " + src + ": " + strerror(errno));
  FILE* out = fopen(dst.c_str(), "wb");
  if (!out) { fclose(in); fail(EXIT_OTHER, "cannot write " + dst + ": " + strerror(errno)); }
  std::vector<char> buf(1 << 20);
  bool ok = true; size_t n;
  while (ok && (n = fread(buf.data(), 1, buf.size(), in)) > 0) ok = fwrite(buf.data(), 1, n, out) == n;
  ok = ok && !ferror(in) && fflush(out) == 0 && fsync(fileno(out)) == 0;
  fclose(in);
  if (fclose(out) != 0 || !ok) fail(EXIT_OTHER, "cannot copy " + src + " to " + dst + ": " + strerror(errno));
}

// Puts reuse's `file` at dst when it holds exactly the bytes safetensors_write(dst, t, meta) would
// write; returns its sha256, or "" (nothing placed) when it does not or cannot be shown to.
// Why equal bytes follow: the file begins with the writer's own prefix, so it holds exactly the
// tensors of `t`, as F32, at the writer's offsets, and nothing else; its hash is the one
// load_checkpoint verified before loading, so those are the bytes the tensors were loaded from;
// and an F32 tensor loaded into float and written back is the same bits. (The double build would
// quiet signalling NaNs on the way through double: it always writes.)
static std::string reuse_safetensors(ReusableFiles& reuse, const std::string& file, const std::vector<StTensorOut>& t,
                                     const std::vector<std::pair<std::string, std::string>>& meta, const std::string& dst) {
  if (sizeof(real) != sizeof(float)) return "";
  const Json* h = reuse.hashes.get(file);
  if (!h || h->type != Json::STR) return "";
  std::string src = reuse.dir + "/" + file, prefix = safetensors_prefix(t, meta);
  struct stat sb;
  if (stat(src.c_str(), &sb) != 0 || (uint64_t)sb.st_size != prefix.size() + safetensors_data_bytes(t)) return "";
  FILE* f = fopen(src.c_str(), "rb");
  if (!f) return "";
  std::string head(prefix.size(), '\0');
  bool same = fread(&head[0], 1, head.size(), f) == head.size() && head == prefix;
  fclose(f);
  if (!same) return "";
  std::string how = "linked";
  if (link(src.c_str(), dst.c_str()) != 0) { copy_file(src, dst); how = "copied"; }
  // The file may have been replaced since it was loaded: then the hash tells, and it is written.
  std::string actual = sha256_file(dst);
  if (actual != h->str) { unlink(dst.c_str()); return ""; }
  reuse.placed.push_back({file, how});
  return actual;
}

// The keys of Config::trainJson() that shape the learning-rate schedule and nothing else.
static bool is_schedule_key(const std::string& k) {
  static const char* keys[] = {"trainIters", "lr", "minLr", "warmupFraction", "warmupIters", "wsdIters", "wsdDecayStyle"};
  for (const char* s : keys) if (k == s) return true;
  return false;
}

// trainJson() without the schedule's keys: what besides the rates determines a state.
static Json state_train_json(const Config& cfg) {
  Json out = Json::object();
  for (auto& kv : cfg.trainJson().obj) if (!is_schedule_key(kv.first)) out.set(kv.first, kv.second);
  return out;
}

static std::string state_fingerprint(const Json& model, const Json& train, const Json& schedule, const Json& dataOrder) {
  Json j = Json::object();
  j.set("model", model); j.set("train", train); j.set("schedule", schedule); j.set("dataOrder", dataOrder);
  std::string d = j.dump();
  return sha256_hex(d.data(), d.size());
}

std::string save_checkpoint(const std::string& outDir, const Config& cfg, const Model& model, const Optimizer& opt,
                            const CheckpointState& st, ReusableFiles* reuse) {
  std::string name = checkpoint_dirname(st.iteration);
  std::string final = outDir + "/" + name, tmp = outDir + "/." + name + ".tmp-" + std::to_string(getpid());
  mkdirs(outDir);
  remove_tree(tmp);
  mkdirs(tmp);
  std::vector<std::vector<float>> keep;
  std::vector<StTensorOut> w, o;
  for (auto& t : model.tensors) {
    keep.push_back(to_f32(model.params.data() + t.offset, t.numel));
    w.push_back({t.name, t.shape, keep.back().data()});
  }
  for (auto& t : model.tensors) {
    keep.push_back(to_f32(opt.m.data() + t.offset, t.numel));
    o.push_back({t.name + ".exp_avg", t.shape, keep.back().data()});
    keep.push_back(to_f32(opt.v.data() + t.offset, t.numel));
    o.push_back({t.name + ".exp_avg_sq", t.shape, keep.back().data()});
  }
  std::string fp = cfg.modelFingerprint();
  std::vector<std::pair<std::string, std::string>> meta = {{"format", "pt"}, {"flame.modelFingerprint", fp}};
  auto put = [&](const std::string& file, const std::vector<StTensorOut>& t) {
    std::string path = tmp + "/" + file;
    std::string hash = reuse ? reuse_safetensors(*reuse, file, t, meta, path) : "";
    if (!hash.empty()) return hash;
    safetensors_write(path, t, meta);
    if (reuse) reuse->placed.push_back({file, "written"});
    return sha256_file(path);
  };
  std::string modelHash = put("model.safetensors", w), optHash = put("optimizer.safetensors", o);
  // A checkpoint describes its state and what determined it, nothing of the run's future (its length,
  // its minLr...): runs that pass through the same state write the same bytes for it, so a run that
  // reuses another's checkpoint holds exactly what it would have written itself.
  Json train = state_train_json(cfg);
  Json schedule = WsdSchedule::from(cfg.train).describe(st.iteration);
  Json s = Json::object();
  s.set("format", Json::string("flame-worker-checkpoint"));
  s.set("version", Json::integer(2));
  s.set("iteration", Json::integer(st.iteration));
  s.set("consumedSamples", Json::integer((long long)st.consumedSamples));
  s.set("adamStep", Json::integer(opt.step));
  // No stochastic operation runs during training (no dropout): the data order is a function of
  // data.seed and consumedSamples alone, so that is the whole RNG state.
  Json rng = Json::object();
  rng.set("dataSeed", Json::integer(cfg.data.seed));
  rng.set("initSeed", Json::integer(cfg.train.seed));
  s.set("rng", rng);
  s.set("modelFingerprint", Json::string(fp));
  s.set("stateFingerprint", Json::string(state_fingerprint(cfg.modelJson(), train, schedule, st.dataOrder)));
  s.set("model", cfg.modelJson());
  s.set("train", train);
  s.set("schedule", schedule);
  s.set("data", st.data);
  if (st.dataOrder.type != Json::NUL) s.set("dataOrder", st.dataOrder);
  Json files = Json::object();
  files.set("model.safetensors", Json::string(modelHash));
  files.set("optimizer.safetensors", Json::string(optHash));
  s.set("files", files);
  write_text(tmp + "/state.json", s.dump() + "\n");
  // The files are fsynced; so are their names (a hard link is only a name) before the rename.
  int tfd = open(tmp.c_str(), O_RDONLY);
  if (tfd >= 0) { fsync(tfd); close(tfd); }
  remove_tree(final);
  if (rename(tmp.c_str(), final.c_str()) != 0) fail(EXIT_OTHER, "cannot rename " + tmp + " to " + final + ": " + strerror(errno));
  int dfd = open(outDir.c_str(), O_RDONLY);
  if (dfd >= 0) { fsync(dfd); close(dfd); }
  return name;
}

static std::string describe_mismatch(const Json& stored, const Json& now, const std::string& section) {
  if (stored.type != Json::OBJ) return section + " section missing";
  for (auto& kv : now.obj) {
    const Json* s = stored.get(kv.first);
    if (!s) return "config." + section + "." + kv.first + " missing in checkpoint";
    if (s->dump() != kv.second.dump()) return section + "." + kv.first + " is " + s->dump() + " in the checkpoint but " + kv.second.dump() + " in the config";
  }
  // keys written only where given (train.warmupIters, train.wsdDecayStyle, ...)
  for (auto& kv : stored.obj)
    if (!now.get(kv.first)) return section + "." + kv.first + " is " + kv.second.dump() + " in the checkpoint but absent in the config";
  return "fingerprint differs";
}

// The schedule a checkpoint was trained under, from its state.json "train" (what trainJson() wrote:
// warmupIters only where given, wsdDecayStyle only where not exponential). "" or the reason.
static std::string stored_schedule(const Json& train, WsdSchedule* out) {
  TrainConfig t;
  auto number = [&](const char* key, double& v) {
    const Json* j = train.get(key);
    if (!j || j->type != Json::NUM) return false;
    v = j->num; return true;
  };
  auto integer = [&](const char* key, long& v, long minv) {
    double d;
    if (!number(key, d) || d != std::floor(d) || d < (double)minv || d >= 9e15) return false;
    v = (long)d; return true;
  };
  if (!integer("trainIters", t.trainIters, 1)) return "trainIters";
  if (!number("lr", t.lr)) return "lr";
  if (!number("minLr", t.minLr)) return "minLr";
  if (!number("warmupFraction", t.warmupFraction)) return "warmupFraction";
  if (!integer("wsdIters", t.wsdIters, 0) || t.wsdIters > t.trainIters) return "wsdIters";
  if (train.get("warmupIters") && !integer("warmupIters", t.warmupIters, 0)) return "warmupIters";
  WsdDecayStyle style;
  if (const Json* j = train.get("wsdDecayStyle")) {
    if (j->type != Json::STR || !parse_wsd_decay_style(j->str, &style)) return "wsdDecayStyle";
    t.wsdDecayStyle = j->str;
  }
  *out = WsdSchedule::from(t);
  return "";
}

static std::string order_list(const Json& order, const char* key) {
  std::string out = "[";
  if (order.type == Json::ARR)
    for (size_t i = 0; i < order.arr.size(); i++) {
      const Json* v = order.arr[i].get(key);
      out += (i ? "," : "") + (v ? v->dump() : std::string("?"));
    }
  return out + "]";
}

// The first key besides the schedule's on which a checkpoint's "train" and the config's differ, as
// "train.K is A in the checkpoint but B in the config" (or "absent"), or "" when none does.
static std::string train_keys_differ(const Json& stored, const Json& now) {
  for (auto& kv : now.obj) {
    if (is_schedule_key(kv.first)) continue;
    const Json* v = stored.get(kv.first);
    if (!v) return "train." + kv.first + " is absent in the checkpoint but " + kv.second.dump() + " in the config";
    if (v->dump() != kv.second.dump())
      return "train." + kv.first + " is " + v->dump() + " in the checkpoint but " + kv.second.dump() + " in the config";
  }
  for (auto& kv : stored.obj)
    if (!is_schedule_key(kv.first) && !now.get(kv.first))
      return "train." + kv.first + " is " + kv.second.dump() + " in the checkpoint but absent in the config";
  return "";
}

// A resume whose trainFingerprint differs from the checkpoint's: "" when the checkpoint is a state
// of the new run (see checkpoint.h), else the reason it is not.
static std::string schedule_resume_refusal(const Json& s, const Config& cfg, const Json& dataOrder) {
  const Json* stored = s.get("train");
  Json now = cfg.trainJson();
  std::string strict = "cannot resume: training config differs: " + describe_mismatch(stored ? *stored : Json(), now, "train");
  const Json* storedOrder = s.get("dataOrder");
  // Without a recorded data order nothing shows that the samples before the checkpoint are the
  // ones the new run would read: such a checkpoint resumes only under its own config.
  if (!stored || stored->type != Json::OBJ || !storedOrder) return strict;
  std::string differs = train_keys_differ(*stored, now);
  if (!differs.empty()) return "cannot resume: training config differs: " + differs;
  // From here on only schedule keys differ: the refusals name the first of them, and why that matters.
  if (storedOrder->dump() != dataOrder.dump()) {
    std::string e = order_list(*storedOrder, "epochs"), en = order_list(dataOrder, "epochs");
    std::string why = "epochs " + e + " vs " + en;
    if (e == en) why += ", separate final epoch " + order_list(*storedOrder, "separateFinalEpoch") + " vs " + order_list(dataOrder, "separateFinalEpoch");
    return strict + ", and the checkpoint was trained on a different data order (" + why + ")";
  }
  const Json* itj = s.get("iteration");
  if (!itj || itj->type != Json::NUM) return "state.json lacks iteration";
  long iteration = (long)itj->num;
  if (iteration > cfg.train.trainIters) return "iteration " + std::to_string(iteration) + " is beyond trainIters";
  WsdSchedule then{0, 0, 0, 0, 0};
  std::string badKey = stored_schedule(*stored, &then);
  if (!badKey.empty()) return strict + ", and the checkpoint's train." + badKey + " is missing or invalid, so its schedule is unknown";
  WsdSchedule next = WsdSchedule::from(cfg.train);
  // The optimizer state is a function of the lrs used so far: bitwise the same lrs, the same state.
  for (long i = 1; i <= iteration; i++) {
    double a = then.lr_for_iteration(i), b = next.lr_for_iteration(i);
    if (a != b)
      return strict + ", and the learning rate differs at iteration " + std::to_string(i) + ": " + json_number(a) +
             " in the checkpoint's schedule, " + json_number(b) + " in the config's";
  }
  return "";
}

// Resuming from a version 2 checkpoint (one that describes its state): "" when the new run passes
// through that state, else why not. Everything but the rates must be the same (the keys of "train",
// the data order), and the new schedule must give every iteration up to the checkpoint bitwise the
// rate its description gives (the optimizer state is a function of those rates).
static std::string state_resume_refusal(const Json& s, const Config& cfg, const Json& dataOrder) {
  const std::string prefix = "cannot resume: training config differs: ";
  const Json* stored = s.get("train");
  const Json* schedule = s.get("schedule");
  const Json* storedOrder = s.get("dataOrder");
  // A checkpoint may lack a data order only where the caller has none either (a test program).
  if (!stored || stored->type != Json::OBJ || !schedule || schedule->type != Json::OBJ ||
      (!storedOrder && dataOrder.type != Json::NUL))
    return "state.json lacks its train, schedule or dataOrder section";
  Json now = state_train_json(cfg);
  std::string differs = train_keys_differ(*stored, now);
  if (!differs.empty()) return prefix + differs;
  if (storedOrder && storedOrder->dump() != dataOrder.dump()) {
    std::string e = order_list(*storedOrder, "epochs"), en = order_list(dataOrder, "epochs");
    std::string why = "epochs " + e + " vs " + en;
    if (e == en) why += ", separate final epoch " + order_list(*storedOrder, "separateFinalEpoch") + " vs " + order_list(dataOrder, "separateFinalEpoch");
    return prefix + "the checkpoint was trained on a different data order (" + why + ")";
  }
  const Json* itj = s.get("iteration");
  if (!itj || itj->type != Json::NUM) return "state.json lacks iteration";
  long iteration = (long)itj->num;
  if (iteration > cfg.train.trainIters) return "iteration " + std::to_string(iteration) + " is beyond trainIters";
  WsdSchedule next = WsdSchedule::from(cfg.train);
  for (long i = 1; i <= iteration; i++) {
    double a = WsdSchedule::described_lr(*schedule, i), b = next.lr_for_iteration(i);
    if (!(a == b))
      return prefix + "the learning rate differs at iteration " + std::to_string(i) + ": " + json_number(a) +
             " in the checkpoint's schedule, " + json_number(b) + " in the config's";
  }
  return "";
}

void load_checkpoint(const std::string& dir, const Config& cfg, Model& model, Optimizer* opt, CheckpointState* st,
                     const Json* dataOrder) {
  auto bad = [&](const std::string& m) { fail(EXIT_CHECKPOINT, "checkpoint " + dir + ": " + m); };
  struct stat sb;
  if (stat(dir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) bad("not a directory");
  std::string text;
  try { text = read_file(dir + "/state.json"); } catch (FlameError&) { bad("state.json missing (incomplete checkpoint?)"); }
  Json s = json_parse(text, "checkpoint " + dir + "/state.json", EXIT_CHECKPOINT);
  const Json* fmt = s.get("format");
  if (!fmt || fmt->str != "flame-worker-checkpoint") bad("state.json is not a flame-worker checkpoint");
  const Json* mfp = s.get("modelFingerprint");
  if (!mfp || mfp->str != cfg.modelFingerprint()) {
    const Json* mj = s.get("model");
    bad("does not match the model config: " + describe_mismatch(mj ? *mj : Json(), cfg.modelJson(), "model"));
  }
  bool scheduleDiffers = false;
  const Json* version = s.get("version");
  if (opt && version && version->type == Json::NUM && version->num >= 2) {
    // A caller without a data of its own to compare (a test program) takes the checkpoint's.
    const Json* storedOrder = s.get("dataOrder");
    const Json order = dataOrder ? *dataOrder : storedOrder ? *storedOrder : Json();
    std::string why = state_resume_refusal(s, cfg, order);
    if (!why.empty()) bad(why);
    const Json* sfp = s.get("stateFingerprint");
    const Json* itj = s.get("iteration");
    Json desc = WsdSchedule::from(cfg.train).describe(itj ? (long)itj->num : 0);
    scheduleDiffers = !sfp || sfp->str != state_fingerprint(cfg.modelJson(), state_train_json(cfg), desc, order);
  } else if (opt) {
    // A version 1 checkpoint records its run's whole training config.
    const Json* tfp = s.get("trainFingerprint");
    if (!tfp || tfp->str != cfg.trainFingerprint()) {
      const Json* tj = s.get("train");
      if (!dataOrder) bad("cannot resume: training config differs: " + describe_mismatch(tj ? *tj : Json(), cfg.trainJson(), "train"));
      std::string why = schedule_resume_refusal(s, cfg, *dataOrder);
      if (!why.empty()) bad(why);
      scheduleDiffers = true;
    }
  }
  const Json* files = s.get("files");
  if (!files) bad("state.json lacks file hashes");
  auto verify = [&](const std::string& f) {
    const Json* h = files->get(f);
    if (!h || h->type != Json::STR) bad("state.json lacks the hash of " + f);
    std::string actual = sha256_file(dir + "/" + f);
    if (actual != h->str) bad(f + " is corrupt (sha256 " + actual.substr(0, 12) + "... != recorded " + h->str.substr(0, 12) + "...)");
  };
  verify("model.safetensors");
  if (opt) verify("optimizer.safetensors");
  auto load_into = [&](const SafetensorsFile& f, const std::string& suffix, std::vector<real>& buf) {
    size_t expected = 0;
    for (auto& t : model.tensors) {
      expected++;
      const StEntry* e = f.get(t.name + suffix);
      if (!e) bad(f.path + " lacks tensor " + t.name + suffix);
      // The worker writes F32. An imported Megatron checkpoint keeps its bf16 weights as BF16 (half
      // the bytes to write and read); widening bf16 to float32 is exact. Optimizer state is F32 only.
      bool bf16 = e->dtype == "BF16" && suffix.empty();
      if (e->dtype != "F32" && !bf16) bad("tensor " + e->name + " has dtype " + e->dtype + ", expected F32" + (suffix.empty() ? " or BF16" : ""));
      if (e->shape != t.shape) {
        std::string a, b; for (long x : e->shape) a += std::to_string(x) + ","; for (long x : t.shape) b += std::to_string(x) + ",";
        bad("tensor " + e->name + " has shape [" + a + "] but the config needs [" + b + "]");
      }
      const char* src = f.data(*e);
      float tmp;
      if (bf16) {
        for (size_t i = 0; i < t.numel; i++) {
          uint16_t h; memcpy(&h, src + 2 * i, 2);
          uint32_t bits = (uint32_t)h << 16; memcpy(&tmp, &bits, 4);
          buf[t.offset + i] = (real)tmp;
        }
      } else {
        for (size_t i = 0; i < t.numel; i++) { memcpy(&tmp, src + 4 * i, 4); buf[t.offset + i] = (real)tmp; }
      }
    }
    (void)expected;
  };
  SafetensorsFile mf = safetensors_read(dir + "/model.safetensors", EXIT_CHECKPOINT);
  if (mf.entries.size() != model.tensors.size()) bad("model.safetensors has " + std::to_string(mf.entries.size()) + " tensors, the config needs " + std::to_string(model.tensors.size()));
  load_into(mf, "", model.params);
  if (opt) {
    SafetensorsFile of = safetensors_read(dir + "/optimizer.safetensors", EXIT_CHECKPOINT);
    opt->m.assign(model.size, 0); opt->v.assign(model.size, 0);
    load_into(of, ".exp_avg", opt->m);
    load_into(of, ".exp_avg_sq", opt->v);
    const Json* as = s.get("adamStep");
    opt->step = as ? (long)as->num : 0;
  }
  if (st) {
    const Json* it = s.get("iteration"); const Json* cs = s.get("consumedSamples");
    if (!it || !cs) bad("state.json lacks iteration / consumedSamples");
    st->iteration = (long)it->num; st->consumedSamples = (uint64_t)cs->num;
    const Json* d = s.get("data"); st->data = d ? *d : Json();
    const Json* o = s.get("dataOrder"); st->dataOrder = o ? *o : Json();
    st->scheduleDiffers = scheduleDiffers;
    st->files = *files;
  }
}

CheckpointState load_resume_checkpoint(const std::string& dir, const Config& cfg, Model& model, Optimizer& opt,
                                       const Json& dataInfo, const Json& dataOrder) {
  CheckpointState st;
  load_checkpoint(dir, cfg, model, &opt, &st, &dataOrder);
  if (st.data.type == Json::OBJ && st.data.dump() != dataInfo.dump())
    fail(EXIT_CHECKPOINT, "checkpoint " + dir + ": was trained on a different dataset (" + st.data.dump() + " vs " + dataInfo.dump() + ")");
  if (st.consumedSamples != (uint64_t)st.iteration * cfg.train.globalBatchSize)
    fail(EXIT_CHECKPOINT, "checkpoint " + dir + ": consumedSamples does not match iteration * globalBatchSize");
  if (st.iteration > cfg.train.trainIters)
    fail(EXIT_CHECKPOINT, "checkpoint " + dir + ": iteration " + std::to_string(st.iteration) + " is beyond trainIters");
  return st;
}

}  // namespace flame
