#!/usr/bin/env node
// TEST DOUBLE for Megatron-LM's pretrain_gpt.py (Megatron and PyTorch are not installed here). It
// parses the arguments the Megatron backend generates (refusing unknown ones, as argparse does),
// runs the checks of Megatron's arguments.py that concern them (parallel layout against WORLD_SIZE,
// batch divisibility, the MoE layer pattern, the WSD schedule, the dataset files), then "trains":
// it prints Megatron's log lines (iteration, validation, checkpoint) and saves real Megatron-LM
// checkpoints (torch_dist: iter_XXXXXXX/.metadata, common.pt, __<rank>_<n>.distcp) plus
// latest_checkpointed_iteration.txt, resuming from --load as Megatron does. No model is trained:
// losses follow a fixed curve, and each checkpoint holds seeded random weights of the model the
// arguments describe (vocabulary padded from the tokenizer as Megatron pads it), written by
// scripts/megatron/write_checkpoint.py with the run's settings as its stored args, so that eval and
// trace stages can import what "training" produced.
//
// Knobs for tests: FAKE_PRETRAIN_ITER_MS (sleep per iteration), FAKE_PRETRAIN_FAIL_AT (iteration at
// which rank 0 raises), PYTHON (the python3 with torch and numpy that runs the checkpoint writer;
// default: the first of /usr/bin/python3 and python3 that imports them).
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const booleanFlags = new Set([
  "swiglu",
  "untie-embeddings-and-output-weights",
  "disable-bias-linear",
  "moe-router-pre-softmax",
  "sequence-parallel",
  "use-distributed-optimizer",
  "overlap-grad-reduce",
  "overlap-param-gather",
  "bf16",
  "fp16",
  "log-throughput",
  "exit-signal-handler",
  "no-load-optim",
  "no-load-rng"
])
const valueFlags = new Set([
  "hidden-size",
  "ffn-hidden-size",
  "num-layers",
  "num-attention-heads",
  "max-position-embeddings",
  "normalization",
  "norm-epsilon",
  "position-embedding-type",
  "rotary-base",
  "hidden-dropout",
  "attention-dropout",
  "init-method-std",
  "tokenizer-type",
  "tokenizer-model",
  "moe-ffn-hidden-size",
  "num-experts",
  "moe-router-topk",
  "moe-shared-expert-intermediate-size",
  "moe-layer-freq",
  "moe-router-dtype",
  "moe-router-score-function",
  "moe-aux-loss-coeff",
  "moe-z-loss-coeff",
  "moe-router-load-balancing-type",
  "tensor-model-parallel-size",
  "pipeline-model-parallel-size",
  "expert-model-parallel-size",
  "moe-token-dispatcher-type",
  "distributed-timeout-minutes",
  "micro-batch-size",
  "global-batch-size",
  "lr",
  "min-lr",
  "lr-decay-style",
  "lr-warmup-fraction",
  "lr-wsd-decay-iters",
  "lr-wsd-decay-style",
  "train-iters",
  "weight-decay",
  "clip-grad",
  "adam-beta1",
  "adam-beta2",
  "adam-eps",
  "seed",
  "seq-length",
  "split",
  "log-interval",
  "save",
  "save-interval",
  "load",
  "eval-interval",
  "eval-iters",
  "tensorboard-dir",
  "wandb-project",
  "wandb-exp-name",
  "wandb-save-dir",
  "exit-duration-in-mins",
  "make-vocab-size-divisible-by"
])
const multiValueFlags = new Set(["data-path"])
const choices = {
  normalization: ["LayerNorm", "RMSNorm"],
  "position-embedding-type": ["learned_absolute", "rope", "none"],
  "moe-router-dtype": ["fp32", "fp64"],
  "moe-router-score-function": ["softmax", "sigmoid"],
  "moe-token-dispatcher-type": ["allgather", "alltoall", "flex"],
  "lr-decay-style": ["constant", "linear", "cosine", "inverse-square-root", "WSD"],
  "lr-wsd-decay-style": ["exponential", "linear", "cosine", "minus_sqrt"],
  "tokenizer-type": ["GPT2BPETokenizer", "HuggingFaceTokenizer", "SentencePieceTokenizer", "NullTokenizer"]
}

const rank = Number(process.env.RANK ?? 0)
const world = Number(process.env.WORLD_SIZE ?? 1)
const localRank = Number(process.env.LOCAL_RANK ?? 0)
const lastRank = rank === world - 1

