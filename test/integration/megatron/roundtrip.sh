#!/bin/bash
# Round-trips worker checkpoints through every Megatron layout the fixture generator writes,
# reading them back with the independent reader, and checks the layout claims semantically.
# Needs /usr/bin/python3 with Debian's python3-torch and a built kernels/build/flame-worker.
#   test/integration/megatron/roundtrip.sh [WORKDIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S="$HERE/../../../scripts/megatron"
PY=/usr/bin/python3
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
W=$($PY "$HERE/make_worker_checkpoint.py" "$WORK/worker")
W0=$($PY "$HERE/make_worker_checkpoint.py" "$WORK/worker-noshared" --shared-expert-size 0 --moe-layers "[1]*2+[0]*1")
n=0
check() {  # check REFERENCE_SAFETENSORS WRITER_ARGS...
  local ref=$1; shift
  n=$((n + 1))
  local out="$WORK/m$n"
  $PY "$S/write_checkpoint.py" --out "$out" "$@" > /dev/null
  $PY "$S/read_checkpoint.py" "$out" --out "$out.safetensors" --compare "$ref" > "$out.log" || { cat "$out.log"; echo "FAILED: $*"; exit 1; }
  echo "ok  $*"
}
for fmt in torch_dist legacy; do
  for spec in te local; do
    for ex in sequential te-grouped grouped; do
      [ "$spec" = local ] && [ "$ex" = te-grouped ] && continue
      for dt in bf16 fp32; do
        check "$W/model.safetensors" --worker-checkpoint "$W" --format $fmt --spec $spec --experts $ex --dtype $dt
      done
    done
  done
done
check "$W0/model.safetensors" --worker-checkpoint "$W0" --ep 4 --world 16 --with-optimizer
check "$W/model.safetensors" --worker-checkpoint "$W" --ep 1
check "$W/model.safetensors" --worker-checkpoint "$W" --ep 16 --experts grouped --world 32 --with-optimizer
check "$W/model.safetensors" --worker-checkpoint "$W" --no-fully-parallel --with-optimizer
check "$W/model.safetensors" --worker-checkpoint "$W" --torch-metadata old --enum-pickle value
check "$W/model.safetensors" --worker-checkpoint "$W" --format legacy --ep 4 --with-optimizer
check "$WORK/r1.safetensors" --random-init --save-worker-tensors "$WORK/r1.safetensors" --num-layers 4 --num-experts 16 --seed 3
check "$WORK/r2.safetensors" --random-init --save-worker-tensors "$WORK/r2.safetensors" --moe-layers "[1]*3" --layer-keys stacked --shared-expert-size 0
check "$WORK/r3.safetensors" --random-init --save-worker-tensors "$WORK/r3.safetensors" --moe-layers "[1]*3" --layer-keys stacked --experts grouped --spec local --dtype fp32
# Semantics: Megatron-style forward pieces on the Megatron tensors == worker-style on the worker's.
$PY "$S/write_checkpoint.py" --worker-checkpoint "$W" --out "$WORK/sem-dist" --dtype fp32 > /dev/null
$PY "$S/write_checkpoint.py" --worker-checkpoint "$W" --out "$WORK/sem-legacy" --dtype fp32 --format legacy --experts grouped --ep 4 > /dev/null
$PY "$HERE/check_semantics.py" "$W" "$WORK/sem-dist" "$WORK/sem-legacy"
echo "all $n round trips passed"
