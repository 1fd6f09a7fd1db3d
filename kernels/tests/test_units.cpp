// Unit tests: WSD schedule vs hand-computed Megatron values, parameter counts of the seven
// published scales, config validation messages, safetensors round trip, JSON, numpy RandomState
// shuffle vs python3 numpy (skipped without numpy), the indexed dataset reader on files written by
// an independent Python writer, GPTDataset invariants, the Megatron-core blend arithmetic, the host-side index building shared by the
// CPU and CUDA backends (expert permutation, embedding token groups), the CPU/GPU comparison logic
// of the GPU tests (parity.h), and backend selection in a CPU-only build.
#include "common.h"
#include "config.h"
#include "data/blended_dataset.h"
#include "data/gpt_dataset.h"
#include "data/indexed_dataset.h"
#include "data/numpy_random.h"
#include "engine/engine.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model.h"
#include "ops/adamw.h"
#include "ops/permute.h"
#include "parity.h"
#include "schedule.h"
#include "testing.h"
#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <unistd.h>

using namespace flame;

static bool near(double a, double b, double tol) { return std::fabs(a - b) <= tol * std::max(1.0, std::fabs(b)); }

static void test_schedule() {
  TrainConfig t; t.trainIters = 11029;  // flame-moe-1.7b
  WsdSchedule s = WsdSchedule::from(t);
  CHECK(near(s.warmup, 110.29, 1e-12), "warmup %.6f", s.warmup);
  CHECK(s.wsdIters == 1102, "wsdIters %ld", s.wsdIters);
  CHECK(s.annealStart() == 9927, "anneal start %ld", s.annealStart());
  CHECK(s.lr_for_iteration(1) == 0.0, "iteration 1 lr %.9g (Megatron: 0)", s.lr_for_iteration(1));
  CHECK(near(s.lr_for_iteration(2), 3e-4 * 1 / 110.29, 1e-12), "iteration 2 lr %.9g", s.lr_for_iteration(2));
  CHECK(near(s.lr_at(55.145), 1.5e-4, 1e-12), "mid warmup %.9g", s.lr_at(55.145));
  CHECK(near(s.lr_at(111), 3e-4, 1e-15), "stable %.9g", s.lr_at(111));
  CHECK(near(s.lr_at(9927), 3e-4, 1e-15), "anneal start %.9g", s.lr_at(9927));
  double half = 3e-5 + (2 * std::pow(0.5, 0.5) - 1) * 2.7e-4;  // r = 0.5
  CHECK(near(s.lr_at(9927 + 551), half, 1e-12), "half-way anneal %.12g vs %.12g", s.lr_at(9927 + 551), half);
  CHECK(near(s.lr_at(11029), 3e-5, 1e-12), "end %.12g", s.lr_at(11029));
  CHECK(near(s.lr_for_iteration(11029), 3e-5 + (2 * std::pow(0.5, 1101.0 / 1102) - 1) * 2.7e-4, 1e-12), "last iteration lr");
  TrainConfig t2; t2.trainIters = 2121;  // flame-moe-38m: wsdIters = 2121 / 10 = 212
  CHECK(WsdSchedule::from(t2).wsdIters == 212, "38m wsdIters %ld", WsdSchedule::from(t2).wsdIters);
  // --lr-wsd-decay-style: coeff at r = 0.25 of the anneal (steps 9927 + 275.5 of flame-moe-1.7b)
  const char* styles[] = {"linear", "cosine", "minus_sqrt", "exponential"};
  const double coeff[] = {0.75, 0.5 * (std::cos(M_PI * 0.25) + 1), 0.5, 2 * std::pow(0.5, 0.25) - 1};
  for (int k = 0; k < 4; k++) {
    TrainConfig ts = t; ts.wsdDecayStyle = styles[k];
    double lr = WsdSchedule::from(ts).lr_at(9927 + 275.5), want = 3e-5 + coeff[k] * 2.7e-4;
    CHECK(near(lr, want, 1e-12), "%s at r = 0.25: %.12g vs %.12g", styles[k], lr, want);
    CHECK(near(WsdSchedule::from(ts).lr_at(11029), 3e-5, 1e-12), "%s ends at minLr", styles[k]);
  }
}

static double parse_published(const std::string& s) {
  double v = std::stod(s); char u = s.back();
  return u == 'B' ? v * 1e9 : u == 'M' ? v * 1e6 : v;
}

