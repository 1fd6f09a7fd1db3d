#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the Slurm executor's integration tests.
#
#   scripts/ci/slurm-cluster.sh start    # install-free: needs Debian's slurmctld slurmd slurm-client munge
#   scripts/ci/slurm-cluster.sh stop
#   scripts/ci/slurm-cluster.sh status
#
# The node is declared with the machine's CPUs and memory and placeholder GPUs, so `--gres=gpu:N` is
# scheduled (and CUDA_VISIBLE_DEVICES set) without GPUs being present. Slurm 22.05's slurmd drops a
# gpu gres that has no File=, so each placeholder is a character device aliasing /dev/null. Accounting is disabled
# (accounting_storage/none, so sacct does not work): the executor must follow jobs without it.
# Runs as root (slurmd must); munged runs as user munge.
set -euo pipefail

GPUS="${FLAME_SLURM_GPUS:-2}"
PARTITION="${FLAME_SLURM_PARTITION:-ci}"
CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm/slurmctld
SPOOL_DIR=/var/lib/slurm/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
GPU_DIR="$RUN_DIR/placeholder-gpus"

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

write_config() {
  local host cpus mem_mb
  host="$(hostname -s)"
  cpus="$(nproc)"
  # Leave the OS some headroom; jobs ask for memory, so the node must declare it.
  mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10))
  install -d "$CONF_DIR" "$STATE_DIR" "$SPOOL_DIR" "$LOG_DIR" "$RUN_DIR"
  cat >"$CONF_DIR/slurm.conf" <<EOF
# Written by scripts/ci/slurm-cluster.sh: a one-node test cluster.
ClusterName=flamepipe
SlurmctldHost=${host}
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
SlurmdSpoolDir=${SPOOL_DIR}
SlurmctldPidFile=${RUN_DIR}/slurmctld.pid
SlurmdPidFile=${RUN_DIR}/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# Finished jobs stay visible to scontrol for 10 minutes: the executor's fallback when sacct is off.
MinJobAge=600
KillWait=10
InactiveLimit=0
Waittime=0
JobRequeue=1
GresTypes=gpu
NodeName=${host} CPUs=${cpus} RealMemory=${mem_mb} Gres=gpu:${GPUS} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${host} Default=YES MaxTime=INFINITE State=UP
EOF
  install -d "$GPU_DIR"
  for i in $(seq 0 $((GPUS - 1))); do
    # A character device is what slurmd accepts; where mknod is not allowed, a plain file still
    # registers the count (slurmd logs an error about it).
    [ -e "$GPU_DIR/gpu$i" ] || mknod "$GPU_DIR/gpu$i" c 1 3 2>/dev/null || touch "$GPU_DIR/gpu$i"
  done
  cat >"$CONF_DIR/gres.conf" <<EOF
# Placeholder GPUs: scheduled like real ones, no hardware behind them.
NodeName=${host} Name=gpu File=${GPU_DIR}/gpu[0-$((GPUS - 1))]
EOF
}

wait_idle() {
  local host state
  host="$(hostname -s)"
  for _ in $(seq 1 120); do
    state="$(sinfo -h -n "$host" -o %t 2>/dev/null || true)"
    case "$state" in
      idle* | mix* | alloc*) return ;;
      down* | drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  sinfo >&2 || true
  tail -n 30 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
  die "node ${host} did not become idle"
}

start() {
  command -v slurmctld >/dev/null || die "slurmctld is not installed (apt-get install slurmctld slurmd slurm-client munge)"
  start_munge
  write_config
  # Daemons left by an earlier start read the config again.
  if pgrep -x slurmctld >/dev/null; then scontrol reconfigure; else slurmctld; fi
  if ! pgrep -x slurmd >/dev/null; then slurmd; fi
  wait_idle
  sinfo
}

stop() {
  for daemon in slurmd slurmctld; do
    if [ -f "$RUN_DIR/$daemon.pid" ]; then kill "$(cat "$RUN_DIR/$daemon.pid")" 2>/dev/null || true; fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) sinfo && squeue ;;
  *) die "usage: $0 start|stop|status" ;;
esac
