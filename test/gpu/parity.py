#!/usr/bin/env python3
"""End-to-end parity of the worker's CUDA backend with its CPU backend, through the real CLI.

On a tiny MoE model (dense first layer, MoE layers with a shared expert) and a synthetic corpus:
  * training losses per iteration: CUDA fp32 within 1e-4 (relative) of the CPU, CUDA bf16 (flash
    and plain attention) within 3e-2; the bf16 loss falls;
  * two CUDA runs write bitwise identical checkpoints; resuming on the GPU from a middle
    checkpoint reproduces the uninterrupted GPU run bitwise;
  * checkpoints cross backends: a GPU checkpoint evaluates on the CPU (and vice versa) to the same
    validation loss within the bf16 tolerance, and a CPU checkpoint resumes training on the GPU;
  * router traces of one checkpoint, CPU vs CUDA fp32: identical expert ids except near ties
    (both backends' probabilities at the slot within 1e-5), probabilities within 1e-5;
  * with no visible GPU, --backend cuda fails with exit code 2 and a message naming
    config.runtime.backend, and --backend auto runs on the CPU.

  python3 test/gpu/parity.py [--keep DIR] [--cpu-only | --emulated]

--cpu-only runs every "GPU" job on the CPU backend instead: it checks this harness itself on a
machine without a GPU (all comparisons then hold trivially). --emulated runs them on the CUDA
backend compiled for the CPU emulation (`make -C kernels cuda-emu`, kernels/emu/README.md): the
CUDA code paths end to end without a GPU, which checks their logic but is not a GPU result.
Needs python3 with numpy. Prints one line per check and a closing "N passed, N failed" line;
exits 1 on any failure.
"""
import argparse, hashlib, json, os, shutil, struct, subprocess, sys, tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU = os.path.join(ROOT, "kernels", "build", "flame-worker")
CUDA = os.path.join(ROOT, "kernels", "build", "flame-worker-cuda")
EMULATED = os.path.join(ROOT, "kernels", "build", "emu", "flame-worker-cuda-emu")
EMULATED_CUBLAS = os.path.join(ROOT, "kernels", "build", "emu", "libcublas-emu.so")

MODEL = dict(vocabSize=128, hiddenSize=64, numLayers=3, numAttentionHeads=4, ffnHiddenSize=128, moeFfnHiddenSize=32,
             numExperts=8, topK=2, sharedExpertSize=48, moeLayers="[0]*1+[1]*2", seqLength=64)
TRAIN = dict(globalBatchSize=8, microBatchSize=4, trainIters=8, saveInterval=4, logInterval=4, lr=3e-3, minLr=3e-4)

results = []


def check(ok, what):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + what, flush=True)


def write_corpus(prefix, vocab, ndocs, seed=0):
    """Megatron MMIDIDX v1 (uint16) with a learnable structure: each token mostly follows from the previous."""
    rng = np.random.RandomState(seed)
    lens = rng.randint(40, 400, size=ndocs).astype(np.int32)
    n = int(lens.sum())
    noise = rng.randint(0, 4, size=n)
    data = np.zeros(n, dtype=np.uint16)
    x = 0
    for i in range(n):
        x = (x * 5 + 1 + noise[i]) % vocab
        data[i] = x
    data.tofile(prefix + ".bin")
    ptr = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) * 2
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, 8, len(lens), len(lens) + 1))
        f.write(lens.tobytes() + ptr.tobytes() + np.arange(len(lens) + 1, dtype=np.int64).tobytes())


class Run:
    def __init__(self, rc, messages, stderr):
        self.rc, self.messages, self.stderr = rc, messages, stderr

    def metric(self, name):
        return [m["value"] for m in self.messages if m.get("type") == "metric" and m.get("name") == name]

    def result(self):
        r = [m["value"] for m in self.messages if m.get("type") == "result"]
        return r[-1] if r else None


def worker(binary, command, cfg_path, *extra, env=None):
    p = subprocess.run([binary, command, "--config", cfg_path, *extra], capture_output=True, text=True,
                       env=dict(os.environ, **(env or {})))
    msgs = []
    for line in p.stdout.splitlines():
        try:
            msgs.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return Run(p.returncode, msgs, p.stderr)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def ckpt_hashes(d):
    return {f: sha(os.path.join(d, f)) for f in ("model.safetensors", "optimizer.safetensors", "state.json")}