static void test_params() {
  Json j = json_parse(read_file("data/flame-moe-scales.json"), "scales", 1);
  const Json* scales = j.get("scales");
  CHECK(scales && scales->arr.size() == 7, "seven scales");
  // facts: active/total 38.0M/100.7M, 100.0M/350.9M, 116.2M/461.2M, 296.5M/1.300B, 425.9M/2.182B, 734.9M/3.840B, 1.754B/10.28B
  const double exact[7][2] = {{38.0e6, 100.7e6}, {100.0e6, 350.9e6}, {116.2e6, 461.2e6}, {296.5e6, 1.300e9}, {425.9e6, 2.182e9}, {734.9e6, 3.840e9}, {1.754e9, 10.28e9}};
  int i = 0;
  for (auto& s : scales->arr) {
    Json cfg = Json::object(); Json m = Json::object();
    for (const char* k : {"hiddenSize", "numLayers", "ffnHiddenSize", "moeFfnHiddenSize"}) m.set(k, *s.get(k));
    m.set("moeLayers", *s.get("moeLayerFreq"));
    cfg.set("model", m);
    Config c = parse_config(cfg);
    ParamCounts p = count_params(c.model);
    double pa = parse_published(s.get("publishedActiveParams")->str), pt = parse_published(s.get("publishedTotalParams")->str);
    // "1.7B" is a truncated name: the arithmetic gives 1.754B (3.2% above), so a name also
    // agrees when our count truncated to the name's precision equals it.
    std::string an = s.get("publishedActiveParams")->str;
    double unit = an.back() == 'B' ? 1e9 : 1e6, step = an.find('.') != std::string::npos ? 0.1 : 1.0;
    bool truncMatch = std::fabs(std::floor(p.active / unit / step + 1e-9) * step - pa / unit) < 1e-9;
    CHECK(std::fabs(p.active / pa - 1) < 0.03 || truncMatch, "%s active %.4g vs published %.4g", s.get("id")->str.c_str(), p.active, pa);
    CHECK(std::fabs(p.total / pt - 1) < 0.03, "%s total %.4g vs published %.4g", s.get("id")->str.c_str(), p.total, pt);
    CHECK(std::fabs(p.active / exact[i][0] - 1) < 0.002 && std::fabs(p.total / exact[i][1] - 1) < 0.002, "%s: %.5g / %.5g vs arithmetic %.5g / %.5g",
          s.get("id")->str.c_str(), p.active, p.total, exact[i][0], exact[i][1]);
    // the Model's tensors add up to the same count
    if (i == 0) {
      Model mod(c.model); double n = 0; for (auto& t : mod.tensors) n += t.numel;
      CHECK(n == p.total, "model tensors %.0f vs count %.0f", n, p.total);
    }
    printf("%-16s active %8.1fM total %8.1fM (published %s / %s)\n", s.get("id")->str.c_str(), p.active / 1e6, p.total / 1e6,
           s.get("publishedActiveParams")->str.c_str(), s.get("publishedTotalParams")->str.c_str());
    i++;
  }
}

static void expect_config_error(const std::string& text, const std::string& needle) {
  try {
    parse_config(json_parse(text, "config", EXIT_CONFIG));
    CHECK(false, "config accepted: %s", text.c_str());
  } catch (FlameError& e) {
    CHECK(e.code == EXIT_CONFIG, "exit code %d for %s", e.code, text.c_str());
    CHECK(std::string(e.what()).find(needle) != std::string::npos, "message '%s' lacks '%s'", e.what(), needle.c_str());
  }
}