const die = (message, code = 2) => {
  if (rank === 0) console.error(`pretrain_gpt.py: error: ${message}`)
  process.exit(code)
}

// ---- arguments ------------------------------------------------------------------------------------
const args = {}
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i]
  if (!arg.startsWith("--")) die(`unrecognized arguments: ${arg}`)
  const name = arg.slice(2)
  if (name in args) die(`argument --${name} given twice`)
  if (booleanFlags.has(name)) args[name] = true
  else if (valueFlags.has(name)) {
    const value = argv[++i]
    if (value === undefined || value.startsWith("--")) die(`argument --${name}: expected one argument`)
    args[name] = value
  } else if (multiValueFlags.has(name)) {
    const values = []
    while (i + 1 < argv.length && !argv[i + 1].startsWith("--")) values.push(argv[++i])
    if (values.length === 0) die(`argument --${name}: expected at least one argument`)
    args[name] = values
  } else die(`unrecognized arguments: ${arg}`)
}
for (const [name, allowed] of Object.entries(choices)) {
  if (args[name] !== undefined && !allowed.includes(args[name])) {
    die(`argument --${name}: invalid choice: '${args[name]}' (choose from ${allowed.join(", ")})`)
  }
}
const required = [
  "num-layers",
  "hidden-size",
  "num-attention-heads",
  "seq-length",
  "max-position-embeddings",
  "micro-batch-size",
  "global-batch-size",
  "train-iters",
  "lr",
  "data-path",
  "save",
  "save-interval",
  "tokenizer-type"
]
for (const name of required) if (args[name] === undefined) die(`the following arguments are required: --${name}`)

const int = (name, fallback) => {
  const value = args[name] ?? fallback
  if (value === undefined || !/^-?\d+$/.test(String(value))) die(`argument --${name}: invalid int value: '${value}'`)
  return Number(value)
}
const float = (name, fallback) => {
  const value = Number(args[name] ?? fallback)
  if (!Number.isFinite(value)) die(`argument --${name}: invalid float value: '${args[name]}'`)
  return value
}

// ---- the checks of arguments.py that concern these arguments --------------------------------------
const assert = (ok, message) => ok || die(`AssertionError: ${message}`, 1)
assert(localRank < Number(process.env.LOCAL_WORLD_SIZE ?? 1), `LOCAL_RANK ${localRank} outside LOCAL_WORLD_SIZE`)
const tp = int("tensor-model-parallel-size", 1)
const pp = int("pipeline-model-parallel-size", 1)
const ep = int("expert-model-parallel-size", 1)
assert(
  world % (tp * pp) === 0,
  `world size (${world}) is not divisible by tensor (${tp}) x pipeline (${pp}) parallel size`
)
const dp = world / (tp * pp)
const numLayers = int("num-layers")
const hidden = int("hidden-size")
const heads = int("num-attention-heads")
const mbs = int("micro-batch-size")
const gbs = int("global-batch-size")
const trainIters = int("train-iters")
const seqLength = int("seq-length")
assert(
  gbs % (mbs * dp) === 0,
  `global batch size (${gbs}) is not divisible by micro batch size (${mbs}) times data parallel size (${dp})`
)
assert(hidden % heads === 0, `hidden size ${hidden} is not divisible by ${heads} attention heads`)
assert(heads % tp === 0, `${heads} attention heads are not divisible by tensor parallel size ${tp}`)
assert(numLayers % pp === 0, `${numLayers} layers are not divisible by pipeline parallel size ${pp}`)
assert(int("max-position-embeddings") >= seqLength, "max-position-embeddings is smaller than seq-length")
// Per layer, 1 for an MoE layer (after Megatron's moe_freq_type).
let pattern = []
if (args["num-experts"] !== undefined) {
  const experts = int("num-experts")
  assert(experts % ep === 0, `number of experts (${experts}) is not divisible by expert parallel size (${ep})`)
  assert(dp % ep === 0, `data parallel size (${dp}) is not divisible by expert parallel size (${ep})`)
  assert(int("moe-router-topk", 2) <= experts, "moe-router-topk exceeds num-experts")
  assert(args["moe-ffn-hidden-size"] !== undefined, "--moe-ffn-hidden-size is required with --num-experts")
  const freq = args["moe-layer-freq"] ?? "1"
  if (/^\d+$/.test(freq)) pattern = Array.from({ length: numLayers }, (_, i) => (i % Number(freq) === 0 ? 1 : 0))
  else {
    const terms = freq.split("+").map((term) => /^\[([01](?:,[01])*)\]\*(\d+)$/.exec(term.trim()))
    if (terms.some((t) => t === null)) die(`argument --moe-layer-freq: invalid value: '${freq}'`)
    pattern = terms.flatMap((t) => Array.from({ length: Number(t[2]) }, () => t[1].split(",").map(Number)).flat())
  }
  assert(
    pattern.length === numLayers,
    `moe-layer-freq describes ${pattern.length} layers, but num-layers is ${numLayers}`
  )
}
if (args["lr-decay-style"] === "WSD") {
  assert(args["lr-wsd-decay-iters"] !== undefined, "--lr-wsd-decay-iters is required with --lr-decay-style WSD")
  assert(int("lr-wsd-decay-iters") <= trainIters, "lr-wsd-decay-iters exceeds train-iters")
}
const split = String(args.split ?? "969,30,1").split(",").map(Number)
assert(split.length === 3 && split.every((n) => Number.isFinite(n) && n >= 0), `invalid --split ${args.split}`)
for (const prefix of args["data-path"].filter((p) => !/^[\d.]+$/.test(p))) {
  for (const ext of [".bin", ".idx"]) {
    if (!fs.existsSync(prefix + ext)) die(`FileNotFoundError: ${prefix + ext} (the --data-path prefix)`, 1)
  }
}

