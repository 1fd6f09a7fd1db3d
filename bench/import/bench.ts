// Megatron checkpoint import: throughput against the disk's read speed, and peak memory against the
// largest tensor, on a synthetic checkpoint of flame-moe-290m's shape (1.3B parameters, ~2.6 GB of
// bf16 in torch_dist, EP 8 over 32 ranks, as FLAME-MoE saved it).
//
//   npx tsx bench/import/bench.ts [--keep] [--no-drop-caches]
//
// One run, same files, page cache dropped before each side (root only; else all read warm):
//   disk read: `cat` of every checkpoint file to /dev/null (the disk's sequential read speed);
//   peer:      `cp` of the checkpoint and `sync`: the same bytes read and written as an import
//              (bf16 weights stay bf16), the fair floor for a converter on this disk;
//   ours:      src/megatron/import in its own process (bench/import/importOnce.ts), reading the
//              same files and writing the worker's model.safetensors (fsynced); peak RSS from getrusage.
// The checkpoint is generated once into bench/out/ with scripts/megatron/write_checkpoint.py.
import { execFileSync, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const out = path.join(root, "bench", "out")
const ckpt = path.join(out, "ckpt-290m")
const iter = path.join(ckpt, "iter_0005473")
const imported = path.join(out, "imported-290m")
const dropCaches = !process.argv.includes("--no-drop-caches")

const shape = {
  vocab: 50304,
  hidden: 1024,
  layers: 9,
  ffn: 5472,
  moeFfn: 704,
  experts: 64,
  shared: 1408
}

if (!fs.existsSync(path.join(iter, ".metadata"))) {
  console.log("generating a flame-moe-290m-shaped checkpoint (once) ...")
  execFileSync("/usr/bin/python3", [
    path.join(root, "scripts", "megatron", "write_checkpoint.py"),
    "--random-init",
    ...["--seed", "1", "--vocab-size", String(shape.vocab), "--hidden-size", String(shape.hidden)],
    ...["--num-layers", String(shape.layers), "--num-attention-heads", "16", "--ffn-hidden-size", String(shape.ffn)],
    ...["--moe-ffn-hidden-size", String(shape.moeFfn), "--num-experts", String(shape.experts), "--topk", "6"],
    ...["--shared-expert-size", String(shape.shared), "--moe-layers", "[0]*1+[1]*8", "--seq-length", "2048"],
    ...["--out", ckpt, "--iteration", "5473", "--format", "torch_dist", "--ep", "8", "--world", "32"],
    ...["--dtype", "bf16"]
  ], { stdio: "inherit" })
}

const files = fs.readdirSync(iter).map((f) => path.join(iter, f)).filter((f) => fs.statSync(f).isFile())
const inputBytes = files.reduce((n, f) => n + fs.statSync(f).size, 0)

const drop = () => {
  if (!dropCaches) return
  try {
    execFileSync("sync")
    fs.writeFileSync("/proc/sys/vm/drop_caches", "3")
  } catch {
    console.log("(cannot drop the page cache here: both sides read warm)")
  }
}

drop()
let t0 = process.hrtime.bigint()
execFileSync("cat", files, { stdio: ["ignore", fs.openSync("/dev/null", "w"), "inherit"], maxBuffer: 0 })
const catSeconds = Number(process.hrtime.bigint() - t0) / 1e9

const copied = path.join(out, "copied-290m")
fs.rmSync(copied, { recursive: true, force: true })
drop()
t0 = process.hrtime.bigint()
execFileSync("cp", ["-r", iter, copied])
execFileSync("sync")
const cpSeconds = Number(process.hrtime.bigint() - t0) / 1e9
fs.rmSync(copied, { recursive: true, force: true })

fs.rmSync(imported, { recursive: true, force: true })
drop()
t0 = process.hrtime.bigint()
const run = spawnSync(
  process.execPath,
  ["--import", "tsx", path.join(root, "bench", "import", "importOnce.ts"), iter, imported],
  { cwd: root, encoding: "utf8" }
)
const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9
if (run.status !== 0) {
  console.error(run.stderr)
  process.exit(1)
}
const ours = JSON.parse(run.stdout.trim().split("\n").pop()!) as {
  seconds: number
  maxRssBytes: number
  bytesWritten: number
  parameters: number
}

const mb = (b: number) => (b / 1e6).toFixed(0)
const h = shape.hidden
// The largest tensors: the routed experts' fc1 of one layer as the worker holds it (float32), and
// the largest global tensor in the checkpoint (bf16).
const largestWorker = shape.experts * 2 * shape.moeFfn * h * 4
const largestStored = Math.max(shape.experts * 2 * shape.moeFfn * h, shape.vocab * h) * 2

console.log(`checkpoint: ${files.length} files, ${mb(inputBytes)} MB (bf16), ${ours.parameters} parameters`)
console.log(`disk read (cat):       ${catSeconds.toFixed(2)} s  ${mb(inputBytes / catSeconds)} MB/s`)
console.log(`peer  cp + sync:       ${cpSeconds.toFixed(2)} s  (${mb(inputBytes)} MB read and written)`)
console.log(
  `ours  import:          ${ours.seconds.toFixed(2)} s  ${mb(inputBytes / ours.seconds)} MB/s read, ` +
    `${mb(ours.bytesWritten)} MB model.safetensors written (fsynced); ${wallSeconds.toFixed(2)} s with process start`
)
console.log(`ratio ours / disk read: ${(catSeconds / ours.seconds).toFixed(2)} of its speed`)
console.log(`ratio ours / cp + sync: ${(cpSeconds / ours.seconds).toFixed(2)} of its speed`)
console.log(
  `peak RSS ${mb(ours.maxRssBytes)} MB = ${
    (ours.maxRssBytes / largestWorker).toFixed(2)
  } x the largest worker tensor ` +
    `(${mb(largestWorker)} MB f32), ${(ours.maxRssBytes / largestStored).toFixed(2)} x the largest stored tensor ` +
    `(${mb(largestStored)} MB bf16)`
)
if (!process.argv.includes("--keep")) fs.rmSync(imported, { recursive: true, force: true })