static void test_config() {
  const std::string m = "\"hiddenSize\":64,\"numLayers\":2,\"ffnHiddenSize\":32,\"moeFfnHiddenSize\":16";
  expect_config_error("{\"model\":{\"hiddenSize\":\"abc\",\"numLayers\":2}}", "config.model.hiddenSize: expected positive integer, got \"abc\"");
  expect_config_error("{\"model\":{" + m + ",\"hiddenSizes\":3}}", "config.model.hiddenSizes: unknown key");
  expect_config_error("{\"model\":{\"hiddenSize\":60,\"numLayers\":2,\"ffnHiddenSize\":8,\"moeFfnHiddenSize\":8}}", "not divisible by numAttentionHeads");
  expect_config_error("{\"model\":{" + m + ",\"moeLayers\":\"[0]*1+[1]*3\"}}", "config.model.moeLayers: has 4 entries but numLayers is 2");
  expect_config_error("{\"model\":{" + m + "},\"train\":{\"trainIters\":10,\"globalBatchSize\":10,\"microBatchSize\":3}}", "config.train.globalBatchSize");
  expect_config_error("{\"model\":{" + m + "},\"train\":{\"trainIters\":0}}", "config.train.trainIters: expected positive integer, got 0");
  expect_config_error("{\"model\":{" + m + "},\"runtime\":{\"backend\":\"tpu\"}}", "config.runtime.backend: expected \"cpu\", \"cuda\" or \"auto\", got \"tpu\"");
  expect_config_error("{\"model\":{" + m + "},\"runtime\":{\"precision\":\"fp16\"}}", "config.runtime.precision");
  expect_config_error("{\"model\":{" + m + "},\"runtime\":{\"attention\":\"fast\"}}", "config.runtime.attention");
  expect_config_error("{\"model\":{" + m + "},\"bogus\":{}}", "config.bogus: unknown key");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"split\":\"90,5\"}}", "config.data.split");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"blend\":[{\"weight\":1,\"prefix\":\"a\"},{\"weight\":0,\"prefix\":\"b\"}]}}", "config.data.blend[1].weight: expected number > 0, got 0");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"blend\":[{\"weight\":1}]}}", "config.data.blend[0].prefix: missing required key");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"blend\":[]}}", "config.data.blend: expected non-empty array");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"blend\":[\"a\"]}}", "config.data.blend[0]: expected object");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"prefix\":\"a\",\"blend\":[{\"weight\":1,\"prefix\":\"b\"}]}}", "config.data: give either prefix");
  expect_config_error("{\"model\":{" + m + "},\"data\":{\"splitSamples\":{\"train\":1,\"valid\":-1,\"test\":0}}}", "config.data.splitSamples.valid: expected non-negative integer");
  expect_config_error("{\"model\":{" + m + "},\"model\":{}}", "duplicate key");
  expect_config_error("{\"model\":{" + m + ",\"topK\":70}}", "config.model.topK");
  expect_config_error("{\"model\":{" + m + "},\"train\":{\"trainIters\":10,\"wsdDecayStyle\":\"step\"}}", "config.train.wsdDecayStyle: expected \"exponential\"");
  expect_config_error("{\"model\":{" + m + "},\"train\":{\"trainIters\":10,\"saveIters\":[3,11]}}", "config.train.saveIters: 11 exceeds trainIters 10");
  expect_config_error("{\"model\":{" + m + "},\"train\":{\"trainIters\":10,\"saveIters\":[0]}}", "config.train.saveIters: expected array of positive integers");
  {
    // Neither a listed checkpoint nor the default decay style enters the training fingerprint.
    std::string t = "{\"model\":{" + m + "},\"train\":{\"trainIters\":10";
    Config a = parse_config(json_parse(t + "}}", "c", 2));
    Config b = parse_config(json_parse(t + ",\"saveIters\":[7,3,7],\"wsdDecayStyle\":\"exponential\"}}", "c", 2));
    Config l = parse_config(json_parse(t + ",\"wsdDecayStyle\":\"linear\"}}", "c", 2));
    CHECK(a.trainFingerprint() == b.trainFingerprint() && a.trainFingerprint() != l.trainFingerprint(), "fingerprints with saveIters / wsdDecayStyle");
    CHECK(b.train.saveIters == std::vector<long>({3, 7}), "saveIters sorted, unique");
  }
  Config c = parse_config(json_parse("{\"model\":{\"hiddenSize\":64,\"numLayers\":4,\"ffnHiddenSize\":32,\"moeFfnHiddenSize\":16,\"moeLayers\":\"[0]*1+[1]*3\"}}", "c", 2));
  CHECK(c.model.moeLayers == std::vector<bool>({false, true, true, true}), "pattern");
  CHECK(c.model.sharedExpertSize == 32 && c.model.numExperts == 64 && c.model.topK == 6 && c.model.normEps == 1e-6, "defaults");
  Config c2 = parse_config(json_parse("{\"model\":{" + m + ",\"moeLayers\":[false,false]}}", "c", 2));
  CHECK(c2.model.numMoeLayers() == 0, "dense model");
  CHECK(c.modelFingerprint() != c2.modelFingerprint(), "fingerprints differ");
}

