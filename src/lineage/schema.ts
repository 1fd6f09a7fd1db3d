/**
 * The lineage database: what ran, from what, producing what. drizzle-kit generates the
 * migrations in `drizzle/` from this file; the engine applies them at start-up.
 */
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core"

/** One invocation of `flame-pipe run`. */
export const runs = sqliteTable("runs", {
  id: text("id").primaryKey(),
  pipeline: text("pipeline").notNull(),
  preset: text("preset"),
  overrides: text("overrides", { mode: "json" }).$type<Record<string, unknown>>().notNull(),
  argv: text("argv", { mode: "json" }).$type<ReadonlyArray<string>>().notNull(),
  executor: text("executor").notNull(),
  host: text("host").notNull(),
  pid: integer("pid").notNull(),
  status: text("status", { enum: ["running", "succeeded", "failed", "interrupted"] }).notNull(),
  startedAt: integer("started_at").notNull(),
  endedAt: integer("ended_at"),
  summary: text("summary", { mode: "json" }).$type<Record<string, unknown>>(),
  /**
   * The pipeline as `run` was given it (a registered name, or the absolute path of its module), the
   * run's `--config` settings, `--gpus` ids and executor settings: what an audit needs to resolve the
   * pipeline as the run did. Null for runs recorded before these columns existed: their argv says.
   */
  pipelineSource: text("pipeline_source"),
  config: text("config", { mode: "json" }).$type<Readonly<Record<string, string>>>(),
  gpus: text("gpus", { mode: "json" }).$type<ReadonlyArray<string>>(),
  executorSettings: text("executor_settings", { mode: "json" }).$type<RunExecutorSettings>()
}, (t) => [index("runs_pipeline_idx").on(t.pipeline, t.startedAt)])

/** How the executor of a run was set up: what its stages settled against and how many ran at once. */
export interface RunExecutorSettings {
  /** GPUs the stages settled their params against (GPUs per node under Slurm). */
  readonly gpus: number
  readonly jobs: number
  readonly cpus: number
}

/** The machine and toolchain an execution ran on; shared by identical snapshots. */
export const environments = sqliteTable("environments", {
  id: text("id").primaryKey(),
  gitCommit: text("git_commit"),
  gitDirty: integer("git_dirty", { mode: "boolean" }),
  nodeVersion: text("node_version").notNull(),
  platform: text("platform").notNull(),
  host: text("host").notNull(),
  compilers: text("compilers", { mode: "json" }).$type<Record<string, string>>().notNull(),
  gpus: text("gpus", { mode: "json" }).$type<ReadonlyArray<{ name: string; driver: string }>>().notNull(),
  createdAt: integer("created_at").notNull()
})

/** One attempt at one stage. Cached stages record no execution: the run reuses an old one. */
export const executions = sqliteTable("executions", {
  id: text("id").primaryKey(),
  runId: text("run_id").notNull().references(() => runs.id),
  stageId: text("stage_id").notNull(),
  fingerprint: text("fingerprint").notNull(),
  version: text("version").notNull(),
  params: text("params", { mode: "json" }).$type<unknown>().notNull(),
  inputHashes: text("input_hashes", { mode: "json" }).$type<Record<string, string>>().notNull(),
  workerHash: text("worker_hash"),
  /** Content hashes of files outside the workspace the stage reads (corpus shards, kernel sources). */
  sourceHashes: text("source_hashes", { mode: "json" }).$type<Record<string, string>>().notNull().default({}),
  status: text("status", { enum: ["running", "succeeded", "failed", "interrupted"] }).notNull(),
  startedAt: integer("started_at").notNull(),
  endedAt: integer("ended_at"),
  durationMs: integer("duration_ms"),
  exitCode: integer("exit_code"),
  host: text("host").notNull(),
  executor: text("executor").notNull(),
  workerPid: integer("worker_pid"),
  /**
   * Who `worker_pid` was: "<boot id>:<start time in clock ticks>" from /proc, so that a later run
   * signals the process group only while that pid still is the process this execution started.
   */
  workerIdentity: text("worker_identity"),
  logPath: text("log_path").notNull(),
  outputDir: text("output_dir").notNull(),
  result: text("result", { mode: "json" }).$type<unknown>(),
  error: text("error", { mode: "json" }).$type<unknown>(),
  environmentId: text("environment_id").references(() => environments.id),
  resumedFrom: text("resumed_from"),
  /**
   * The checkpoint (an artifact of another execution) this execution continued from instead of step 0,
   * and its step: a stage whose states share a prefix with a recorded one trains only the rest.
   */
  seededFrom: text("seeded_from"),
  seededStep: integer("seeded_step")
}, (t) => [
  index("executions_fingerprint_idx").on(t.fingerprint, t.status),
  index("executions_stage_idx").on(t.stageId, t.startedAt),
  index("executions_run_idx").on(t.runId)
])

