/**
 * The report's data model. A report is built in three steps:
 *
 *   1. collect (collect.ts): the executions it covers, read from lineage, with their params, results,
 *      outputs, inputs, metrics and parsed JSON outputs: a `ReportData`;
 *   2. build (build.ts): each `SectionBuilder` of a list turns the data into a `Section` of figures
 *      (ECharts options, plain JSON) and tables, or nothing when the data has nothing for it;
 *   3. render (html.ts): one self-contained HTML file.
 *
 * A new section is a new `SectionBuilder` added to the list (sections/index.ts `defaultSections`, or a
 * list passed to `buildReport`): the collect and render steps need no change.
 */

export interface ArtifactRef {
  readonly name: string
  /** Workspace-relative. */
  readonly path: string
  readonly hash: string
  readonly size: number
}

export interface InputRef extends ArtifactRef {
  /** The input name in the consuming stage. */
  readonly input: string
  /** Stage and execution that produced the artifact. */
  readonly producerStage: string
  readonly producerExecution: string
}

/** One execution the report draws on: a stage of the pipeline as it was last (successfully) run. */
export interface StageRecord {
  readonly stageId: string
  readonly kind: string
  /**
   * Undefined when the execution is the stage's current one (its fingerprint matches the pipeline as
   * resolved now); otherwise why the stage is stale: the record is its latest successful execution.
   */
  readonly stale?: string
  readonly execution: {
    readonly id: string
    readonly runId: string
    readonly status: string
    readonly startedAt: number
    readonly endedAt: number | null
    readonly durationMs: number | null
    readonly workerHash: string | null
    readonly host: string
  }
  readonly environment: { readonly gitCommit: string | null; readonly gitDirty: boolean | null } | null
  readonly params: unknown
  readonly result: unknown
  readonly outputs: ReadonlyArray<ArtifactRef>
  readonly inputs: ReadonlyArray<InputRef>
  /** name -> [step, value] pairs in step order (only the metrics the collector was asked for). */
  readonly metrics: Readonly<Record<string, ReadonlyArray<readonly [number, number | null]>>>
  /** Parsed JSON outputs, by output name. */
  readonly documents: Readonly<Record<string, unknown>>
}

export interface ReportData {
  readonly title: string
  readonly pipeline: string
  readonly preset: string | null
  readonly generatedAt: string
  readonly workspace: string
  readonly records: ReadonlyArray<StageRecord>
  /** Stages of the pipeline that have no current output to report on, and why. */
  readonly missing: ReadonlyArray<{ readonly stageId: string; readonly kind: string; readonly reason: string }>
  /**
   * Data a caller adds for its own section builders, by key (e.g. an audit's verdicts): builders only
   * see ReportData, so what they need beyond the executions' records travels here.
   */
  readonly extras?: Readonly<Record<string, unknown>>
  /** The run's tokenizer, to show token ids as text; without it tables show the ids alone. */
  readonly tokens?: TokenDecoder
}

/** Token ids as text, by the tokenizer the pipeline tokenized its corpus with (tokens.ts). */
export interface TokenDecoder {
  /** The stage whose tokenizer.json it is: a table that shows decoded tokens cites it. */
  readonly source: string
  /** The text of one token id; undefined for an id the tokenizer does not have (the model's padding). */
  readonly text: (id: number) => string | undefined
}

/** A figure: an ECharts option (JSON only: no functions) and the stages whose outputs it plots. */
export interface Figure {
  readonly id: string
  readonly title: string
  readonly caption: string
  readonly option: Readonly<Record<string, unknown>>
  readonly height?: number
  readonly sources: ReadonlyArray<string>
}

export type Cell = string | number | null

export interface Table {
  readonly id: string
  readonly title: string
  readonly caption?: string
  readonly columns: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<Cell>>
  readonly sources: ReadonlyArray<string>
}

export interface Section {
  readonly id: string
  readonly title: string
  /** Plain text (escaped when rendered). */
  readonly intro?: string
  readonly figures: ReadonlyArray<Figure>
  readonly tables: ReadonlyArray<Table>
}

export interface SectionBuilder {
  readonly id: string
  /** Returns undefined when the data holds nothing for this section. `previous` are the sections built before it. */
  readonly build: (data: ReportData, previous: ReadonlyArray<Section>) => Section | undefined
}

export interface Report {
  readonly data: ReportData
  readonly sections: ReadonlyArray<Section>
}

export const recordsOfKind = (data: ReportData, kind: string): ReadonlyArray<StageRecord> =>
  data.records.filter((r) => r.kind === kind)
