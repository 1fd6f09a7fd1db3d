/**
 * A pipeline of a few stages writing large files, for the stat-cache benchmark: once it has run,
 * `status` of the unchanged workspace must read none of those bytes.
 *
 * FLAME_BENCH_BIG_FILES stages (default 4) each write FLAME_BENCH_BIG_MB MiB (default 1024).
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import { StageFailed } from "../../src/domain/Errors.ts"
import * as Pipeline from "../../src/Pipeline.ts"
import { define, node } from "../../src/Stage.ts"

export const BIG_OUTPUT = "data.bin"
const CHUNK = 8 * 1024 * 1024

const envInt = (name: string, fallback: number): number => {
  const value = Number(process.env[name] ?? String(fallback))
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`)
  return value
}

export const bigFileCount = () => envInt("FLAME_BENCH_BIG_FILES", 4)
export const bigFileMb = () => envInt("FLAME_BENCH_BIG_MB", 1024)

export const big = define({
  kind: "bench/big",
  version: "1",
  params: Schema.Struct({ index: Schema.NonNegativeInt, mb: Schema.Int.pipe(Schema.positive()) }),
  outputs: () => ({ [BIG_OUTPUT]: "file" }),
  result: Schema.Struct({ bytes: Schema.Number }),
  run: (ctx) =>
    Effect.try({
      try: () => {
        // Pseudo-random bytes, so no layer below us can store the file cheaper than its size.
        const chunk = Buffer.allocUnsafe(CHUNK)
        let x = 0x9e3779b9 ^ ctx.params.index
        for (let i = 0; i < CHUNK; i += 4) {
          x ^= x << 13
          x ^= x >>> 17
          x ^= x << 5
          chunk.writeInt32LE(x | 0, i)
        }
        const fd = fs.openSync(ctx.output(BIG_OUTPUT), "w")
        const chunks = Math.ceil((ctx.params.mb * 1024 * 1024) / CHUNK)
        try {
          for (let i = 0; i < chunks; i++) {
            // Vary each chunk so no two chunks (or files) are identical.
            chunk.writeUInt32LE(i, 0)
            fs.writeSync(fd, chunk)
          }
        } finally {
          fs.closeSync(fd)
        }
        return { bytes: chunks * CHUNK }
      },
      catch: (cause) => new StageFailed({ stage: ctx.stageId, reason: String(cause) })
    })
})

export default Pipeline.define({
  name: "bigfiles",
  description: "a few stages writing GB-sized files, for the stat-cache benchmark",
  presets: { default: "FLAME_BENCH_BIG_FILES files of FLAME_BENCH_BIG_MB MiB (4 x 1024 when unset)" },
  defaultPreset: "default",
  build: () =>
    Array.from(
      { length: bigFileCount() },
      (_, index) => node(big, { id: `big/${index}`, params: { index, mb: bigFileMb() } })
    )
})