/** A file or directory produced by an execution, identified by its content hash. */
export const artifacts = sqliteTable("artifacts", {
  id: text("id").primaryKey(),
  executionId: text("execution_id").notNull().references(() => executions.id),
  name: text("name").notNull(),
  path: text("path").notNull(),
  kind: text("kind", { enum: ["file", "dir"] }).notNull(),
  hash: text("hash").notNull(),
  size: integer("size").notNull(),
  createdAt: integer("created_at").notNull(),
  collectedAt: integer("collected_at")
}, (t) => [
  uniqueIndex("artifacts_execution_name_idx").on(t.executionId, t.name),
  index("artifacts_hash_idx").on(t.hash),
  index("artifacts_path_idx").on(t.path)
])

/**
 * For an artifact that is one state along a long computation (a training checkpoint): the fingerprint
 * of exactly what determined it (its prefix), and the family of computations it belongs to (all but
 * the schedule). A stale stage whose own prefix at some step equals a recorded one starts from there.
 */
export const checkpointPrefixes = sqliteTable("checkpoint_prefixes", {
  artifactId: text("artifact_id").primaryKey().references(() => artifacts.id),
  family: text("family").notNull(),
  step: integer("step").notNull(),
  prefix: text("prefix").notNull()
}, (t) => [index("checkpoint_prefixes_family_idx").on(t.family, t.step)])

/** artifact -> execution: what each execution consumed (its outputs are `artifacts.execution_id`). */
export const executionInputs = sqliteTable("execution_inputs", {
  executionId: text("execution_id").notNull().references(() => executions.id),
  name: text("name").notNull(),
  artifactId: text("artifact_id").notNull().references(() => artifacts.id)
}, (t) => [
  primaryKey({ columns: [t.executionId, t.name] }),
  index("execution_inputs_artifact_idx").on(t.artifactId)
])

/** Scalars streamed by workers: loss curves, learning rate, expert load... */
export const metrics = sqliteTable("metrics", {
  executionId: text("execution_id").notNull().references(() => executions.id),
  name: text("name").notNull(),
  step: integer("step").notNull(),
  value: real("value")
}, (t) => [uniqueIndex("metrics_execution_name_step_idx").on(t.executionId, t.name, t.step)])

/** Stat cache: (device, inode, size, mtime) -> content hash, so unchanged files are never re-read. */
export const fileStats = sqliteTable("file_stats", {
  path: text("path").primaryKey(),
  dev: text("dev").notNull(),
  ino: text("ino").notNull(),
  size: integer("size").notNull(),
  mtimeNs: text("mtime_ns").notNull(),
  hash: text("hash").notNull()
})

/**
 * Slurm batch jobs behind an execution run by the Slurm executor. A job that Slurm requeues keeps its
 * id (restarts counts the requeues); one the engine resubmits after a preemption gets a new row.
 */
export const slurmJobs = sqliteTable("slurm_jobs", {
  executionId: text("execution_id").notNull().references(() => executions.id),
  /** "1234", or "1234_5" for task 5 of an array job. */
  jobId: text("job_id").notNull(),
  /** 1 for the first submission of the execution, 2 for its first resubmission... */
  submission: integer("submission").notNull(),
  /** Workspace-relative batch script. */
  script: text("script").notNull(),
  partition: text("partition"),
  /** Slurm's job state: PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL... */
  state: text("state").notNull(),
  reason: text("reason"),
  nodeList: text("node_list"),
  exitCode: integer("exit_code"),
  signal: integer("signal"),
  restarts: integer("restarts").notNull().default(0),
  submittedAt: integer("submitted_at").notNull(),
  startedAt: integer("started_at"),
  endedAt: integer("ended_at")
}, (t) => [
  primaryKey({ columns: [t.executionId, t.jobId] }),
  index("slurm_jobs_job_idx").on(t.jobId),
  index("slurm_jobs_state_idx").on(t.state)
])

/**
 * What `flame-pipe pin` protects from garbage collection: one execution (all of its outputs) or one
 * artifact; either way, what they were derived from is kept too.
 */
export const pins = sqliteTable("pins", {
  id: text("id").primaryKey(),
  executionId: text("execution_id").references(() => executions.id),
  artifactId: text("artifact_id").references(() => artifacts.id),
  /** The target as the user named it (stage id, execution id, artifact path...). */
  target: text("target").notNull(),
  note: text("note"),
  createdAt: integer("created_at").notNull()
}, (t) => [
  index("pins_execution_idx").on(t.executionId),
  index("pins_artifact_idx").on(t.artifactId)
])

/** The outcome of each `flame-pipe audit`, as the report shows it (the JSON is the typed audit report). */
export const audits = sqliteTable("audits", {
  id: text("id").primaryKey(),
  /** A pipeline name, stage id or execution id. */
  target: text("target").notNull(),
  pipeline: text("pipeline"),
  status: text("status", { enum: ["passed", "failed"] }).notNull(),
  startedAt: integer("started_at").notNull(),
  durationMs: integer("duration_ms").notNull(),
  report: text("report", { mode: "json" }).$type<unknown>().notNull()
}, (t) => [index("audits_pipeline_idx").on(t.pipeline, t.startedAt)])
