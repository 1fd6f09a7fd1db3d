/**
 * Lineage records written by hand, as runs of a resolved pipeline would record them: one execution per
 * stage, consistent fingerprints, output hashes derived from a salt (equal salts, equal outputs).
 */
import type { InputEdge, PinRow, Records } from "../../../src/audit/Records.ts"
import { fingerprint } from "../../../src/engine/Fingerprint.ts"
import type { ArtifactRow, EnvironmentRow, ExecutionRow, RunRow } from "../../../src/lineage/Lineage.ts"
import type { ResolvedPipeline } from "../../../src/Pipeline.ts"
import { sha256Text } from "../../../src/store/ContentHasher.ts"
import { stageDir } from "../../../src/workspace/Workspace.ts"

export const environment: EnvironmentRow = {
  id: "env-1",
  gitCommit: "abc",
  gitDirty: false,
  nodeVersion: "v20.0.0",
  platform: "linux-x64",
  host: "h",
  compilers: { "g++": "g++ 12" },
  gpus: [],
  createdAt: 0
}

export class FakeLineage {
  readonly runs: Array<RunRow> = []
  readonly executions: Array<ExecutionRow> = []
  readonly artifacts: Array<ArtifactRow> = []
  readonly inputs: Array<InputEdge> = []
  readonly pins: Array<PinRow> = []
  private clock = 1_000

  constructor(readonly pipeline: ResolvedPipeline) {}

  tick(): number {
    return (this.clock += 10)
  }

  /**
   * A run of the pipeline. Stages in `execute` (default: all) record a new execution, the others are
   * reused from `reuse` (a previous run's executions, by stage id). `salt` changes output hashes;
   * `params` overrides a stage's recorded params.
   */
  run(options: {
    readonly id: string
    readonly status?: RunRow["status"]
    readonly overrides?: Record<string, string>
    readonly execute?: ReadonlyArray<string>
    readonly reuse?: ReadonlyMap<string, ExecutionRow>
    readonly salt?: string
    readonly params?: Readonly<Record<string, Record<string, unknown>>>
    readonly failAt?: string
  }): Map<string, ExecutionRow> {
    const startedAt = this.tick()
    const used = new Map<string, ExecutionRow>()
    for (const stage of this.pipeline.stages) {
      if (options.execute !== undefined && !options.execute.includes(stage.id) && options.reuse?.has(stage.id)) {
        used.set(stage.id, options.reuse.get(stage.id)!)
        continue
      }
      const inputHashes: Record<string, string> = {}
      const edges: Array<{ name: string; artifactId: string }> = []
      for (const [name, ref] of Object.entries(stage.inputs)) {
        const up = used.get(ref.stage)!
        const artifact = this.artifacts.find((a) => a.executionId === up.id && a.name === ref.output)!
        inputHashes[name] = artifact.hash
        edges.push({ name, artifactId: artifact.id })
      }
      const params = { ...stage.encodedParams, ...options.params?.[stage.id] }
      const fp = fingerprint({
        stageId: stage.id,
        version: stage.definition.version,
        params,
        inputs: inputHashes,
        workerHash: null,
        sources: {}
      })
      const id = `${options.id}:${stage.id}`
      const outputDir = `artifacts/${stageDir(stage.id)}/${fp.slice(0, 16)}`
      const failed = options.failAt === stage.id
      const execution: ExecutionRow = {
        id,
        runId: options.id,
        stageId: stage.id,
        fingerprint: fp,
        version: stage.definition.version,
        params,
        inputHashes,
        workerHash: null,
        sourceHashes: {},
        status: failed ? "failed" : "succeeded",
        startedAt: this.tick(),
        endedAt: this.tick(),
        durationMs: 10,
        exitCode: 0,
        host: "h",
        executor: "local",
        workerPid: null,
        workerIdentity: null,
        logPath: `logs/${id}.log`,
        outputDir,
        result: {},
        error: null,
        environmentId: environment.id,
        resumedFrom: null,
        seededFrom: null,
        seededStep: null
      }
      this.executions.push(execution)
      for (const edge of edges) this.inputs.push({ executionId: id, ...edge })
      if (failed) break
      for (const name of Object.keys(stage.outputs)) {
        this.artifacts.push({
          id: `${id}/${name}`,
          executionId: id,
          name,
          path: `${outputDir}/${name}`,
          kind: stage.outputs[name]!,
          hash: sha256Text(`${stage.id}/${name}/${options.salt ?? ""}/${JSON.stringify(inputHashes)}`),
          size: 100,
          createdAt: execution.endedAt!,
          collectedAt: null
        })
      }
      used.set(stage.id, execution)
    }
    this.runs.push({
      id: options.id,
      pipeline: this.pipeline.name,
      preset: this.pipeline.preset,
      overrides: options.overrides ?? {},
      argv: ["run", this.pipeline.name],
      executor: "local",
      host: "h",
      pid: 1,
      status: options.status ?? (options.failAt === undefined ? "succeeded" : "failed"),
      startedAt,
      endedAt: this.tick(),
      summary: null,
      pipelineSource: this.pipeline.name,
      config: {},
      gpus: [],
      executorSettings: { gpus: 0, jobs: 1, cpus: 1 }
    })
    return used
  }

  records(): Records {
    const group = <A>(rows: ReadonlyArray<A>, key: (a: A) => string) => {
      const out = new Map<string, Array<A>>()
      for (const row of rows) out.set(key(row), [...(out.get(key(row)) ?? []), row])
      return out
    }
    const executions = [...this.executions].sort((a, b) => b.startedAt - a.startedAt)
    return {
      runs: new Map(this.runs.map((r) => [r.id, r])),
      executions: new Map(executions.map((e) => [e.id, e])),
      executionsByStage: group(executions, (e) => e.stageId),
      executionsByRun: group(executions, (e) => e.runId),
      artifacts: new Map(this.artifacts.map((a) => [a.id, a])),
      artifactsByExecution: group(this.artifacts, (a) => a.executionId),
      inputsByExecution: group(this.inputs, (i) => i.executionId),
      consumersByArtifact: group(this.inputs, (i) => i.artifactId),
      environments: new Map([[environment.id, environment]]),
      pins: this.pins
    }
  }
}
