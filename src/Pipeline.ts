/**
 * Pipelines are values: a name, presets, and a function from the chosen preset to stage nodes.
 * `resolve` turns that into a validated DAG with decoded params, before anything runs.
 */
import { Effect, Either, ParseResult, Schema } from "effect"
import picomatch from "picomatch"
import { ParamError, PipelineError } from "./domain/Errors.ts"
import type { AnyStageDefinition, ExecutorInfo, OutputKind, OutputRef, Resources, StageNode } from "./Stage.ts"
import { defaultResources } from "./Stage.ts"
import { fileNameProblem } from "./workspace/StagePaths.ts"

export interface BuildContext {
  readonly preset: string
  /** Pipeline-level settings from `--config key=value` (data paths and the like). */
  readonly config: Readonly<Record<string, string>>
  readonly executor: ExecutorInfo
}

export interface PipelineDefinition {
  readonly name: string
  readonly description: string
  readonly presets: Readonly<Record<string, string>>
  readonly defaultPreset: string
  /** Checks that must pass before anything runs (missing data paths, GPUs...); fail with a message saying what to set. */
  readonly preflight?: (ctx: BuildContext) => Effect.Effect<void, PipelineError>
  readonly build: (ctx: BuildContext) => ReadonlyArray<StageNode>
}

export const define = (definition: PipelineDefinition): PipelineDefinition => definition

export interface ResolvedStage {
  readonly id: string
  readonly definition: AnyStageDefinition
  /** Decoded params, as the body sees them. */
  readonly params: unknown
  /** Canonical encoded params, as fingerprinted and recorded. */
  readonly encodedParams: Readonly<Record<string, unknown>>
  readonly inputs: Readonly<Record<string, OutputRef>>
  readonly outputs: Readonly<Record<string, OutputKind>>
  readonly resources: Resources
  readonly workerPath: string | undefined
  readonly sourcePaths: ReadonlyArray<string>
  /** Ids of the stages this one consumes, without duplicates. */
  readonly upstream: ReadonlyArray<string>
}

export interface ResolvedPipeline {
  readonly name: string
  readonly preset: string
  /** Stages in a topological order: every stage after all of its upstreams. */
  readonly stages: ReadonlyArray<ResolvedStage>
  readonly byId: ReadonlyMap<string, ResolvedStage>
  readonly downstream: ReadonlyMap<string, ReadonlyArray<string>>
}

/** `--set stage.key=value`: the stage id is the longest known id followed by a dot. */
export interface Override {
  readonly stage: string
  readonly key: string
  readonly value: unknown
}

export const parseOverride = (
  pipeline: string,
  text: string,
  stageIds: ReadonlyArray<string>
): Either.Either<Override, PipelineError> => {
  const eq = text.indexOf("=")
  if (eq < 0) {
    return Either.left(new PipelineError({ pipeline, reason: `--set '${text}': expected stage.key=value` }))
  }
  const target = text.slice(0, eq)
  const raw = text.slice(eq + 1)
  let stage: string | undefined
  for (const id of stageIds) {
    if (target.startsWith(id + ".") && (stage === undefined || id.length > stage.length)) stage = id
  }
  if (stage === undefined) {
    const dot = target.lastIndexOf(".")
    const guess = dot > 0 ? target.slice(0, dot) : target
    return Either.left(
      new PipelineError({
        pipeline,
        reason: `--set '${text}': no stage '${guess}' (stages: ${summarizeIds(stageIds)})`
      })
    )
  }
  return Either.right({ stage, key: target.slice(stage.length + 1), value: parseValue(raw) })
}

/**
 * `--set` with a glob in the stage part (`train/*.backend=megatron`, `eval/**.backend=cpu`): picomatch's
 * globs, matched against whole stage ids. The stage part is the longest prefix of the target (cut at a
 * dot) that matches a stage, as for plain ids, which may contain dots themselves.
 */
