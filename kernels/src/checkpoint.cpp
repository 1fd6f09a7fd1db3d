#include "checkpoint.h"
#include "common.h"
#include "io/safetensors.h"
#include <cerrno>
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

std::string save_checkpoint(const std::string& outDir, const Config& cfg, const Model& model, const Optimizer& opt,
                            const CheckpointState& st) {
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
  safetensors_write(tmp + "/model.safetensors", w, {{"format", "pt"}, {"flame.modelFingerprint", fp}});
  safetensors_write(tmp + "/optimizer.safetensors", o, {{"format", "pt"}, {"flame.modelFingerprint", fp}});
  Json s = Json::object();
  s.set("format", Json::string("flame-worker-checkpoint"));
  s.set("version", Json::integer(1));
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
  s.set("trainFingerprint", Json::string(cfg.trainFingerprint()));
  s.set("model", cfg.modelJson());
  s.set("train", cfg.trainJson());
  s.set("data", st.data);
  Json files = Json::object();
  files.set("model.safetensors", Json::string(sha256_file(tmp + "/model.safetensors")));
  files.set("optimizer.safetensors", Json::string(sha256_file(tmp + "/optimizer.safetensors")));
  s.set("files", files);
  write_text(tmp + "/state.json", s.dump() + "\n");
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
  return "fingerprint differs";
}

void load_checkpoint(const std::string& dir, const Config& cfg, Model& model, Optimizer* opt, CheckpointState* st) {
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
  if (opt) {
    const Json* tfp = s.get("trainFingerprint");
    if (!tfp || tfp->str != cfg.trainFingerprint()) {
      const Json* tj = s.get("train");
      bad("cannot resume: training config differs: " + describe_mismatch(tj ? *tj : Json(), cfg.trainJson(), "train"));
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
  }
}

}  // namespace flame
