import { describe, expect, it } from "vitest"
import {
  baseState,
  isAccountingDisabled,
  isTransientError,
  parseExitCode,
  parseSacct,
  parseSbatch,
  parseScontrolJobs,
  parseSinfoGpus,
  parseSqueue
} from "../../../src/slurm/Output.ts"

// Captured from Slurm 22.05 (`scontrol show job -o`), array task 2 of job 15.
const scontrolLine =
  "JobId=15 ArrayJobId=15 ArrayTaskId=2 JobName=flame-pipe:toy/square UserId=root(0) GroupId=root(0) " +
  "MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) " +
  "Requeue=1 Restarts=1 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:01 TimeLimit=UNLIMITED TimeMin=N/A " +
  "SubmitTime=2026-12-01T08:50:48 EligibleTime=2026-12-01T08:50:48 AccrueTime=2026-12-01T08:50:48 " +
  "StartTime=2026-12-01T08:50:51 EndTime=2026-12-01T08:50:52 Deadline=N/A SuspendTime=None SecsPreSuspend=0 " +
  "LastSchedEval=2026-12-01T08:50:51 Scheduler=Main Partition=ci AllocNode:Sid=localhost:6876 ReqNodeList=(null) " +
  "ExcNodeList=(null) NodeList=vm BatchHost=vm NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* " +
  "TRES=cpu=1,mem=512M,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=1:0:*:* CoreSpec=* MinCPUsNode=1 " +
  "MinMemoryNode=512M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 " +
  "Licenses=(null) Network=(null) Command=/tmp/ws/slurm/x/job.sh WorkDir=/work/main StdErr=/tmp/ws/slurm/x/slurm-15_2.out " +
  "StdIn=/dev/null StdOut=/tmp/ws/slurm/x/slurm-15_2.out Power= TresPerNode=gres:gpu:1"

describe("Slurm command output", () => {
  it("squeue: job ids (array tasks expanded), base states, reasons, node lists", () => {
    const rows = parseSqueue(
      "31|RUNNING|None|vm|1-00:00:00\n28_1|PENDING|Resources||UNLIMITED\n28_2|CANCELLED by 0|None|vm|5:00\n"
    )
    expect(rows.map((r) => [r.jobId, r.state, r.reason, r.nodeList, r.timeLimit])).toEqual([
      ["31", "RUNNING", null, "vm", "1-00:00:00"],
      ["28_1", "PENDING", "Resources", null, "UNLIMITED"],
      ["28_2", "CANCELLED", null, "vm", "5:00"]
    ])
  })

  it("scontrol: an array task by <array>_<task>, with exit code, restarts and times", () => {
    const [job] = parseScontrolJobs(scontrolLine)
    expect(job).toMatchObject({
      jobId: "15_2",
      state: "COMPLETED",
      reason: null,
      nodeList: "vm",
      exitCode: 0,
      signal: 0,
      restarts: 1
    })
    expect(job!.startedAt).toBe(new Date("2026-12-01T08:50:51").getTime())
    expect(job!.endedAt! - job!.startedAt!).toBe(1000)
    // Values containing '=' stay whole; a plain job keeps its id.
    const plain = parseScontrolJobs(
      "JobId=9 JobName=x JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 TimeLimit=00:01:00 StartTime=Unknown"
    )
    expect(plain[0]).toMatchObject({
      jobId: "9",
      state: "TIMEOUT",
      reason: "TimeLimit",
      signal: 15,
      startedAt: null,
      timeLimit: "00:01:00"
    })
  })

  it("sacct -P: states with their 'by uid' and truncation marks removed", () => {
    const rows = parseSacct(
      "12|CANCELLED by 1000|None|gpu[01-02]|0:15|2026-12-01T08:00:00|2026-12-01T09:00:00|01:00:00\n13|FAILED|NonZeroExitCode|gpu03|2:0|2026-12-01T08:00:00|Unknown|"
    )
    expect(rows.map((r) => [r.jobId, r.state, r.nodeList, r.exitCode, r.signal, r.endedAt, r.timeLimit])).toEqual([
      ["12", "CANCELLED", "gpu[01-02]", 0, 15, new Date("2026-12-01T09:00:00").getTime(), "01:00:00"],
      ["13", "FAILED", "gpu03", 2, 0, null, null]
    ])
    expect(baseState("RUNNING+")).toBe("RUNNING")
  })

  it("sbatch --parsable, sinfo GPUs, exit codes, and the errors worth knowing apart", () => {
    expect(parseSbatch("1234\n")).toBe("1234")
    expect(parseSbatch("1234;cluster2\n")).toBe("1234")
    expect(parseSbatch("sbatch: warning: x\n")).toBeUndefined()
    expect(parseSinfoGpus("gpu:2\n(null)\ngpu:h100:8(S:0-1),shard:4\n")).toBe(8)
    expect(parseSinfoGpus("(null)\n")).toBe(0)
    expect(parseExitCode("137:0")).toEqual({ exitCode: 137, signal: 0 })
    expect(parseExitCode("garbage")).toEqual({ exitCode: null, signal: null })
    expect(isAccountingDisabled("Slurm accounting storage is disabled")).toBe(true)
    expect(isTransientError("sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"))
      .toBe(true)
    expect(
      isTransientError("sbatch: error: Batch job submission failed: Requested node configuration is not available")
    )
      .toBe(false)
  })
})
