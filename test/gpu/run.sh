#!/usr/bin/env bash
# The GPU test suite of the worker's CUDA backend (`npm run test:gpu`): builds the CPU and CUDA
# workers, runs the kernel / model parity program (kernels/tests/test_cuda.cpp) and the end-to-end
# CLI parity checks (test/gpu/parity.py). Needs an NVIDIA GPU with compute capability >= 8.0, nvcc,
# python3 with numpy, and libcublas (found in the CUDA toolkit or the nvidia-cublas Python wheel,
# else set FLAME_CUBLAS=/path/to/libcublas.so.13). Fails, never skips, without a usable GPU.
# (Without one, `make -C kernels test-cuda-emu` and `parity.py --emulated` run the same checks on
# the CPU emulation of the backend, kernels/emu/: its logic, not the hardware.)
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs="${JOBS:-$(nproc)}"
# libcublas: the worker searches the usual places itself; also ask this python's site-packages
# (the nvidia-cublas wheel that PyTorch installs) so an unusual layout is found too.
if [ -z "${FLAME_CUBLAS:-}" ]; then
  found="$(python3 -c 'import glob, os, sys
for p in sys.path:
    for pat in ("nvidia/cu13/lib/libcublas.so.13", "nvidia/cublas/lib/libcublas.so.1[23]"):
        for f in sorted(glob.glob(os.path.join(p, pat))):
            print(f); sys.exit()' 2>/dev/null || true)"
  if [ -n "$found" ]; then export FLAME_CUBLAS="$found"; echo "FLAME_CUBLAS=$found"; fi
fi
echo "== build (make -C kernels all cuda, $jobs jobs)"
make -C kernels -j"$jobs" all cuda
if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true; fi
kernels/build/flame-worker-cuda version
echo "== kernels/build/test-cuda"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" kernels/build/test-cuda
echo "== test/gpu/parity.py"
python3 test/gpu/parity.py "$@"
