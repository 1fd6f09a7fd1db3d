import { describe, expect, it } from "vitest"
import { auditSection } from "../../../src/audit/reportSection.ts"
import type { AuditReport } from "../../../src/domain/Audit.ts"
import type { ReportData } from "../../../src/report/model.ts"

const data = {} as ReportData
const snapshot = {
  id: "e",
  gitCommit: "a",
  gitDirty: false,
  nodeVersion: "v20",
  platform: "linux",
  host: "h",
  compilers: {},
  gpus: []
}

const audit = (status: AuditReport["status"]): AuditReport => ({
  id: "x",
  target: { kind: "pipeline", name: "toy", pipeline: "toy", preset: "default" },
  workspace: "/w",
  startedAt: 0,
  durationMs: 10,
  quick: false,
  status,
  summary: { executions: 7, artifacts: 7, bytesHashed: 2048, failures: 1, warnings: 0, reexecuted: 1, reproduced: 0 },
  findings: [{
    check: "integrity",
    severity: "fail",
    code: "missing",
    stage: "sum",
    execution: "e1234567890",
    artifact: { id: "a", name: "total.json", path: "artifacts/sum/x/total.json" },
    message: "sum output total.json is missing",
    files: []
  }],
  reexecution: {
    seed: 3,
    results: [{
      stage: "report",
      execution: "r1234567890",
      kind: "toy/report",
      reproducibility: "bitwise",
      selectedBy: "sample",
      status: "differs",
      reason: "outputs differ: report.txt",
      durationMs: 1500,
      recordedDurationMs: 1000,
      outputs: [{ name: "report.txt", recordedHash: "a", rebuiltHash: "b", equal: false, storedHash: "a", files: [] }],
      metrics: [],
      rebuiltInputs: [],
      restored: []
    }]
  },
  environment: {
    current: snapshot,
    recorded: [{
      environment: { ...snapshot, gitCommit: "b" },
      executions: 7,
      stages: ["sum"],
      differences: [{ field: "commit", recorded: "b", current: "a" }]
    }],
    workers: []
  },
  notes: []
})

describe("the report's audit section", () => {
  it("is left out when the pipeline was never audited", () => {
    expect(auditSection.build(data, [])).toBeUndefined()
    expect(auditSection.build({ ...data, extras: { audit: { not: "an audit" } } }, [])).toBeUndefined()
  })

  it("shows the verdict, the failures, each re-execution and the environment differences", () => {
    const section = auditSection.build({ ...data, extras: { audit: audit("failed") } }, [])!
    expect(section.intro).toContain("FAILED with 1 failure")
    expect(section.tables.map((t) => t.id)).toEqual([
      "audit-summary",
      "audit-findings",
      "audit-reexecutions",
      "audit-environment"
    ])
    expect(section.tables[0]!.rows).toEqual([["failed", 7, 7, "2.0 KB", 1, 0, 1, 0]])
    expect(section.tables[1]!.rows[0]).toEqual([
      "fail",
      "integrity",
      "sum",
      "e1234567",
      "artifacts/sum/x/total.json",
      "sum output total.json is missing"
    ])
    expect(section.tables[2]!.rows[0]).toEqual([
      "report",
      "r1234567",
      "bitwise",
      "sample",
      "differs",
      "0 / 1",
      "-",
      "1.5 s",
      "1.0 s",
      "outputs differ: report.txt"
    ])
    expect(section.tables[3]!.rows).toEqual([[7, "commit", "b", "a"]])
  })
})