def read_trace(path):
    b = open(path, "rb").read()
    assert b[:8] == b"FLMTRACE"
    _, nl, k, _, seq, ns = struct.unpack_from("<6I", b, 8)
    nt = struct.unpack_from("<Q", b, 32)[0]
    off = 40 + 4 * nl + 8 * ns + 4 * nt
    ids, probs = [], []
    for _ in range(nl):
        ids.append(np.frombuffer(b, dtype=np.uint8, count=nt * k, offset=off)); off += nt * k
        probs.append(np.frombuffer(b, dtype=np.float32, count=nt * k, offset=off)); off += 4 * nt * k
    return np.concatenate(ids), np.concatenate(probs)


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", help="work in DIR and keep it")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--cpu-only", action="store_true", help="run the GPU jobs on the CPU backend (checks the harness)")
    mode.add_argument("--emulated", action="store_true", help="run the GPU jobs on the CPU emulation of the CUDA backend")
    a = ap.parse_args()
    gpu_backend = "cpu" if a.cpu_only else "cuda"
    gpu_worker = EMULATED if a.emulated else CUDA
    if a.emulated:
        os.environ["FLAME_CUBLAS"] = EMULATED_CUBLAS
    for b in (CPU, gpu_worker) + ((EMULATED_CUBLAS,) if a.emulated else ()):
        if not os.path.exists(b):
            sys.exit(f"parity: {b} is missing; build with `make -C kernels all " + ("cuda-emu`" if a.emulated else "cuda`"))
    work = a.keep or tempfile.mkdtemp(prefix="flame-gpu-parity-")
    os.makedirs(work, exist_ok=True)
    prefix = os.path.join(work, "corpus")
    write_corpus(prefix, MODEL["vocabSize"], 400)

    def config(name, backend, precision="bf16", attention="flash", train=None, resume=None, extra=None):
        rt = dict(threads=4, outputDir=os.path.join(work, name), backend=backend, precision=precision, attention=attention)
        if resume:
            rt["resumeFrom"] = resume
        c = dict(model=MODEL, train=dict(TRAIN, **(train or {})), data=dict(prefix=prefix), runtime=rt,
                 eval=dict(valSamples=16, microBatchSize=4), trace=dict(numSamples=4))
        c.update(extra or {})
        path = os.path.join(work, name + ".json")
        json.dump(c, open(path, "w"), indent=1)
        return path

    def train(name, binary, backend, **kw):
        r = worker(binary, "train", config(name, backend, **kw))
        check(r.rc == 0, f"train {name} ({backend} {kw.get('precision', 'bf16')}) exits 0" + ("" if r.rc == 0 else ": " + r.stderr[-500:]))
        return r

    ref = train("cpu", CPU, "cpu")
    cpu_loss = ref.metric("loss")
    runs = {
        "fp32": (train("cuda-fp32", gpu_worker, gpu_backend, precision="fp32"), 1e-4),
        "bf16": (train("cuda-bf16", gpu_worker, gpu_backend), 3e-2),
        "bf16-plain": (train("cuda-bf16-plain", gpu_worker, gpu_backend, attention="plain"), 3e-2),
    }
    for name, (r, tol) in runs.items():
        loss = r.metric("loss")
        worst = max((rel(x, y) for x, y in zip(loss, cpu_loss)), default=float("inf"))
        check(len(loss) == len(cpu_loss) and worst <= tol,
              f"{name} losses track the CPU: worst relative difference {worst:.2e} <= {tol:g} "
              f"(gpu {['%.4f' % x for x in loss]} cpu {['%.4f' % x for x in cpu_loss]})")
    bf = runs["bf16"][0].metric("loss")
    check(len(bf) > 1 and bf[-1] < bf[0], f"bf16 training lowers the loss ({bf[0]:.4f} -> {bf[-1]:.4f})" if bf else "bf16 losses")
    aux_c, aux_g = ref.metric("aux_loss"), runs["fp32"][0].metric("aux_loss")
    check(aux_c and aux_g and max(rel(x, y) for x, y in zip(aux_g, aux_c)) <= 1e-4, "fp32 aux losses track the CPU")

    # determinism and resume on the GPU
    again = train("cuda-bf16-again", gpu_worker, gpu_backend)
    d1, d2 = os.path.join(work, "cuda-bf16", "iter_0000008"), os.path.join(work, "cuda-bf16-again", "iter_0000008")
    check(again.rc == 0 and ckpt_hashes(d1) == ckpt_hashes(d2), "two bf16 GPU runs write identical checkpoints")
    res = train("cuda-bf16-resumed", gpu_worker, gpu_backend, resume=os.path.join(work, "cuda-bf16", "iter_0000004"))
    d3 = os.path.join(work, "cuda-bf16-resumed", "iter_0000008")
    check(res.rc == 0 and os.path.isdir(d3) and ckpt_hashes(d3) == ckpt_hashes(d1),
          "resuming on the GPU from iteration 4 reproduces the uninterrupted run bitwise")

    # checkpoints across backends
    def evaluate(binary, backend, ckpt, precision="bf16"):
        r = worker(binary, "eval", config("eval-" + backend, backend, precision=precision), "--checkpoint", ckpt)
        return r.result()["loss"] if r.rc == 0 and r.result() else None

    gpu_ck, cpu_ck = d1, os.path.join(work, "cpu", "iter_0000008")
    on_cpu, on_gpu = evaluate(CPU, "cpu", gpu_ck), evaluate(gpu_worker, gpu_backend, gpu_ck)
    check(on_cpu is not None and on_gpu is not None and rel(on_gpu, on_cpu) <= 3e-2,
          f"a GPU checkpoint evaluates on the CPU: loss cpu {on_cpu} gpu {on_gpu}")
    on_cpu2, on_gpu2 = evaluate(CPU, "cpu", cpu_ck), evaluate(gpu_worker, gpu_backend, cpu_ck, precision="fp32")
    check(on_cpu2 is not None and on_gpu2 is not None and rel(on_gpu2, on_cpu2) <= 1e-5,
          f"a CPU checkpoint evaluates on the GPU (fp32): loss cpu {on_cpu2} gpu {on_gpu2}")
    x = train("cpu-to-gpu", gpu_worker, gpu_backend, resume=os.path.join(work, "cpu", "iter_0000004"))
    tail = x.metric("loss")
    worst = max((rel(p, q) for p, q in zip(tail, cpu_loss[4:])), default=float("inf"))
    check(len(tail) == 4 and worst <= 3e-2, f"a CPU checkpoint resumes training on the GPU (iterations 5-8 within {worst:.2e} of the CPU run)")

    # router traces, fp32 path
    def trace(binary, backend, precision):
        out = os.path.join(work, f"trace-{backend}-{precision}.bin")
        r = worker(binary, "trace", config("trace-" + backend, backend, precision=precision), "--checkpoint", cpu_ck, "--output", out)
        return read_trace(out) if r.rc == 0 else None

    tc, tg = trace(CPU, "cpu", "fp32"), trace(gpu_worker, gpu_backend, "fp32")
    if tc is None or tg is None:
        check(False, "trace on both backends")
    else:
        mism = np.nonzero(tc[0] != tg[0])[0]
        near = np.abs(tc[1][mism] - tg[1][mism]) <= 1e-5 * np.abs(tc[1][mism])
        prel = float(np.max(np.abs(tc[1] - tg[1]) / np.maximum(np.abs(tc[1]), 1e-30)))
        check(bool(np.all(near)), f"fp32 routing identical to the CPU: {len(mism)} of {len(tc[0])} slots differ, all near ties: {bool(np.all(near))}")
        check(prel <= 1e-5, f"fp32 router probabilities within 1e-5 of the CPU (max relative {prel:.2e})")

    # no visible GPU: a clear refusal for cuda, the CPU for auto
    hidden = dict(CUDA_VISIBLE_DEVICES="")
    r = worker(gpu_worker, "train", config("nogpu", "cuda", train=dict(trainIters=1)), env=hidden)
    check(r.rc == 2 and 'config.runtime.backend: "cuda" cannot run' in r.stderr, f"no visible GPU: --backend cuda exits 2 with a reason ({r.stderr.strip()[:160]})")
    r = worker(gpu_worker, "train", config("nogpu-auto", "auto", train=dict(trainIters=1)), env=hidden)
    check(r.rc == 0 and any("using the CPU" in m.get("message", "") for m in r.messages if m.get("type") == "log"),
          "no visible GPU: --backend auto trains on the CPU")

    passed, failed = sum(results), len(results) - sum(results)
    print(f"parity: {passed} passed, {failed} failed")
    if not a.keep and failed == 0:
        shutil.rmtree(work, ignore_errors=True)
    elif failed:
        print(f"parity: work directory kept: {work}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