export const parseOverrides = (
  pipeline: string,
  text: string,
  stageIds: ReadonlyArray<string>
): Either.Either<ReadonlyArray<Override>, PipelineError> => {
  const eq = text.indexOf("=")
  const target = eq < 0 ? text : text.slice(0, eq)
  if (!picomatch.scan(target).isGlob) return Either.map(parseOverride(pipeline, text, stageIds), (o) => [o])
  const raw = text.slice(eq + 1)
  for (let dot = target.lastIndexOf("."); dot > 0; dot = target.lastIndexOf(".", dot - 1)) {
    const matches = picomatch(target.slice(0, dot))
    const stages = stageIds.filter((id) => matches(id))
    if (stages.length > 0 && eq >= 0) {
      return Either.right(stages.map((stage) => ({ stage, key: target.slice(dot + 1), value: parseValue(raw) })))
    }
  }
  return Either.left(
    new PipelineError({
      pipeline,
      reason: eq < 0
        ? `--set '${text}': expected stage.key=value`
        : `--set '${text}': no stage matches (stages: ${summarizeIds(stageIds)})`
    })
  )
}

/** Values are JSON when they parse as JSON (numbers, booleans, arrays...), strings otherwise. */
const parseValue = (raw: string): unknown => {
  try {
    return JSON.parse(raw)
  } catch {
    return raw
  }
}

const summarizeIds = (ids: ReadonlyArray<string>): string =>
  ids.length <= 8 ? ids.join(", ") : `${ids.slice(0, 8).join(", ")}, ... (${ids.length} in all)`

const setPath = (target: Record<string, unknown>, path: ReadonlyArray<string>, value: unknown): void => {
  let cursor = target
  for (const segment of path.slice(0, -1)) {
    const next = cursor[segment]
    const child = typeof next === "object" && next !== null && !Array.isArray(next) ? { ...next } : {}
    cursor[segment] = child
    cursor = child as Record<string, unknown>
  }
  cursor[path[path.length - 1]!] = value
}

/** Decoders are compiled once per params schema: a generated pipeline may place one definition 100k times. */
const codecs = new WeakMap<
  object,
  {
    decode: (u: unknown) => Either.Either<unknown, ParseResult.ParseError>
    encode: (a: unknown) => Either.Either<unknown, ParseResult.ParseError>
  }
>()
const codecOf = (schema: Schema.Schema<unknown, unknown>) => {
  let codec = codecs.get(schema)
  if (codec === undefined) {
    codec = {
      decode: Schema.decodeUnknownEither(schema, { onExcessProperty: "error", errors: "all" }),
      encode: Schema.encodeEither(schema)
    }
    codecs.set(schema, codec)
  }
  return codec
}

const decodeParams = (node: StageNode, params: Record<string, unknown>, executor: ExecutorInfo): Either.Either<
  { decoded: unknown; encoded: Record<string, unknown> },
  ParamError
> => {
  const schema = node.definition.params
  const decoded = codecOf(schema).decode(params)
  if (Either.isLeft(decoded)) {
    // An optional key is a union with `undefined`, whose own "Expected undefined" adds nothing to the
    // real problem. The first problem names the key; any others follow with theirs.
    const all = ParseResult.ArrayFormatter.formatErrorSync(decoded.left)
    const relevant = all.filter((i) => !i.message.startsWith("Expected undefined, actual"))
    const [first, ...others] = relevant.length > 0 ? relevant : all
    const key = first && first.path.length > 0 ? first.path.join(".") : "(params)"
    const reason = [
      first?.message ?? "invalid",
      ...others.map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    ].join("; ")
    return Either.left(new ParamError({ stage: node.id, key, reason }))
  }
  const settled = node.definition.settle ? node.definition.settle(decoded.right, executor) : decoded.right
  const encoded = codecOf(schema).encode(settled)
  if (Either.isLeft(encoded)) {
    return Either.left(new ParamError({ stage: node.id, key: "(params)", reason: String(encoded.left) }))
  }
  return Either.right({ decoded: settled, encoded: encoded.right as Record<string, unknown> })
}

/**
 * A pipeline's `build` threw. Errors that already say what is wrong pass through; anything else
 * becomes one line naming the pipeline, what was wrong and, from the stack, where in which module
 * (the command line never shows a stack).
 */
