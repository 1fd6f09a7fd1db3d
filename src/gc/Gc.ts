/**
 * `flame-pipe gc`: what the store holds that nothing retained needs (dry run by default), and with
 * --yes, deleting it. Deleting holds the workspace lock, so no run decides freshness meanwhile.
 */
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Records } from "../audit/Records.ts"
import { loadRecords } from "../audit/Records.ts"
import type { GcPlan } from "../domain/Gc.ts"
import { Workspace } from "../workspace/Workspace.ts"
import { acquireWorkspaceLock, liveHolder } from "../workspace/WorkspaceLock.ts"
import type { Plan, PlannedUnit } from "./Collector.ts"
import { collect, planCollection, recoverInterrupted } from "./Collector.ts"
import { findRoots, retain } from "./Retention.ts"

export interface GcOptions {
  readonly yes: boolean
  readonly wait: boolean
}

export const gc = (options: GcOptions) =>
  Effect.scoped(Effect.gen(function*() {
    const ws = yield* Workspace
    const warnings: Array<string> = []
    let recovered = 0
    if (options.yes) {
      yield* acquireWorkspaceLock(ws.lock, ws.root, { wait: options.wait })
      recovered = yield* recoverInterrupted(ws)
    } else if (fs.existsSync(path.join(ws.root, ".gc"))) {
      warnings.push("an interrupted gc left work behind; gc --yes finishes it first")
    }
    // Holding the lock ourselves, nothing local can be running; otherwise a live holder means a run is.
    const holder = options.yes ? undefined : liveHolder(ws.lock)
    if (holder !== undefined) {
      warnings.push(
        `'flame-pipe ${holder.command}' (pid ${holder.pid}) is running: the inputs of its running executions are ` +
          "kept, and gc --yes waits for it (--wait) or refuses"
      )
    }
    const planFor = (records: Records) =>
      Effect.gen(function*() {
        const roots = yield* findRoots(records, { lockHeld: holder !== undefined })
        const retained = retain(records, roots)
        return { roots, retained, plan: planCollection(ws, records, roots, retained, { live: holder !== undefined }) }
      })
    const { plan, roots } = yield* Effect.flatMap(loadRecords, planFor)
    warnings.push(...roots.warnings)

    let units: ReadonlyArray<PlannedUnit> = plan.units
    if (options.yes) {
      // Planned again from fresh records once the journal is written: a unit goes only if it is still garbage.
      const recheck = Effect.map(Effect.flatMap(loadRecords, planFor), (fresh) => {
        const stillGarbage = new Set(fresh.plan.units.map((u) => u.abs))
        return (unit: PlannedUnit) => stillGarbage.has(unit.abs)
      })
      units = yield* collect(ws, plan, recheck)
    }
    return toGcPlan(ws.root, { ...plan, units }, !options.yes, warnings, recovered)
  }))

const toGcPlan = (
  workspace: string,
  plan: Plan,
  dryRun: boolean,
  warnings: ReadonlyArray<string>,
  recovered: number
): GcPlan => ({
  workspace,
  dryRun,
  units: plan.units.map(({ abs: _abs, ...unit }) => unit),
  markOnly: plan.markOnly,
  freedBytes: plan.units.reduce((sum, u) => sum + u.bytes, 0),
  sharedBytes: plan.units.reduce((sum, u) => sum + u.sharedBytes, 0),
  kept: plan.kept,
  warnings,
  recovered
})
