/**
 * `flame-pipe audit <pipeline|stage|execution>`: integrity, completeness, re-execution and the
 * environment diff; a summary or --json, exit code 1 when anything failed.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { audit } from "../audit/Audit.ts"
import { formatAudit } from "../audit/format.ts"
import { Reporter } from "../engine/Reporter.ts"
import { Lineage } from "../lineage/Lineage.ts"
import { ContentHasher } from "../store/ContentHasher.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { config, gpus, parseConfig, preset, resolveGpus, set, workspace } from "./CommonOptions.ts"

const auditLayer = (workspace: string, json: boolean) =>
  Layer.mergeAll(
    Layer.provideMerge(ContentHasher.Default, Layer.provideMerge(Lineage.Default, Workspace.layer(workspace))),
    Reporter.forStream(json ? process.stderr : process.stdout)
  )

export const auditCommand = Command.make(
  "audit",
  {
    target: Args.text({ name: "target" }).pipe(
      Args.withDescription("a pipeline (name or module path), a stage id or an execution id")
    ),
    workspace,
    preset,
    set,
    config,
    gpus: gpus("GPUs re-executions may use"),
    json: Options.boolean("json").pipe(Options.withDescription("print the typed audit report as JSON on stdout")),
    quick: Options.boolean("quick").pipe(
      Options.withDescription("trust the stat cache for files whose inode, size and mtime are unchanged")
    ),
    stages: Options.text("stages").pipe(
      Options.repeated,
      Options.withDescription("re-execute these stages (ids or globs like 'train/*', comma-separated or repeated)")
    ),
    sample: Options.integer("sample").pipe(
      Options.withDefault(0),
      Options.withDescription("re-execute N more executions, a seeded sample spread over stage kinds")
    ),
    seed: Options.integer("seed").pipe(Options.withDefault(0), Options.withDescription("the sample's seed")),
    all: Options.boolean("all").pipe(Options.withDescription("re-execute every execution in scope")),
    restore: Options.boolean("restore").pipe(
      Options.withDescription(
        "re-execute what is collected, missing or damaged, and put rebuilds that match their record back"
      )
    ),
    wait: Options.boolean("wait").pipe(Options.withDescription("with --restore: wait for a run to finish")),
    scratch: Options.directory("scratch").pipe(
      Options.optional,
      Options.withDescription("scratch workspace for re-executions (default: a fresh one under the workspace)")
    ),
    keepScratch: Options.boolean("keep-scratch").pipe(
      Options.withDescription("keep the scratch workspace (re-executed outputs and logs) afterwards")
    )
  },
  (args) =>
    Effect.gen(function*() {
      const report = yield* audit({
        target: args.target,
        preset: Option.getOrUndefined(args.preset),
        overrides: args.set,
        config: parseConfig(args.config),
        gpus: resolveGpus(args.gpus),
        quick: args.quick,
        stages: args.stages.flatMap((s) => s.split(",")).map((s) => s.trim()).filter((s) => s !== ""),
        sample: Math.max(0, args.sample),
        seed: args.seed,
        all: args.all,
        restore: args.restore,
        wait: args.wait,
        scratch: Option.getOrUndefined(args.scratch),
        keepScratch: args.keepScratch
      }).pipe(Effect.provide(auditLayer(args.workspace, args.json)))
      yield* Console.log(args.json ? JSON.stringify(report, null, 2) : formatAudit(report))
      if (report.status !== "passed") process.exitCode = 1
    })
).pipe(
  Command.withDescription(
    "check that recorded results are intact, complete and traceable, and re-execute a selection to see " +
      "whether they come out the same"
  )
)