if (rank === 0) {
  console.log("------------------------ arguments ------------------------")
  for (const name of Object.keys(args).sort()) {
    const key = name.replace(/-/g, "_")
    console.log(
      `  ${key} ${".".repeat(Math.max(3, 48 - key.length))} ${
        Array.isArray(args[name]) ? `['${args[name].join("', '")}']` : args[name]
      }`
    )
  }
  console.log("-------------------- end of arguments ---------------------")
  console.log(
    `> initializing torch distributed ... world size ${world}, master ${process.env.MASTER_ADDR}:${process.env.MASTER_PORT}`
  )
}

// ---- the tokenizer and the padded vocabulary (Megatron's _vocab_size_with_padding) -------------------
// len(tokenizer) of a HuggingFace tokenizer counts the added tokens: the highest id, plus one.
const tokenizerLength = () => {
  const type = args["tokenizer-type"]
  if (type !== "HuggingFaceTokenizer") die(`the test double reads HuggingFaceTokenizer only, not ${type}`, 1)
  const model = args["tokenizer-model"]
  if (model === undefined) die("--tokenizer-model is required with HuggingFaceTokenizer", 1)
  const file = model.endsWith(".json") ? model : path.join(model, "tokenizer.json")
  let json
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    die(`OSError: cannot load the tokenizer ${model} (the test double reads a local tokenizer.json): ${e.message}`, 1)
  }
  const ids = [...Object.values(json.model?.vocab ?? {}), ...(json.added_tokens ?? []).map((t) => t.id)]
  if (ids.length === 0) die(`${file} holds no vocabulary`, 1)
  return Math.max(...ids) + 1
}
const vocabLength = tokenizerLength()
const divisibleBy = int("make-vocab-size-divisible-by", 128)
const paddedVocab = Math.ceil(vocabLength / (divisibleBy * tp)) * divisibleBy * tp
if (rank === 0) {
  console.log(`> building ${args["tokenizer-type"]} tokenizer ...`)
  console.log(
    ` > padded vocab (size: ${vocabLength}) with ${paddedVocab - vocabLength} dummy tokens (new size: ${paddedVocab})`
  )
}

// ---- training ---------------------------------------------------------------------------------------
const sleep = (ms) => ms > 0 && Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
const sci = (x, digits = 6) => {
  const [mantissa, exponent] = x.toExponential(digits).toUpperCase().split("E")
  const e = Number(exponent)
  return `${mantissa}E${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`
}
const saveDir = args.save
const tracker = path.join(saveDir, "latest_checkpointed_iteration.txt")
const iterDir = (it) => path.join(saveDir, `iter_${String(it).padStart(7, "0")}`)
const readTracker = () => {
  try {
    return Number(fs.readFileSync(tracker, "utf8").trim())
  } catch {
    return 0
  }
}
const writeAtomically = (file, text) => {
  fs.writeFileSync(`${file}.tmp-${rank}`, text)
  fs.renameSync(`${file}.tmp-${rank}`, file)
}
const waitFor = (predicate, what) => {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > 120_000) die(`timed out waiting for ${what}`, 1)
    sleep(10)
  }
}

