/**
 * Slurm settings come from the pipeline config: `--config slurm=cluster.json` (a file with the
 * fields of SlurmSettings) and `--config slurm.<key>=value` entries, which win over the file.
 * Per-stage settings are `--config slurm.stage.<glob>.<key>=value` (the glob matches stage ids;
 * the key is what follows the last dot), or entries of the file's `stages` list.
 */
import { Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import type { SlurmStageRule } from "../domain/Slurm.ts"
import { controlCharacterProblem, SlurmSettings } from "../domain/Slurm.ts"
import { globMatches } from "../glob.ts"
import { SlurmSettingsError } from "./errors.ts"

const numericKeys = new Set(["submitRate", "submitBurst", "poll", "arrayMax", "maxResubmits", "cancelTimeout"])
const booleanKeys = new Set(["arrays", "array"])
const listKeys = new Set(["sbatch"])
const topKeys = new Set([
  "partition",
  "account",
  "qos",
  "time",
  "sbatch",
  "node",
  "gpusPerNode",
  ...numericKeys,
  ...booleanKeys
])
const stageKeys = new Set(["partition", "account", "qos", "time", "sbatch", "array"])

/** Splits flags as a shell would for simple words and quotes: `--constraint="a b" --exclusive`. */
export const splitFlags = (text: string): Array<string> => {
  const words: Array<string> = []
  let current = ""
  let quote: string | null = null
  let inWord = false
  for (const c of text) {
    if (quote !== null) {
      if (c === quote) quote = null
      else current += c
    } else if (c === "'" || c === "\"") {
      quote = c
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(current)
      current = ""
      inWord = false
    } else {
      current += c
      inWord = true
    }
  }
  if (inWord) words.push(current)
  return words
}

const convert = (key: string, raw: string): unknown => {
  if (listKeys.has(key)) return splitFlags(raw)
  if (booleanKeys.has(key)) return raw === "true" ? true : raw === "false" ? false : raw
  if (numericKeys.has(key) || (key === "gpusPerNode" && raw !== "auto")) {
    const n = Number(raw)
    return raw.trim() !== "" && Number.isFinite(n) ? n : raw
  }
  return raw
}

const decode = Schema.decodeUnknownEither(SlurmSettings, { onExcessProperty: "error", errors: "all" })

const firstIssue = (error: ParseResult.ParseError): { key: string; reason: string } => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  return {
    key: issue && issue.path.length > 0 ? issue.path.join(".") : "(settings)",
    reason: issue?.message ?? String(error)
  }
}

/** Reads the settings file named by `--config slurm=FILE`. */
const readFile = (file: string): Either.Either<Record<string, unknown>, SlurmSettingsError> => {
  try {
    const value: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return Either.left(new SlurmSettingsError({ source: file, key: "(file)", reason: "expected a JSON object" }))
    }
    return Either.right(value as Record<string, unknown>)
  } catch (error) {
    return Either.left(
      new SlurmSettingsError({
        source: file,
        key: "(file)",
        reason: error instanceof Error ? error.message : String(error)
      })
    )
  }
}

