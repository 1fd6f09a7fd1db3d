#!/usr/bin/env bash
# A Slurm cluster on this machine, for the Slurm executor's integration tests.
#
#   scripts/ci/slurm-cluster.sh start    # needs Debian's slurmctld slurmd slurm-client munge
#   scripts/ci/slurm-cluster.sh stop
#   scripts/ci/slurm-cluster.sh status
#
# The tests' node is `hostname -s`, declared with the machine's CPUs and memory and placeholder GPUs,
# alone in the default partition `ci`: a one-node cluster. So that a multi-node job (srun across
# nodes, a torchrun rendezvous on the first) can be tested too, a second slurmd runs on the same
# machine as node `<host>-b` (one CPU, one GPU, sharing the machine's cores); partition `pair` holds
# both nodes and is used only by jobs that ask for it.
#
# Placeholder GPUs get `--gres=gpu:N` scheduled (and CUDA_VISIBLE_DEVICES set) with no GPU present.
# Slurm 22.05's slurmd drops a gpu gres without File=, so each placeholder is a character device
# aliasing /dev/null. Accounting is disabled (accounting_storage/none, so sacct does not work): the
# executor must follow jobs without it. Runs as root (slurmd must); munged runs as user munge.
set -euo pipefail

GPUS="${FLAME_SLURM_GPUS:-2}"
CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
GPU_DIR="$RUN_DIR/placeholder-gpus"
HOST="$(hostname -s)"
SECOND="${HOST}-b"

die() {
  echo "slurm-cluster: $*" >&2
  exit 1
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/log/munge
  install -d -o munge -g munge -m 0711 /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    install -d -o munge -g munge -m 0700 /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 1 50); do
    munge -n </dev/null >/dev/null 2>&1 && return
    sleep 0.1
  done
  die "munged did not start (see /var/log/munge/munged.log)"
}

placeholder_gpu() {
  # A character device is what slurmd accepts; where mknod is not allowed, a plain file still
  # registers the count (slurmd logs an error about it).
  [ -e "$1" ] || mknod "$1" c 1 3 2>/dev/null || touch "$1"
}

write_config() {
  local cpus mem_mb
  cpus="$(nproc)"
  # Leave the OS some headroom; jobs ask for memory, so the node must declare it.
  mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
  install -d "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR/$HOST" "$SPOOL_DIR/$SECOND" "$LOG_DIR" "$RUN_DIR" "$GPU_DIR"
  cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by scripts/ci/slurm-cluster.sh: a test cluster on one machine.
ClusterName=flamepipe
SlurmctldHost=${HOST}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Start jobs as soon as they are submitted or resources free up (the defaults delay batch jobs up to 3 s).
SchedulerParameters=batch_sched_delay=0,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
StateSaveLocation=${STATE_DIR}
# %n: each slurmd of this machine (one per node name) keeps its own spool, pid and log.
SlurmdSpoolDir=${SPOOL_DIR}/%n
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd-%n.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd-%n.log
SlurmctldPort=6817
# Finished jobs stay visible to scontrol for 10 minutes: the executor's fallback when sacct is off.
MinJobAge=600
# SIGTERM to SIGKILL when a job is cancelled or requeued; the stages stop their workers within it.
KillWait=5
InactiveLimit=0
Waittime=0
JobRequeue=1
GresTypes=gpu
NodeName=${HOST} NodeHostname=${HOST} Port=6818 CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:${GPUS} State=UNKNOWN
NodeName=${SECOND} NodeHostname=${HOST} NodeAddr=127.0.0.1 Port=6819 CPUs=1 RealMemory=$((mem_mb / 4)) Gres=gpu:1 State=UNKNOWN
PartitionName=ci Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
PartitionName=pair Nodes=${HOST},${SECOND} MaxTime=INFINITE State=UP
EOF
  for i in $(seq 0 "$GPUS"); do placeholder_gpu "$GPU_DIR/gpu$i"; done
  cat >"$CONF_DIR/gres.conf" <<EOF
# Placeholder GPUs: scheduled like real ones, no hardware behind them.
NodeName=${HOST} Name=gpu File=${GPU_DIR}/gpu[0-$((GPUS - 1))]
NodeName=${SECOND} Name=gpu File=${GPU_DIR}/gpu${GPUS}
EOF
}

wait_idle() {
  local state
  for node in "$HOST" "$SECOND"; do
    for i in $(seq 1 120); do
      state="$(sinfo -h -N -n "$node" -o %t 2>/dev/null | head -1 || true)"
      case "$state" in
        idle* | mix* | alloc*) break ;;
        down* | drain*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
      esac
      if [ "$i" -eq 120 ]; then
        sinfo >&2 || true
        tail -n 30 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd-$node.log" >&2 || true
        die "node ${node} did not become idle"
      fi
      sleep 0.5
    done
  done
}

slurmd_running() {
  [ -f "$RUN_DIR/slurmd-$1.pid" ] && kill -0 "$(cat "$RUN_DIR/slurmd-$1.pid")" 2>/dev/null
}

start() {
  command -v slurmctld >/dev/null || die "slurmctld is not installed (apt-get install slurmctld slurmd slurm-client munge)"
  start_munge
  write_config
  # Daemons left by an earlier start read the config again.
  if ! pgrep -x slurmctld >/dev/null || ! scontrol reconfigure 2>/dev/null; then slurmctld; fi
  for node in "$HOST" "$SECOND"; do slurmd_running "$node" || slurmd -N "$node"; done
  wait_idle
  sinfo
}

stop() {
  local pids=()
  for pidfile in "$RUN_DIR"/slurmd-*.pid "$RUN_DIR/slurmctld.pid"; do
    if [ -f "$pidfile" ]; then pids+=("$(cat "$pidfile")"); fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill "${pids[@]}" 2>/dev/null || true
  # Gone before we return, so that a start right after does not find a dying controller.
  for _ in $(seq 1 100); do
    kill -0 "${pids[@]}" 2>/dev/null || return 0
    sleep 0.1
  done
  die "the Slurm daemons did not stop: ${pids[*]}"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) die "usage: $0 start|stop|status" ;;
esac