let start = 0
if (args.load !== undefined) {
  start = readTracker()
  if (start > 0 && rank === 0) {
    console.log(` loading checkpoint from ${args.load} at iteration ${start}`)
    console.log(` successfully loaded checkpoint from ${args.load} [ t 1/${tp}, p 1/${pp} ] at iteration ${start}`)
  }
}
if (rank === 0 && start === 0) console.log(" > building train, validation, and test datasets ...")

const loss = (it) => 2 + 9 * Math.exp((-3 * it) / trainIters)
const lrAt = (it) => {
  const maxLr = float("lr")
  const minLr = float("min-lr", 0)
  const warmup = float("lr-warmup-fraction", 0) * trainIters
  const decay = int("lr-wsd-decay-iters", 0)
  if (it - 1 < warmup) return (maxLr * (it - 1)) / warmup
  if (it - 1 < trainIters - decay) return maxLr
  const r = (it - 1 - (trainIters - decay)) / decay
  return minLr + (2 * 0.5 ** r - 1) * (maxLr - minLr)
}
// ---- checkpoints: real torch_dist ones, written by scripts/megatron/write_checkpoint.py -----------------
const writer = fileURLToPath(new URL("../../scripts/megatron/write_checkpoint.py", import.meta.url))
let python
const findPython = () => {
  if (process.env.PYTHON) return process.env.PYTHON
  for (const candidate of ["/usr/bin/python3", "python3"]) {
    if (spawnSync(candidate, ["-c", "import torch, numpy"], { stdio: "ignore" }).status === 0) return candidate
  }
  die(
    "no python3 with torch and numpy for the checkpoint writer (set PYTHON; Debian: apt-get install python3-torch)",
    1
  )
}
// Megatron stores its whole argument namespace in the checkpoint; the writer takes the model's shape
// from its own flags, everything else the run was given is stored as given.
const shapeFlags = new Set([
  "hidden-size",
  "num-layers",
  "num-attention-heads",
  "ffn-hidden-size",
  "moe-ffn-hidden-size",
  "num-experts",
  "moe-router-topk",
  "moe-shared-expert-intermediate-size",
  "moe-layer-freq",
  "seq-length",
  "rotary-base",
  "norm-epsilon",
  "expert-model-parallel-size",
  "data-path"
])
const storedArgs = (it) => {
  const stored = {}
  for (const [name, value] of Object.entries(args)) {
    if (!shapeFlags.has(name)) stored[name.replace(/-/g, "_")] = value === true ? "true" : String(value)
  }
  return {
    ...stored,
    // What Megatron derives from the arguments.
    tensor_model_parallel_size: String(tp),
    pipeline_model_parallel_size: String(pp),
    data_parallel_size: String(dp),
    sequence_parallel: String(args["sequence-parallel"] === true && tp > 1),
    make_vocab_size_divisible_by: String(divisibleBy),
    vocab_size: "none",
    max_position_embeddings: String(int("max-position-embeddings")),
    consumed_train_samples: String(it * gbs),
    load: args.load ?? "none"
  }
}
const writeCheckpoint = (it, out) => {
  if (args["num-experts"] === undefined) die("the test double writes MoE checkpoints only (no --num-experts)", 1)
  if (tp * pp !== 1) {
    die(`the test double writes checkpoints for tensor and pipeline parallel size 1, not ${tp} x ${pp}`, 1)
  }
  python ??= findPython()
  const moeFfn = int("moe-ffn-hidden-size")
  const command = [
    writer,
    "--random-init",
    "--out",
    out,
    "--iteration",
    String(it),
    "--format",
    "torch_dist",
    "--ep",
    String(ep),
    "--world",
    String(world),
    "--dtype",
    args.fp16 ? "fp32" : "bf16",
    // A different model at every save (a double's checkpoints do not improve, but they differ).
    "--seed",
    String(int("seed", 1234) * 1_000_003 + it),
    "--vocab-size",
    String(paddedVocab),
    "--hidden-size",
    String(hidden),
    "--num-layers",
    String(numLayers),
    "--num-attention-heads",
    String(heads),
    "--ffn-hidden-size",
    String(int("ffn-hidden-size", 4 * hidden)),
    "--moe-ffn-hidden-size",
    String(moeFfn),
    "--num-experts",
    String(int("num-experts")),
    "--topk",
    String(int("moe-router-topk", 2)),
    "--shared-expert-size",
    String(int("moe-shared-expert-intermediate-size", 0)),
    "--moe-layers",
    JSON.stringify(pattern),
    "--seq-length",
    String(seqLength),
    "--rope-base",
    String(float("rotary-base", 10000)),
    "--norm-eps",
    String(float("norm-epsilon", 1e-5)),
    ...Object.entries(storedArgs(it)).flatMap(([name, value]) => ["--override-arg", `${name}=${value}`])
  ]
  const run = spawnSync(python, command, { encoding: "utf8", maxBuffer: 64 << 20 })
  if (run.status !== 0) {
    console.error(run.stderr ?? "")
    console.error(
      `RuntimeError: the checkpoint writer failed (${python} ${path.basename(writer)}: ${
        run.error ? run.error.message : run.signal ? `signal ${run.signal}` : `exit ${run.status}`
      })`
    )
    process.exit(1)
  }
}
const save = (it) => {
  if (rank === 0) {
    console.log(` saving checkpoint at iteration ${String(it).padStart(7)} to ${saveDir} in torch_dist format`)
    // Rank 0 writes every rank's files into a directory of its own, then renames the iteration into
    // place: a killed save leaves no half-written iter_XXXXXXX behind the tracker's back.
    const prefix = ".fake-pretrain-tmp-"
    fs.mkdirSync(saveDir, { recursive: true })
    for (const f of fs.readdirSync(saveDir)) {
      if (f.startsWith(prefix)) fs.rmSync(path.join(saveDir, f), { recursive: true, force: true })
    }
    const tmp = path.join(saveDir, `${prefix}${process.pid}`)
    fs.mkdirSync(tmp)
    writeCheckpoint(it, tmp)
    // An iteration newer than the tracker is a partial save of an earlier attempt: overwritten.
    fs.rmSync(iterDir(it), { recursive: true, force: true })
    fs.renameSync(path.join(tmp, path.basename(iterDir(it))), iterDir(it))
    fs.rmSync(tmp, { recursive: true, force: true })
    writeAtomically(tracker, `${it}\n`)
    console.log(
      ` successfully saved checkpoint from iteration ${String(it).padStart(7)} to ${saveDir} [ t 1/${tp}, p 1/${pp} ]`
    )
  } else {
    waitFor(() => readTracker() >= it, `rank 0 to finish saving iteration ${it}`)
  }
}