static void test_json_safetensors() {
  Json j = json_parse("{\"a\":[1,2.5,-3e-2,true,null,\"x\\u00e9\\n\"],\"b\":{}}", "t", 1);
  CHECK(j.dump() == "{\"a\":[1,2.5,-0.03,true,null,\"x\xc3\xa9\\n\"],\"b\":{}}", "json round trip: %s", j.dump().c_str());
  CHECK(json_number(0.1) == "0.1" && json_number(1.0 / 3) == "0.3333333333333333", "shortest repr");
  std::vector<float> a = {1, 2, 3, 4, 5, 6}, b = {-1.5f};
  std::string path = "build/test-roundtrip.safetensors";
  safetensors_write(path, {{"x.weight", {2, 3}, a.data()}, {"y", {1}, b.data()}}, {{"format", "pt"}});
  SafetensorsFile f = safetensors_read(path, EXIT_CHECKPOINT);
  CHECK(f.entries.size() == 2 && f.get("x.weight") && f.get("x.weight")->shape == std::vector<long>({2, 3}), "entries");
  CHECK(memcmp(f.data(*f.get("x.weight")), a.data(), 24) == 0 && memcmp(f.data(*f.get("y")), b.data(), 4) == 0, "data");
  CHECK((f.dataStart % 8) == 0, "header aligned");
  // adopt links a file only when it is the writer's prefix followed by the F32 data: so must the
  // writer's own files be.
  std::vector<StTensorOut> ts = {{"x.weight", {2, 3}, a.data()}, {"y", {1}, b.data()}};
  std::string want = safetensors_prefix(ts, {{"format", "pt"}}) + std::string((const char*)a.data(), 24) + std::string((const char*)b.data(), 4);
  CHECK(f.bytes == want && safetensors_data_bytes(ts) == 28, "file = prefix + data (%zu bytes vs %zu)", f.bytes.size(), want.size());
  CHECK(safetensors_prefix(ts, {{"format", "pt"}, {"note", "x"}}) != safetensors_prefix(ts, {{"format", "pt"}}), "metadata in the prefix");
  const char* py = "python3 -c \"import json,struct,sys; d=open('build/test-roundtrip.safetensors','rb').read(); n=struct.unpack('<Q',d[:8])[0]; h=json.loads(d[8:8+n]); "
                   "o=h['x.weight']['data_offsets']; print(list(struct.unpack('<6f', d[8+n+o[0]:8+n+o[1]])))\" 2>/dev/null";
  if (FILE* p = popen(py, "r")) {
    char buf[256] = {0}; size_t n = fread(buf, 1, sizeof buf - 1, p); int rc = pclose(p);
    if (rc == 0 && n) CHECK(std::string(buf) == "[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]\n", "python reads %s", buf);
  }
  unlink(path.c_str());
}

