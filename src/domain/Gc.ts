/**
 * What `flame-pipe gc` would free (or freed), what it keeps and why, and what `pin` protects.
 */
import { Schema } from "effect"

export const GcUnit = Schema.Struct({
  /**
   * outputs: an execution's whole output directory; artifact: one output of an execution whose other
   * outputs stay; orphan: a directory in the store no execution recorded; trash: leftovers of runs.
   */
  kind: Schema.Literal("outputs", "artifact", "orphan", "trash"),
  /** Workspace-relative. */
  path: Schema.String,
  stage: Schema.NullOr(Schema.String),
  execution: Schema.NullOr(Schema.String),
  /** The artifact rows it holds, marked collected once it is gone. */
  artifacts: Schema.Array(Schema.Struct({ id: Schema.String, name: Schema.String })),
  /** Bytes freed by deleting it (files with one link). */
  bytes: Schema.Number,
  /** Bytes of files hard-linked elsewhere (a source's original): deleting them frees nothing. */
  sharedBytes: Schema.Number
})
export type GcUnit = typeof GcUnit.Type

/** Rows marked collected without deleting anything: their bytes are gone, or now belong to a kept artifact. */
export const GcMarkOnly = Schema.Struct({
  id: Schema.String,
  name: Schema.String,
  stage: Schema.String,
  path: Schema.String,
  why: Schema.String
})
export type GcMarkOnly = typeof GcMarkOnly.Type

export const KeptGroup = Schema.Struct({
  reason: Schema.String,
  artifacts: Schema.Number,
  bytes: Schema.Number
})
export type KeptGroup = typeof KeptGroup.Type

export const GcPlan = Schema.Struct({
  workspace: Schema.String,
  /** False once the units were deleted (--yes). */
  dryRun: Schema.Boolean,
  units: Schema.Array(GcUnit),
  markOnly: Schema.Array(GcMarkOnly),
  freedBytes: Schema.Number,
  sharedBytes: Schema.Number,
  kept: Schema.Struct({
    artifacts: Schema.Number,
    bytes: Schema.Number,
    /** By root reason (latest successful run, pin, running execution...), largest first. */
    reasons: Schema.Array(KeptGroup)
  }),
  warnings: Schema.Array(Schema.String),
  /** Units of an earlier, interrupted gc that this one finished. */
  recovered: Schema.Number
})
export type GcPlan = typeof GcPlan.Type

export const Pin = Schema.Struct({
  id: Schema.String,
  target: Schema.String,
  stage: Schema.String,
  execution: Schema.NullOr(Schema.String),
  artifact: Schema.NullOr(Schema.Struct({ id: Schema.String, name: Schema.String, path: Schema.String })),
  note: Schema.NullOr(Schema.String),
  createdAt: Schema.Number
})
export type Pin = typeof Pin.Type
