/**
 * `flame-pipe audit <pipeline|stage|execution>`: integrity, completeness, re-execution (in this
 * process, or as Slurm jobs with --executor slurm) and the environment diff; a summary or --json, exit
 * code 1 when anything failed.
 */
import { Args, Command, Options } from "@effect/cli"
import { config, executor, gpus, preset, set, withDefault, workspace } from "../CommonOptions.ts"
import { lazyHandler } from "./lazy.ts"

const options = {
  target: Args.text({ name: "target" }).pipe(
    Args.withDescription("a pipeline (name or module path), a stage id or an execution id")
  ),
  workspace,
  preset,
  set,
  config,
  executor,
  gpus: gpus("GPUs re-executions may use (with --executor local)"),
  json: Options.boolean("json").pipe(Options.withDescription("print the typed audit report as JSON on stdout")),
  quick: Options.boolean("quick").pipe(
    Options.withDescription("trust the stat cache for files whose inode, size and mtime are unchanged")
  ),
  stages: Options.text("stages").pipe(
    Options.repeated,
    Options.withDescription("re-execute these stages (ids or globs like 'train/*', comma-separated or repeated)")
  ),
  sample: Options.integer("sample").pipe(
    Options.withDescription("re-execute N more executions, a seeded sample spread over stage kinds"),
    withDefault(0)
  ),
  seed: Options.integer("seed").pipe(Options.withDescription("the sample's seed"), withDefault(0)),
  all: Options.boolean("all").pipe(Options.withDescription("re-execute every execution in scope")),
  restore: Options.boolean("restore").pipe(
    Options.withDescription(
      "re-execute what is collected, missing or damaged, and put rebuilds that match their record back"
    )
  ),
  wait: Options.boolean("wait").pipe(Options.withDescription("with --restore: wait for a run to finish")),
  scratch: Options.directory("scratch").pipe(
    Options.optional,
    Options.withDescription(
      "scratch workspace for re-executions (default: a fresh one under the workspace; with --executor slurm, " +
        "one the compute nodes can reach)"
    )
  ),
  keepScratch: Options.boolean("keep-scratch").pipe(
    Options.withDescription("keep the scratch workspace (re-executed outputs and logs) afterwards")
  )
}

export type AuditArgs = Command.Command.ParseConfig<typeof options>

export const auditCommand = Command.make("audit", options, lazyHandler(() => import("./AuditHandler.ts"))).pipe(
  Command.withDescription(
    "check that recorded results are intact, complete and traceable, and re-execute a selection to see " +
      "whether they come out the same"
  )
)