const iterMs = Number(process.env.FAKE_PRETRAIN_ITER_MS ?? 0)
const failAt = Number(process.env.FAKE_PRETRAIN_FAIL_AT ?? -1)
const logInterval = int("log-interval", 100)
const evalInterval = args["eval-interval"] === undefined ? 0 : int("eval-interval")
const saveInterval = int("save-interval")
for (let it = start + 1; it <= trainIters; it++) {
  sleep(iterMs)
  if (it === failAt) {
    if (rank === 0) {
      console.error("Traceback (most recent call last):")
      console.error(`RuntimeError: fake failure at iteration ${it}`)
      process.exit(1)
    }
  }
  if (it % logInterval === 0 && lastRank) {
    const stamp = new Date().toISOString().replace("T", " ").slice(0, 19)
    console.log(
      ` [${stamp}] iteration ${String(it).padStart(8)}/${String(trainIters).padStart(8)} |` +
        ` consumed samples: ${String(it * gbs).padStart(12)} |` +
        ` elapsed time per iteration (ms): ${(iterMs || 1).toFixed(1)} |` +
        ` throughput per GPU (TFLOP/s/GPU): ${(1.5).toFixed(1)} |` +
        ` learning rate: ${sci(lrAt(it))} |` +
        ` global batch size: ${String(gbs).padStart(5)} |` +
        ` lm loss: ${sci(loss(it))} |` +
        ` load_balancing_loss: ${sci(float("moe-aux-loss-coeff", 0) * 1.02)} |` +
        ` z_loss: ${sci(float("moe-z-loss-coeff", 0) * 4.1)} |` +
        ` loss scale: 1.0 | grad norm: ${(1 / Math.sqrt(it)).toFixed(3)} |` +
        ` number of skipped iterations:   0 | number of nan iterations:   0 |`
    )
  }
  if (evalInterval > 0 && it % evalInterval === 0 && lastRank) {
    const line = ` validation loss at iteration ${it} | lm loss value: ${sci(loss(it) + 0.1)} | lm loss PPL: ${
      sci(Math.exp(loss(it) + 0.1))
    } | `
    console.log("-".repeat(line.length))
    console.log(line)
    console.log("-".repeat(line.length))
  }
  if (it % saveInterval === 0 || it === trainIters) save(it)
}
if (rank === 0) console.log("[after training is done] datetime: " + new Date().toISOString())
