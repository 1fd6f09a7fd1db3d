/**
 * Submitting: executions wait in one queue; the submitter takes what arrived together, groups stages
 * of the same kind, resources and settings into job arrays, and calls sbatch at most `submitRate`
 * times a second. Each task of a submitted job becomes a `Tracked` job for Following to follow.
 */
import type { Scope } from "effect"
import { Cause, Deferred, Duration, Effect, Either, Queue, RateLimiter } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { StageFailed } from "../domain/Errors.ts"
import type { SlurmSettings } from "../domain/Slurm.ts"
import { canonicalJson } from "../engine/Fingerprint.ts"
import { attemptFilter, newCursor } from "../executor/remote/Events.ts"
import { writeFence } from "../executor/remote/Fence.ts"
import type { JobSpec } from "../executor/remote/Protocol.ts"
import { requestCancel } from "./Cancel.ts"
import type { BatchJob } from "./JobScript.ts"
import { batchScript, sbatchArguments } from "./JobScript.ts"
import { settingsForStage } from "./Settings.ts"
import type { Outcome, Pending, SlurmRun, Tracked } from "./SlurmRun.ts"
import { fenceOf } from "./SlurmRun.ts"

/** Stages made ready by the same upstream arrive within this window and can share a job array. */
const COALESCE = Duration.millis(50)

/** What the job of a pending submission runs on its node (`flame-pipe job --spec`). */
export const jobSpec = (run: SlurmRun, pending: Pending, eventsPath: string): JobSpec => {
  const { ctx, executionId, stage } = pending.request
  const { invocation } = run
  return {
    version: 1,
    executionId,
    stageId: stage.id,
    pipeline: {
      ref: invocation.pipeline,
      preset: invocation.preset,
      overrides: [...invocation.overrides],
      config: { ...invocation.config },
      gpus: invocation.gpusPerNode
    },
    params: canonicalJson(stage.encodedParams),
    // An audit's re-execution runs the params the execution recorded, even where today's pipeline differs.
    ...(pending.request.reexecution === true ? { mode: "reexecute" as const } : {}),
    inputs: { ...ctx.inputs },
    ...(ctx.seed === undefined ? {} : { seed: ctx.seed }),
    workDir: ctx.workDir,
    logPath: ctx.logPath,
    eventsPath,
    resumable: stage.definition.resumable === true,
    submission: pending.submission,
    cpus: Math.max(1, stage.resources.cpus),
    fencePath: fenceOf(run, executionId),
    earlierEvents: [...pending.earlierEvents]
  }
}

/** Stages that may share an array: same kind, resources and Slurm settings. */
const arrayKey = (settings: SlurmSettings, pending: Pending): string => {
  const stage = pending.request.stage
  const stageSettings = settingsForStage(settings, stage.id)
  if (!stageSettings.array) return `single:${pending.request.executionId}`
  return canonicalJson({ kind: stage.definition.kind, resources: stage.resources, settings: stageSettings })
}

/** The jobs to submit for what arrived together: each group is one job, an array when it has several tasks. */
export const groupIntoJobs = (
  settings: SlurmSettings,
  batch: ReadonlyArray<Pending>
): ReadonlyArray<ReadonlyArray<Pending>> => {
  const groups: Array<Array<Pending>> = []
  // The group each key is still filling; a full one is closed and the next stage opens another.
  const open = new Map<string, Array<Pending>>()
  for (const p of batch) {
    const key = arrayKey(settings, p)
    const group = open.get(key)
    if (group !== undefined && group.length < settings.arrayMax) {
      group.push(p)
    } else {
      const fresh = [p]
      groups.push(fresh)
      open.set(key, fresh)
    }
  }
  return groups
}

/**
 * Writes the group's specs and batch script, fences its executions and calls sbatch; each stage then
 * waits on its own job. A script that cannot be written or a job sbatch refuses fails the group's stages.
 */