const buildFailure = (pipeline: string, cause: unknown): PipelineError | ParamError => {
  if (cause instanceof PipelineError || cause instanceof ParamError) return cause
  const message = cause instanceof Error ? cause.message : String(cause)
  const where = cause instanceof Error ? userFrame(cause.stack) : undefined
  return new PipelineError({
    pipeline,
    reason: `building the stage graph failed: ${message}${where === undefined ? "" : ` (at ${where})`}`
  })
}

/** The first stack frame in a module of the project or the user's, as `file:line:column`. */
const userFrame = (stack: string | undefined): string | undefined => {
  for (const line of (stack ?? "").split("\n").slice(1)) {
    const frame = /\(?((?:file:\/\/)?\/[^():]+):(\d+):(\d+)\)?\s*$/.exec(line.trim())
    if (frame === null) continue
    const file = frame[1]!.replace(/^file:\/\//, "")
    if (/[/\\]node_modules[/\\]|[/\\]dist[/\\]flame-pipe/.test(file)) continue
    return `${file}:${frame[2]}:${frame[3]}`
  }
  return undefined
}

/** Builds, overrides, decodes and validates: duplicate ids, unknown inputs, cycles and bad params all fail here. */
export const resolve = (
  pipeline: PipelineDefinition,
  options: {
    readonly preset?: string | undefined
    readonly overrides?: ReadonlyArray<string>
    readonly config?: Readonly<Record<string, string>>
    readonly executor?: ExecutorInfo
  }
): Effect.Effect<ResolvedPipeline, PipelineError | ParamError> =>
  Effect.gen(function*() {
    const preset = options.preset ?? pipeline.defaultPreset
    if (!(preset in pipeline.presets)) {
      return yield* new PipelineError({
        pipeline: pipeline.name,
        reason: `unknown preset '${preset}' (presets: ${Object.keys(pipeline.presets).join(", ")})`
      })
    }
    const ctx: BuildContext = { preset, config: options.config ?? {}, executor: options.executor ?? { gpus: 0 } }
    if (pipeline.preflight) yield* pipeline.preflight(ctx)
    const nodes = yield* Effect.try({
      try: () => pipeline.build(ctx),
      catch: (cause) => buildFailure(pipeline.name, cause)
    })
    // A module's build is only typed for TypeScript callers; a plain .mjs may return anything.
    const built: unknown = nodes
    if (
      !Array.isArray(built) ||
      built.some((n: { id?: unknown; definition?: unknown } | null) =>
        typeof n?.id !== "string" || typeof n.definition !== "object"
      )
    ) {
      return yield* new PipelineError({
        pipeline: pipeline.name,
        reason: "build must return an array of stage nodes (made with node(stage, { id, ... }))"
      })
    }
    const nodeById = new Map<string, StageNode>()
    for (const node of nodes) {
      if (nodeById.has(node.id)) {
        return yield* new PipelineError({ pipeline: pipeline.name, reason: `duplicate stage id '${node.id}'` })
      }
      nodeById.set(node.id, node)
    }

    const paramsById = new Map<string, Record<string, unknown>>()
    for (const node of nodes) paramsById.set(node.id, { ...node.params })
    const ids = nodes.map((n) => n.id)
    for (const text of options.overrides ?? []) {
      for (const override of yield* parseOverrides(pipeline.name, text, ids)) {
        setPath(paramsById.get(override.stage)!, override.key.split("."), override.value)
      }
    }

    const resolved = new Map<string, ResolvedStage>()
    for (const node of nodes) {
      // Plain Either checks, not `yield*` per stage: generated pipelines place a definition 100k times.
      const params = decodeParams(node, paramsById.get(node.id)!, ctx.executor)
      if (Either.isLeft(params)) return yield* params.left
      const { decoded, encoded } = params.right
      const outputs = node.definition.outputs(decoded)
      // Outputs are files in the stage's directory: a name that is not a plain file name would place one elsewhere.
      for (const name of Object.keys(outputs)) {
        const problem = fileNameProblem(name)
        if (problem !== undefined) {
          return yield* new PipelineError({ pipeline: pipeline.name, reason: `stage '${node.id}' output ${problem}` })
        }
      }
      const upstream: Array<string> = []
      for (const [name, input] of Object.entries(node.inputs)) {
        const producer = nodeById.get(input.stage)
        if (producer === undefined) {
          return yield* new PipelineError({
            pipeline: pipeline.name,
            reason: `stage '${node.id}' input '${name}' refers to unknown stage '${input.stage}'`
          })
        }
        if (!upstream.includes(input.stage)) upstream.push(input.stage)
      }
      resolved.set(node.id, {
        id: node.id,
        definition: node.definition,
        params: decoded,
        encodedParams: encoded,
        inputs: node.inputs,
        outputs,
        resources: { ...defaultResources, ...node.definition.resources?.(decoded) },
        workerPath: node.definition.worker?.(decoded),
        sourcePaths: node.definition.sources?.(decoded) ?? [],
        upstream
      })
    }
    // Outputs are known only after decoding, so references to output names are checked in a second pass.
    for (const stage of resolved.values()) {
      for (const [name, input] of Object.entries(stage.inputs)) {
        const producer = resolved.get(input.stage)!
        if (!(input.output in producer.outputs)) {
          return yield* new PipelineError({
            pipeline: pipeline.name,
            reason: `stage '${stage.id}' input '${name}' refers to '${input.stage}:${input.output}', ` +
              `but '${input.stage}' declares outputs: ${Object.keys(producer.outputs).join(", ") || "(none)"}`
          })
        }
      }
    }
    const ordered = yield* topologicalOrder(pipeline.name, ids, resolved)
    const downstream = new Map<string, Array<string>>()
    for (const stage of ordered) {
      for (const up of stage.upstream) {
        const list = downstream.get(up)
        if (list) list.push(stage.id)
        else downstream.set(up, [stage.id])
      }
    }
    return { name: pipeline.name, preset, stages: ordered, byId: resolved, downstream }
  })

/** Kahn's algorithm, keeping declaration order among ready stages; a leftover means a cycle, which we name. */
const topologicalOrder = (
  pipeline: string,
  ids: ReadonlyArray<string>,
  stages: ReadonlyMap<string, ResolvedStage>
): Effect.Effect<ReadonlyArray<ResolvedStage>, PipelineError> => {
  const indegree = new Map<string, number>()
  const dependents = new Map<string, Array<string>>()
  for (const id of ids) {
    const stage = stages.get(id)!
    indegree.set(id, stage.upstream.length)
    for (const up of stage.upstream) {
      const list = dependents.get(up)
      if (list) list.push(id)
      else dependents.set(up, [id])
    }
  }
  const queue = ids.filter((id) => indegree.get(id) === 0)
  const order: Array<ResolvedStage> = []
  for (let head = 0; head < queue.length; head++) {
    const id = queue[head]!
    order.push(stages.get(id)!)
    for (const next of dependents.get(id) ?? []) {
      const left = indegree.get(next)! - 1
      indegree.set(next, left)
      if (left === 0) queue.push(next)
    }
  }
  if (order.length === ids.length) return Effect.succeed(order)
  const cycle = findCycle(ids.filter((id) => indegree.get(id)! > 0), stages)
  return Effect.fail(new PipelineError({ pipeline, reason: `cycle between stages: ${cycle.join(" -> ")}` }))
}

const findCycle = (remaining: ReadonlyArray<string>, stages: ReadonlyMap<string, ResolvedStage>): Array<string> => {
  const inCycleSet = new Set(remaining)
  // Walk upstream edges from any remaining stage: every one has an upstream among the remaining, so we must revisit.
  const seen = new Map<string, number>()
  const path: Array<string> = []
  let current = remaining[0]!
  while (!seen.has(current)) {
    seen.set(current, path.length)
    path.push(current)
    current = stages.get(current)!.upstream.find((up) => inCycleSet.has(up))!
  }
  return [...path.slice(seen.get(current)!), current].reverse()
}