/** The Slurm settings of a pipeline config; every key starting with `slurm` is ours. */
export const slurmSettingsFromConfig = (
  config: Readonly<Record<string, string>>
): Either.Either<SlurmSettings, SlurmSettingsError> => {
  const file = config["slurm"] ?? config["slurm.file"]
  let base: Record<string, unknown> = {}
  if (file !== undefined) {
    const read = readFile(file)
    if (Either.isLeft(read)) return Either.left(read.left)
    base = read.right
    const checked = decode(base)
    if (Either.isLeft(checked)) {
      return Either.left(new SlurmSettingsError({ source: file, ...firstIssue(checked.left) }))
    }
  }
  const settings: Record<string, unknown> = { ...base }
  const fileRules = Array.isArray(base.stages) ? base.stages as Array<unknown> : []
  const rules: Array<Record<string, unknown>> = []
  /** Which --config entry set a setting (`partition`, `stages.3.time`), so an error can name it. */
  const sources = new Map<string, string>()
  for (const [entry, raw] of Object.entries(config)) {
    if (!entry.startsWith("slurm.") || entry === "slurm.file") continue
    // Checked before anything splits the value: a newline in `slurm.sbatch` would otherwise pass as a word break.
    const control = controlCharacterProblem(raw)
    if (control !== undefined) {
      return Either.left(new SlurmSettingsError({ source: `--config ${entry}`, key: "", reason: control }))
    }
    const key = entry.slice("slurm.".length)
    if (key.startsWith("stage.")) {
      const rest = key.slice("stage.".length)
      const dot = rest.lastIndexOf(".")
      const match = dot > 0 ? rest.slice(0, dot) : ""
      const field = rest.slice(dot + 1)
      if (match === "" || !stageKeys.has(field)) {
        return Either.left(
          new SlurmSettingsError({
            source: `--config ${entry}`,
            key: "",
            reason: `expected slurm.stage.<stage glob>.<${[...stageKeys].join("|")}>`
          })
        )
      }
      let rule = rules.find((r) => r.match === match)
      if (rule === undefined) {
        rule = { match }
        rules.push(rule)
      }
      rule[field] = convert(field, raw)
      sources.set(`stages.${fileRules.length + rules.indexOf(rule)}.${field}`, entry)
      continue
    }
    if (!topKeys.has(key)) {
      return Either.left(
        new SlurmSettingsError({
          source: `--config ${entry}`,
          key: "",
          reason: `unknown setting (known: ${[...topKeys].join(", ")}, stage.<glob>.<key>)`
        })
      )
    }
    settings[key] = convert(key, raw)
    sources.set(key, entry)
  }
  if (rules.length > 0) settings.stages = [...fileRules, ...rules]
  const decoded = decode(settings)
  if (Either.isLeft(decoded)) {
    const { key, reason } = firstIssue(decoded.left)
    // The setting an entry sets: `partition`, or `stages.3.time`; the issue may lie deeper (`sbatch.1`).
    const setting = key.split(".").slice(0, key.startsWith("stages.") ? 3 : 1).join(".")
    const entry = sources.get(setting)
    if (entry === undefined) {
      return Either.left(new SlurmSettingsError({ source: file ?? "--config", key, reason }))
    }
    const inner = key.startsWith("stages.") ? key.split(".").slice(2).join(".") : key
    return Either.left(
      new SlurmSettingsError({
        source: `--config ${entry}`,
        key: inner === setting.split(".").pop() ? "" : inner,
        reason
      })
    )
  }
  return Either.right(decoded.right)
}

/** `*` matches any run of characters (including '/'); everything else literally. */
export { globMatches }

/** What applies to one stage: the global settings with every matching rule laid over them, in order. */
export interface StageSlurmSettings {
  readonly partition: string | undefined
  readonly account: string | undefined
  readonly qos: string | undefined
  readonly time: string | undefined
  readonly sbatch: ReadonlyArray<string>
  readonly array: boolean
}

export const settingsForStage = (settings: SlurmSettings, stageId: string): StageSlurmSettings => {
  let out: StageSlurmSettings = {
    partition: settings.partition,
    account: settings.account,
    qos: settings.qos,
    time: settings.time,
    sbatch: settings.sbatch,
    array: settings.arrays
  }
  for (const rule of settings.stages as ReadonlyArray<SlurmStageRule>) {
    if (!globMatches(rule.match, stageId)) continue
    out = {
      partition: rule.partition ?? out.partition,
      account: rule.account ?? out.account,
      qos: rule.qos ?? out.qos,
      time: rule.time ?? out.time,
      sbatch: [...out.sbatch, ...(rule.sbatch ?? [])],
      array: settings.arrays && (rule.array ?? out.array)
    }
  }
  return out
}
