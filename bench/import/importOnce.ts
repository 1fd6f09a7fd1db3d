// One import of a Megatron checkpoint, run as its own process by bench/import/bench.ts so that its
// peak RSS (getrusage's maxrss of this process) is the importer's alone.
//   npx tsx bench/import/importOnce.ts ITER_DIR OUT_DIR
import { importMegatronCheckpoint } from "../../src/megatron/import/importCheckpoint.ts"

const [dir, out] = process.argv.slice(2)
if (dir === undefined || out === undefined) {
  console.error("usage: importOnce.ts ITER_DIR OUT_DIR")
  process.exit(2)
}
const t0 = process.hrtime.bigint()
const result = await importMegatronCheckpoint(dir, { outputDir: out, fingerprint: "bench" })
const seconds = Number(process.hrtime.bigint() - t0) / 1e9
console.log(
  JSON.stringify({ seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, ...result, model: undefined })
)