export const submitGroup = (run: SlurmRun, group: ReadonlyArray<Pending>) =>
  Effect.gen(function*() {
    const first = group[0]!.request.stage
    const dir = path.join(run.jobsDir, `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`)
    const isArray = group.length > 1
    const eventsPaths = group.map((_, i) => path.join(dir, `task-${i}.events.jsonl`))
    const job: BatchJob = {
      name: isArray ? `flame-pipe:${first.definition.kind}` : `flame-pipe:${first.id}`,
      resources: first.resources,
      settings: settingsForStage(run.settings, first.id),
      tasks: group.map((p, i) => ({ specPath: path.join(dir, `task-${i}.json`), logPath: p.request.ctx.logPath })),
      slurmOutput: path.join(dir, isArray ? "slurm-%A_%a.out" : "slurm-%j.out"),
      chdir: process.cwd(),
      requeue: true,
      command: run.invocation.jobCommand
    }
    const script = path.join(dir, "job.sh")
    const written = yield* Effect.try({
      try: () => {
        fs.mkdirSync(dir, { recursive: true })
        group.forEach((p, i) => {
          fs.writeFileSync(job.tasks[i]!.specPath, JSON.stringify(jobSpec(run, p, eventsPaths[i]!), null, 2) + "\n")
          fs.writeFileSync(eventsPaths[i]!, "")
          // Named before the job exists: from now on, the execution's earlier jobs may not write.
          writeFence(fenceOf(run, p.request.executionId), { submission: p.submission, attempt: 0 })
        })
        fs.writeFileSync(script, batchScript(job), { mode: 0o755 })
      },
      catch: (cause) => cause instanceof Error ? cause.message : String(cause)
    }).pipe(Effect.either)
    const flags = sbatchArguments(job)
    const submitted = Either.isLeft(written) ?
      Either.left(`cannot write the batch script in ${dir}: ${written.left}`) :
      Either.mapLeft(
        yield* Effect.either(run.client.submit(script, flags)),
        (error) => `sbatch refused the job: ${error.message}`
      )
    if (Either.isLeft(submitted)) {
      for (const p of group) {
        yield* Deferred.fail(p.tracked, new StageFailed({ stage: p.request.stage.id, reason: submitted.left }))
      }
      return
    }
    const arrayId = submitted.right
    const submittedAt = Date.now()
    for (const [i, p] of group.entries()) {
      const jobId = isArray ? `${arrayId}_${i}` : arrayId
      const t: Tracked = {
        request: p.request,
        jobId,
        submission: p.submission,
        eventsPath: eventsPaths[i]!,
        fencePath: fenceOf(run, p.request.executionId),
        slurmOutput: job.slurmOutput.replace("%A", arrayId).replace("%a", String(i)).replace("%j", arrayId),
        cursor: newCursor(),
        attempts: attemptFilter(),
        state: "PENDING",
        running: false,
        startedSinceRequeue: false,
        restarts: 0,
        result: undefined,
        failure: undefined,
        cancelling: false,
        finished: false,
        unseenPolls: 0,
        done: yield* Deferred.make<Outcome>()
      }
      run.state.tracked.set(jobId, t)
      p.current = t
      yield* run.records.record({
        executionId: p.request.executionId,
        jobId,
        submission: p.submission,
        script: path.relative(run.root, script),
        partition: job.settings.partition ?? null,
        state: "PENDING",
        submittedAt
      }).pipe(Effect.orDie)
      yield* p.request.ctx.log(
        `[slurm] submitted as job ${jobId} (${path.relative(run.root, script)}${
          flags.length > 0 ? `, sbatch flags ${JSON.stringify(flags)}` : ""
        })`
      )
      // Interrupted while sbatch was under way: the job must not outlive the run.
      if (p.cancelled) {
        yield* requestCancel(run, t)
      }
      yield* Deferred.succeed(p.tracked, t)
    }
  })

/** The fiber body that takes pending submissions off the queue and submits them, rate limited. */
export const makeSubmitter = (run: SlurmRun): Effect.Effect<Effect.Effect<never>, never, Scope.Scope> =>
  Effect.map(
    RateLimiter.make({
      limit: run.settings.submitBurst,
      interval: Duration.millis((1000 * run.settings.submitBurst) / run.settings.submitRate),
      algorithm: "token-bucket"
    }),
    (limiter) =>
      Effect.forever(
        Effect.gen(function*() {
          const first = yield* Queue.take(run.state.pending)
          yield* Effect.sleep(COALESCE)
          const batch = [first, ...(yield* Queue.takeAll(run.state.pending))].filter((p) => !p.cancelled)
          for (const group of groupIntoJobs(run.settings, batch)) {
            // Whatever goes wrong with one submission fails its stages, never the submitter.
            yield* limiter(submitGroup(run, group)).pipe(
              Effect.catchAllCause((cause) =>
                Effect.forEach(group, (p) =>
                  p.current ? Effect.void : Deferred.fail(
                    p.tracked,
                    new StageFailed({ stage: p.request.stage.id, reason: `submission failed: ${Cause.pretty(cause)}` })
                  ), { discard: true })
              )
            )
          }
        })
      )
  )