static bool have_numpy() { return system("python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

static void test_numpy_shuffle() {
  if (!have_numpy()) { printf("SKIP numpy RandomState comparison (python3 with numpy not available)\n"); return; }
  // Same RandomState, several shuffles in a row (as GPTDataset does), small and large arrays.
  const char* py = "python3 -c \"import numpy as np; r=np.random.RandomState(1234); out=[]\n"
                   "for n in [10, 1000, 70000, 1]:\n a=np.arange(n,dtype=np.int32); r.shuffle(a); out.append(' '.join(map(str,a[:50].tolist()+a[-50:].tolist())))\n"
                   "print('|'.join(out))\"";
  FILE* p = popen(py, "r"); std::string s; char buf[4096]; size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  pclose(p);
  NumpyRandomState r(1234); std::string mine;
  for (int len : {10, 1000, 70000, 1}) {
    std::vector<int32_t> a(len); for (int i = 0; i < len; i++) a[i] = i;
    r.shuffle(a);
    std::vector<int32_t> sel(a.begin(), a.begin() + std::min(50, len));
    sel.insert(sel.end(), a.end() - std::min(50, len), a.end());
    std::string part; for (size_t i = 0; i < sel.size(); i++) part += (i ? " " : "") + std::to_string(sel[i]);
    mine += (mine.empty() ? "" : "|") + part;
  }
  CHECK(s == mine + "\n", "numpy shuffle differs:\n numpy %.200s\n ours  %.200s", s.c_str(), mine.c_str());
  printf("numpy RandomState(1234).shuffle reproduced (4 consecutive shuffles)\n");
}

static void test_indexed_dataset() {
  if (!have_numpy()) { printf("SKIP indexed dataset python writer (python3 with numpy not available)\n"); return; }
  // An independent writer (struct + numpy, following Megatron's MMIDIDX layout) with an empty
  // document in the middle, in uint16 and int32.
  const char* py =
      "python3 -c \"import numpy as np, struct\n"
      "docs=[[5,6,7,0],[8,9,0],[],[1,2,3,4,5,0],[7,0]]+[[i%50+1]*(i%7+2)+[0] for i in range(200)]\n"
      "for name,dt,code in [('u16',np.uint16,8),('i32',np.int32,4)]:\n"
      " p='build/test-ds-'+name; nz=[d for d in docs if d]\n"
      " open(p+'.bin','wb').write(b''.join(np.array(d,dtype=dt).tobytes() for d in nz))\n"
      " L=np.array([len(d) for d in nz],dtype=np.int32); ptr=(np.concatenate([[0],np.cumsum(L)[:-1]])*np.dtype(dt).itemsize).astype(np.int64)\n"
      " di=np.array([0]+list(np.cumsum([1 if d else 0 for d in docs])),dtype=np.int64)\n"
      " open(p+'.idx','wb').write(b'MMIDIDX\\x00\\x00'+struct.pack('<Q',1)+struct.pack('<B',code)+struct.pack('<Q',len(L))+struct.pack('<Q',len(di))+L.tobytes()+ptr.tobytes()+di.tobytes())\n\"";
  CHECK(system(py) == 0, "python writer failed");
  for (const char* name : {"build/test-ds-u16", "build/test-ds-i32"}) {
    IndexedDataset ds(name);
    CHECK(ds.numSequences() == 204 && ds.numDocuments() == 205, "%s: %zu sequences %zu documents", name, ds.numSequences(), ds.numDocuments());
    CHECK(ds.documentIndices()[2] == 2 && ds.documentIndices()[3] == 2, "empty document repeats the index");
    int32_t t[6]; ds.read(2, 0, 6, t);
    CHECK(t[0] == 1 && t[4] == 5 && t[5] == 0, "sequence 2 tokens");
    // GPTDataset invariants: samples are seq+1 tokens; unshuffled consecutive samples overlap by one
    int seq = 16;
    GptDataset g(ds, 0, {90, 5, 5}, 40, seq, 1234);
    CHECK(g.size() >= 40, "samples %lu", (unsigned long)g.size());
    std::vector<int32_t> a(seq + 1), b(seq + 1);
    for (uint64_t j = 0; j + 1 < g.size(); j++) {
      g.unshuffled(j, a.data()); g.unshuffled(j + 1, b.data());
      if (a[seq] != b[0]) { CHECK(false, "samples %lu/%lu do not overlap by one token", (unsigned long)j, (unsigned long)j + 1); break; }
    }
    // The whole sample order against a direct numpy transcription of Megatron's GPTDataset
    // index building (_build_document_index, build_sample_idx, _build_shuffle_index): one epoch,
    // 3 epochs with a separately shuffled final epoch (150), 3 epochs without (200), test split.
    const char* ref =
        "python3 -c \"import numpy as np, struct, sys\n"
        "p=sys.argv[1]; d=open(p+'.idx','rb').read(); S=struct.unpack('<Q',d[18:26])[0]\n"
        "L=np.frombuffer(d[34:34+4*S],dtype=np.int32); ptr=np.frombuffer(d[34+4*S:34+12*S],dtype=np.int64)\n"
        "it=np.dtype(np.uint16 if d[17]==8 else np.int32); b=np.fromfile(p+'.bin',dtype=it)\n"
        "def bounds(n):\n s=[90/100,5/100,5/100]; x=[0]\n for q in s: x.append(x[-1]+int(round(q*float(n))))\n return [x[0]]+[v-(x[-1]-n) for v in x[1:]]\n"
        "def docidx(docs,e,r,sep):\n if not sep or e==1:\n  a=np.mgrid[0:e,0:len(docs)][1]; a[:]=docs; a=a.reshape(-1).astype(np.int32); r.shuffle(a); return a\n return np.concatenate((docidx(docs,e-1,r,False),docidx(docs,1,r,False)))\n"
        "out=[]\n"
        "for split,ns,seq in [(0,40,16),(0,150,16),(0,200,16),(2,5,8)]:\n"
        " bd=bounds(S); docs=np.arange(bd[split],bd[split+1],dtype=np.int32); tpe=int(L[docs].sum()); e=1; t=tpe\n"
        " while t<ns*seq+1: e+=1; t+=tpe\n"
        " sep=False\n"
        " if e>1:\n  sans=((e-1)*tpe-1)//seq; ff=ns-sans; pe=(tpe-1)//seq; sep=ff<int(0.8*pe)\n"
        " r=np.random.RandomState(1234); di=docidx(docs,e,r,sep); n=(e*tpe-1)//seq; si=[(0,0)]; k=0; off=0\n"
        " for _ in range(n):\n  rem=seq+1\n  while rem!=0:\n   dl=L[di[k]]-off; rem-=dl\n   if rem<=0: off+=rem+dl-1; rem=0\n   else: k+=1; off=0\n  si.append((k,off))\n"
        " first=sans if sep else n; a=np.arange(first,dtype=np.uint32); r.shuffle(a)\n"
        " if first<n: c=np.arange(first,n,dtype=np.uint32); r.shuffle(c); a=np.concatenate((a,c))\n"
        " for i in range(ns):\n  j=a[i]; (d0,o0),(d1,o1)=si[j],si[j+1]; toks=[]\n"
        "  for q in range(d0,d1+1):\n   st=o0 if q==d0 else 0; en=o1+1 if q==d1 else L[di[q]]; s0=ptr[di[q]]//it.itemsize; toks+=b[s0+st:s0+en].tolist()\n"
        "  out.append(','.join(map(str,toks)))\n"
        "print(';'.join(out))\" ";
    std::string cmd = std::string(ref) + name;
    FILE* pp = popen(cmd.c_str(), "r"); std::string py; char pb[4096]; size_t pn;
    while ((pn = fread(pb, 1, sizeof pb, pp)) > 0) py.append(pb, pn);
    int prc = pclose(pp);
    CHECK(prc == 0, "python GPTDataset reference failed");
    std::string mine; int cases[][3] = {{0, 40, 16}, {0, 150, 16}, {0, 200, 16}, {2, 5, 8}};
    for (auto& cs : cases) {
      GptDataset gd(ds, cs[0], {90, 5, 5}, cs[1], cs[2], 1234);
      std::vector<int32_t> tk(cs[2] + 1);
      for (int i = 0; i < cs[1]; i++) {
        gd.sample(i, tk.data());
        std::string row; for (size_t q = 0; q < tk.size(); q++) row += (q ? "," : "") + std::to_string(tk[q]);
        mine += (mine.empty() ? "" : ";") + row;
      }
      if (cs[1] == 150) printf("GPTDataset %s: %d epochs for 150 samples\n", name, gd.numEpochs());
    }
    CHECK(py == mine + "\n", "%s: GPTDataset sample order differs from the numpy transcription of Megatron", name);
    std::vector<size_t> bnd = split_bounds({90, 5, 5}, 204);
    CHECK(bnd == std::vector<size_t>({0, 184, 194, 204}), "split bounds %zu %zu %zu %zu", bnd[0], bnd[1], bnd[2], bnd[3]);
  }
  // corruption is reported
  FILE* f = fopen("build/test-ds-u16.bin", "ab"); fputc(1, f); fclose(f);
  try { IndexedDataset ds("build/test-ds-u16"); CHECK(false, "truncated/extended .bin accepted"); }
  catch (FlameError& e) { CHECK(e.code == EXIT_DATA && std::string(e.what()).find("corrupt dataset data") != std::string::npos, "%s", e.what()); }
  f = fopen("build/test-ds-i32.idx", "r+b"); fputc('X', f); fclose(f);
  try { IndexedDataset ds("build/test-ds-i32"); CHECK(false, "bad magic accepted"); }
  catch (FlameError& e) { CHECK(e.code == EXIT_DATA && std::string(e.what()).find("bad magic") != std::string::npos, "%s", e.what()); }
  try { IndexedDataset ds("build/does-not-exist"); CHECK(false, "missing file accepted"); }
  catch (FlameError& e) { CHECK(e.code == EXIT_DATA, "%s", e.what()); }
  for (const char* p : {"build/test-ds-u16.bin", "build/test-ds-u16.idx", "build/test-ds-i32.bin", "build/test-ds-i32.idx"}) unlink(p);
}

static void test_blend() {
  // Megatron-core's split matrix: [round(lo * n), round(hi * n)) of the cumulated shares, values
  // from python (blended_megatron_dataset_builder._build_megatron_dataset_splits); the legacy
  // split_bounds (data.prefix) differs for 1010 and 25.
  auto r = megatron_split_ranges({90, 5, 5}, 1010);
  CHECK(r[0].begin == 0 && r[0].end == 909 && r[1].begin == 909 && r[1].end == 960 && r[2].begin == 960 && r[2].end == 1010, "90,5,5 of 1010");
  CHECK(split_bounds({90, 5, 5}, 1010) == std::vector<size_t>({0, 909, 960, 1010}), "split_bounds of 1010");
  r = megatron_split_ranges({90, 5, 5}, 25);
  CHECK(r[0].end == 22 && r[1].begin == 22 && r[1].end == 24 && r[2].begin == 24 && r[2].end == 25, "90,5,5 of 25");
  r = megatron_split_ranges({95, 0, 5}, 100);
  CHECK(r[0].built() && !r[1].built() && r[2].begin == 95 && r[2].end == 100, "95,0,5: no valid split");
  // _get_size_per_split_per_dataset: ceil(ceil(T * w) * (1 + margin / 100))
  CHECK(blend_dataset_size(400, 0.25, 0.0) == 100 && blend_dataset_size(400, 0.25, 0.5) == 101, "400 x 1/4");
  CHECK(blend_dataset_size(25600, 0.25, 0.5) == 6432, "25600 x 1/4: ceil(6400 * 1.005)");
  CHECK(blend_dataset_size(333, 1.0 / 3, 0.5) == 112 && blend_dataset_size(0, 0.5, 0.5) == 0, "333 x 1/3, 0");
  // build_blending_indices: max(i, 1) makes samples 0 and 1 alike; ties go to the first dataset
  std::vector<int16_t> di; std::vector<int64_t> si;
  build_blending_indices({0.5, 0.5}, 5, di, si);
  CHECK(di == std::vector<int16_t>({0, 1, 0, 1, 0}) && si == std::vector<int64_t>({0, 0, 1, 1, 2}), "equal weights alternate from the first");
  build_blending_indices({0.25, 0.75}, 4, di, si);
  CHECK(di == std::vector<int16_t>({1, 0, 1, 1}), "0.25/0.75: %d %d %d %d", di[0], di[1], di[2], di[3]);
  if (!have_numpy()) { printf("SKIP numpy normalize comparison (python3 with numpy not available)\n"); return; }
  // numpy's float64 sum is pairwise: weights normalised by the worker equal numpy's to the bit
  const int sizes[] = {5, 8, 100, 129, 1000, 8192};
  const char* py = "python3 -c \"import numpy as np\n"
                   "for n in [5, 8, 100, 129, 1000, 8192]:\n w=np.array([1.0/(i%97+3) for i in range(n)]); v=(w/np.sum(w)).tolist()\n"
                   " print(' '.join('%.17g' % x for x in v[:5]+v[-1:]))\"";
  FILE* p = popen(py, "r"); std::string s; char buf[4096]; size_t k;
  while ((k = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, k);
  pclose(p);
  std::string mine;
  for (int n : sizes) {
    std::vector<double> w(n); for (int i = 0; i < n; i++) w[i] = 1.0 / (double)(i % 97 + 3);
    std::vector<double> v = numpy_normalize(w);
    char b[64]; std::string line;
    for (int i : {0, 1, 2, 3, 4, n - 1}) { snprintf(b, sizeof b, "%.17g", v[std::min(i, n - 1)]); line += (line.empty() ? "" : " ") + std::string(b); }
    mine += line + "\n";
  }
  CHECK(s == mine, "numpy normalize differs:\n numpy %.300s\n ours  %.300s", s.c_str(), mine.c_str());
}

static void test_split_rounding() {
  // Megatron-core (blended_megatron_dataset_builder): [int(round(lo * n)), int(round(hi * n))) of the
  // cumulated shares; expected values computed in python with that formula.
  CHECK(split_bounds({90, 5, 5}, 1000) == std::vector<size_t>({0, 900, 950, 1000}), "1000");
  CHECK(split_bounds({90, 5, 5}, 10) == std::vector<size_t>({0, 9, 10, 10}), "10: round(9.5) = 10 (half to even)");
  CHECK(split_bounds({98, 1, 1}, 150) == std::vector<size_t>({0, 147, 148, 150}), "98,1,1 of 150");
  CHECK(split_bounds({1, 1, 1}, 7) == std::vector<size_t>({0, 2, 5, 7}), "thirds of 7");
  CHECK(split_bounds({90, 5, 5}, 30) == std::vector<size_t>({0, 27, 29, 30}), "90,5,5 of 30");
  CHECK(split_bounds({95, 0, 5}, 100) == std::vector<size_t>({0, 95, 95, 100}), "95,0,5: an empty valid split");
}

static void test_adamw() {
  // one apex-style AdamW step by hand: m = 0.05, v = 0.00025, m_hat = 0.5, v_hat = 0.25
  float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.0f}, m[2] = {0, 0}, v[2] = {0, 0};
  adamw_update(p, g, m, v, 2, 0.1, 0.9, 0.999, 1e-8, 0.01, 1);
  double expect0 = 1.0 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01 * 1.0);
  CHECK(std::fabs(p[0] - expect0) < 1e-6, "adamw p0 %.9g vs %.9g", p[0], expect0);
  CHECK(std::fabs(p[1] - (-2.0 - 0.1 * 0.01 * -2.0)) < 1e-6, "decoupled decay with zero grad %.9g", p[1]);
  CHECK(std::fabs(m[0] - 0.05f) < 1e-7 && std::fabs(v[0] - 0.00025f) < 1e-4 * 0.00025, "moments %.9g %.9g", m[0], v[0]);
  // second step uses bias corrections 1 - b^2
  adamw_update(p, g, m, v, 2, 0.1, 0.9, 0.999, 1e-8, 0.0, 2);
  double m2 = 0.9 * 0.05 + 0.05, v2 = 0.999 * 0.00025 + 0.00025;
  double expect1 = expect0 - 0.1 * ((m2 / (1 - 0.81)) / (std::sqrt(v2 / (1 - 0.999 * 0.999)) + 1e-8));
  CHECK(std::fabs(p[0] - expect1) < 2e-6, "adamw step 2 %.9g vs %.9g", p[0], expect1);
  // weight decay only on tensors with more than one dimension (norm weights excluded)
  ModelConfig mc; mc.vocabSize = 8; mc.hiddenSize = 16; mc.numLayers = 2; mc.numAttentionHeads = 4; mc.ffnHiddenSize = 8;
  mc.moeFfnHiddenSize = 4; mc.numExperts = 4; mc.topK = 2; mc.sharedExpertSize = 8; mc.moeLayers = {false, true};
  Model model(mc);
  for (auto& t : model.tensors)
    CHECK(t.decay == (t.name.find("norm") == std::string::npos), "%s decay flag", t.name.c_str());
}

// The permutation against its definition: (token, slot) pairs stably sorted by expert.
static void test_permutation() {
  std::mt19937 rng(7);
  const int shapes[][3] = {{1, 1, 1}, {5, 2, 8}, {64, 6, 64}, {37, 3, 256}, {16, 2, 4}};
  for (auto& sh : shapes) {
    const int T = sh[0], k = sh[1], E = sh[2];
    std::vector<int32_t> idx((size_t)T * k);
    for (auto& v : idx) v = (int32_t)(rng() % (E > 3 ? 3 : E));  // crowd a few experts, leave the rest empty
    if (E > 3) for (int t = 0; t < T; t += 3) idx[(size_t)t * k] = E - 1;
    std::vector<int32_t> counts(E), offsets(E + 1), rowTok((size_t)T * k), tokRow((size_t)T * k);
    build_expert_permutation(idx.data(), T, k, E, counts.data(), offsets.data(), rowTok.data(), tokRow.data());
    std::vector<int> pairs((size_t)T * k);
    for (int i = 0; i < T * k; i++) pairs[i] = i;
    std::stable_sort(pairs.begin(), pairs.end(), [&](int a, int b) { return idx[a] < idx[b]; });
    bool ok = true;
    for (int r = 0; r < T * k; r++) {
      ok = ok && rowTok[r] == pairs[r] / k && tokRow[pairs[r]] == r;
      ok = ok && r >= offsets[idx[pairs[r]]] && r < offsets[idx[pairs[r]] + 1];
    }
    long tot = 0; for (int e = 0; e < E; e++) { tot += counts[e]; ok = ok && offsets[e + 1] - offsets[e] == counts[e]; }
    CHECK(ok && tot == (long)T * k && offsets[E] == T * k, "permutation T=%d k=%d E=%d", T, k, E);
  }
  std::vector<int32_t> tok = {5, 1, 5, 0, 1, 5, 9}, ids, start, pos;
  build_token_groups(tok.data(), (int)tok.size(), ids, start, pos);
  CHECK(ids == std::vector<int32_t>({0, 1, 5, 9}) && start == std::vector<int32_t>({0, 1, 3, 6, 7}) &&
        pos == std::vector<int32_t>({3, 1, 4, 0, 2, 5, 6}), "token groups");
}

// The comparison rules of the GPU parity tests.
static void test_parity_logic() {
  float ref[4] = {1, 2, 3, 4}, got[4] = {1, 2, 3, 4.004f};
  parity::TensorDiff d = parity::compare(got, ref, 4);
  CHECK(near(d.relL2, 0.004 / std::sqrt(30.0), 1e-4) && d.worst == 3 && parity::within(d, 1e-3) && !parity::within(d, 1e-4), "relL2 %g", d.relL2);
  float nanv[2] = {1, NAN}, one[2] = {1, 1};
  CHECK(!parity::within(parity::compare(nanv, one, 2), 1e9), "NaN never passes");
  // slot 1 of token 0 swapped between two experts with nearly equal probabilities: a near tie;
  // token 1 routed elsewhere with a clearly different probability: a real mismatch
  int32_t ri[4] = {3, 7, 2, 5}, gi[4] = {3, 6, 2, 4};
  float rg[4] = {0.5f, 0.2f, 0.4f, 0.3f}, gg[4] = {0.5f, 0.2000001f, 0.4f, 0.1f};
  parity::RoutingDiff r = parity::compare_routing(ri, rg, gi, gg, 4, 1e-5);
  CHECK(r.mismatches == 2 && r.nearTies == 1 && r.firstBad == 3 && !parity::routing_ok(r), "routing diff %zu %zu %ld", r.mismatches, r.nearTies, r.firstBad);
  CHECK(parity::routing_ok(parity::compare_routing(ri, rg, gi, gg, 2, 1e-5)), "near tie accepted");
}

// A CPU-only build: cpu runs, auto falls back to the CPU, cuda is refused with a reason.
static void test_backend_selection() {
  Config c = parse_config(json_parse("{\"model\":{\"hiddenSize\":16,\"numLayers\":1,\"numAttentionHeads\":2,\"moeFfnHiddenSize\":8,\"numExperts\":4,\"topK\":2}}", "c", 2));
  Model m(c.model);
  CHECK(make_engine(c, m, nullptr)->describe().rfind("cpu", 0) == 0, "cpu engine");
  c.runtime.backend = "auto";
  CHECK(make_engine(c, m, nullptr)->describe().rfind("cpu", 0) == 0, "auto falls back to the cpu");
  c.runtime.backend = "cuda";
  std::string msg;
  try { make_engine(c, m, nullptr); } catch (FlameError& e) { msg = e.what(); CHECK(e.code == EXIT_CONFIG, "exit code %d", e.code); }
  CHECK(msg.find("config.runtime.backend: \"cuda\" cannot run: this flame-worker binary was built without the CUDA backend") == 0, "message: %s", msg.c_str());
}

int main() {
  test_adamw();
  test_schedule();
  test_params();
  test_config();
  test_json_safetensors();
  test_numpy_shuffle();
  test_indexed_dataset();
  test_split_rounding();
  test_blend();
  test_permutation();
  test_parity_logic();
  test_backend_selection();
  TEST_MAIN_END();
}
