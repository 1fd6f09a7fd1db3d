#!/usr/bin/env python3
"""Training throughput and MFU of flame-worker's CUDA backend vs the same model in plain PyTorch.

For each scale (default flame-moe-38m and flame-moe-290m from kernels/data/flame-moe-scales.json:
vocab 50304, seq 2048, 64 experts top-6, shared expert, published micro-batch size), in one run:
  * flame-worker-cuda train (bf16, flash attention, deterministic) for --iters iterations of
    --micro-batches micro-batches; tokens/s = median of the per-iteration tokens_per_s after two
    warm-up iterations;
  * the same model written plainly in PyTorch on the same GPU (bf16 autocast, fp32 master weights,
    scaled_dot_product_attention, one matmul pair per expert with gather / index_add, fused AdamW,
    global-norm clipping), same batch, timed the same way.
Prints tokens/s of both, the ratio, and MFU with FLOPs counted as Megatron logs them (FLAME-MoE's
flopsLogged):
  FLOPs/iteration = 12 B s L h^2 [ (1 + g/a + s/(2h)) (q/h) + (F n_dense + (f k + f_shared) n_moe) 1.5/(L h) + V/(2 L h) ]
(no grouped-query attention here: g/a = 1, q/h = 1) against --peak (H100 / H200 dense bf16,
989 TFLOP/s).

  python3 bench/worker-cuda/bench.py [--scales flame-moe-38m,flame-moe-290m] [--iters 8] [--micro-batches 2]
                                     [--micro-batch N] [--seq 2048] [--no-torch] [--peak 989e12] [--worker PATH]

Needs a GPU, kernels/build/flame-worker-cuda (make -C kernels cuda), numpy, and torch for the peer.
--worker runs another build; with the CPU emulation (kernels/build/emu/flame-worker-cuda-emu,
FLAME_CUBLAS=kernels/build/emu/libcublas-emu.so, a short --seq and --no-torch) it checks this
script's plumbing without a GPU; its figures then mean nothing.
Outputs go to bench/out/worker-cuda/; the last line is the JSON summary.
"""
import argparse, json, math, os, statistics, struct, subprocess, sys, time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "bench", "out", "worker-cuda")
WORKER = os.path.join(ROOT, "kernels", "build", "flame-worker-cuda")
SCALES = os.path.join(ROOT, "kernels", "data", "flame-moe-scales.json")
VOCAB, SEQ, E, K = 50304, 2048, 64, 6


def model_cfg(scale, seq):
    return dict(vocabSize=VOCAB, hiddenSize=scale["hiddenSize"], numLayers=scale["numLayers"], numAttentionHeads=16,
                ffnHiddenSize=scale["ffnHiddenSize"], moeFfnHiddenSize=scale["moeFfnHiddenSize"], numExperts=E, topK=K,
                sharedExpertSize=2 * scale["moeFfnHiddenSize"], moeLayers=scale["moeLayerFreq"], seqLength=seq)


def moe_flags(m):
    """The layer pattern as booleans (Megatron's "[0]*1+[1]*8")."""
    out = []
    for term in m["moeLayers"].replace(" ", "").split("+"):
        body, _, rep = term.partition("*")
        out += [c == "1" for c in body.strip("[]").split(",")] * int(rep or 1)
    return out


def flops_logged(m, batch):
    """FLOPs of one iteration over `batch` sequences as Megatron's training log counts them."""
    h, s, L, V = m["hiddenSize"], m["seqLength"], m["numLayers"], m["vocabSize"]
    flags = moe_flags(m)
    n_moe = sum(flags)
    n_dense = L - n_moe
    ga, qh = 1.0, 1.0
    mlp = (m["ffnHiddenSize"] * n_dense + (m["moeFfnHiddenSize"] * m["topK"] + m["sharedExpertSize"]) * n_moe) * 1.5 / (L * h)
    return 12 * batch * s * L * h * h * ((1 + ga + s / (2 * h)) * qh + mlp + V / (2 * L * h))


def write_corpus(prefix, tokens, seed=0):
    if os.path.exists(prefix + ".idx"):
        return
    rng = np.random.RandomState(seed)
    lens = rng.randint(500, 5000, size=max(1, tokens // 2500)).astype(np.int32)
    rng.randint(0, VOCAB, size=int(lens.sum())).astype(np.uint16).tofile(prefix + ".bin")
    ptr = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64) * 2
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, 8, len(lens), len(lens) + 1))
        f.write(lens.tobytes() + ptr.tobytes() + np.arange(len(lens) + 1, dtype=np.int64).tobytes())


def find_cublas():
    """libcublas from this python's nvidia-cublas wheel (the worker also searches on its own)."""
    import glob
    for p in sys.path:
        for pat in ("nvidia/cu13/lib/libcublas.so.13", "nvidia/cublas/lib/libcublas.so.1[23]"):
            hits = sorted(glob.glob(os.path.join(p, pat)))
            if hits:
                return hits[0]
    return None


def run_worker(worker, name, m, mbs, micro, iters):
    prefix = os.path.join(OUT, "corpus")
    write_corpus(prefix, max(4_000_000, int(1.2 * iters * mbs * micro * (m["seqLength"] + 1) / 0.9)))
    cfg = dict(model=m, train=dict(globalBatchSize=mbs * micro, microBatchSize=mbs, trainIters=iters, saveInterval=0, logInterval=1000),
               data=dict(prefix=prefix), runtime=dict(backend="cuda", precision="bf16", attention="flash", outputDir=os.path.join(OUT, "ckpt-" + name)))
    path = os.path.join(OUT, name + ".json")
    json.dump(cfg, open(path, "w"))
    env = dict(os.environ)
    if "FLAME_CUBLAS" not in env and find_cublas():
        env["FLAME_CUBLAS"] = find_cublas()
    p = subprocess.run([worker, "train", "--config", path], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"{os.path.basename(worker)} failed on {name}:\n{p.stderr[-2000:]}")
    tps = [json.loads(l)["value"] for l in p.stdout.splitlines() if '"tokens_per_s"' in l]
    return statistics.median(tps[2:] if len(tps) > 3 else tps)


def run_torch(m, mbs, micro, iters):
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda")
    h, V, S, H = m["hiddenSize"], m["vocabSize"], m["seqLength"], m["numAttentionHeads"]
    d = h // H

    class RMSNorm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(h))

        def forward(self, x):
            xf = x.float()
            return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * self.w.to(x.dtype)

    class SwiGLU(torch.nn.Module):
        def __init__(self, f):
            super().__init__()
            self.fc1 = torch.nn.Linear(h, 2 * f, bias=False)
            self.fc2 = torch.nn.Linear(f, h, bias=False)

        def forward(self, x):
            a, b = self.fc1(x).chunk(2, dim=-1)
            return self.fc2(F.silu(a) * b)

    class MoE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.router = torch.nn.Linear(h, m["numExperts"], bias=False)
            self.experts = torch.nn.ModuleList([SwiGLU(m["moeFfnHiddenSize"]) for _ in range(m["numExperts"])])
            self.shared = SwiGLU(m["sharedExpertSize"])

        def forward(self, x):
            T = x.shape[0]
            with torch.autocast("cuda", enabled=False):
                logits = self.router(x.float())
                probs = torch.softmax(logits, dim=-1)
                gate, idx = torch.topk(probs, m["topK"], dim=-1)
            out = self.shared(x).float()
            flat = idx.reshape(-1)
            tok = torch.arange(T, device=dev).repeat_interleave(m["topK"])
            order = torch.argsort(flat, stable=True)
            counts = torch.bincount(flat, minlength=m["numExperts"])
            bounds = counts.cumsum(0).tolist()
            start = 0
            for e, end in enumerate(bounds):
                if end > start:
                    sel = order[start:end]
                    t = tok[sel]
                    y = self.experts[e](x[t]).float() * gate.reshape(-1)[sel].unsqueeze(-1)
                    out = out.index_add(0, t, y)
                start = end
            aux = 0.01 * m["numExperts"] / (T * T * m["topK"]) * (probs.sum(0) * counts.float()).sum()
            z = 0.001 * torch.logsumexp(logits, dim=-1).pow(2).mean()
            return out.to(x.dtype), aux + z

    class Block(torch.nn.Module):
        def __init__(self, is_moe):
            super().__init__()
            self.n1, self.n2 = RMSNorm(), RMSNorm()
            self.qkv = torch.nn.Linear(h, 3 * h, bias=False)
            self.proj = torch.nn.Linear(h, h, bias=False)
            self.mlp = MoE() if is_moe else SwiGLU(m["ffnHiddenSize"])
            self.is_moe = is_moe

        def forward(self, x, cos, sin):
            B, S_, _ = x.shape
            q, k, v = self.qkv(self.n1(x)).view(B, S_, 3, H, d).permute(2, 0, 3, 1, 4)

            def rope(t):
                t1, t2 = t[..., : d // 2], t[..., d // 2:]
                return torch.cat([t1 * cos - t2 * sin, t2 * cos + t1 * sin], dim=-1).to(t.dtype)

            att = F.scaled_dot_product_attention(rope(q), rope(k), v, is_causal=True)
            x = x + self.proj(att.transpose(1, 2).reshape(B, S_, h))
            y = self.n2(x)
            if self.is_moe:
                o, l = self.mlp(y.reshape(B * S_, h))
                return x + o.view(B, S_, h), l
            return x + self.mlp(y), 0.0

    class GPT(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(V, h)
            self.blocks = torch.nn.ModuleList([Block(f) for f in moe_flags(m)])
            self.norm = RMSNorm()
            self.out = torch.nn.Linear(h, V, bias=False)
            inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=dev).float() / d))
            ang = torch.arange(S, device=dev).float()[:, None] * inv[None]
            self.cos, self.sin = ang.cos(), ang.sin()

        def forward(self, tokens, targets):
            x = self.emb(tokens)
            extra = 0.0
            for b in self.blocks:
                x, l = b(x, self.cos, self.sin)
                extra = extra + l
            logits = self.out(self.norm(x)).float()
            return F.cross_entropy(logits.view(-1, V), targets.reshape(-1)) + extra

    torch.manual_seed(0)
    model = GPT().to(dev)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=3e-4, betas=(0.9, 0.999), eps=1e-8, fused=True)
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        for _ in range(micro):
            tok = torch.randint(0, V, (mbs, S + 1), device=dev)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(tok[:, :-1], tok[:, 1:]) / micro
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    del model, opt
    torch.cuda.empty_cache()
    return mbs * micro * S / statistics.median(times[2:] if len(times) > 3 else times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="flame-moe-38m,flame-moe-290m")
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--micro-batches", type=int, default=2, help="micro-batches per iteration (gradient accumulation)")
    ap.add_argument("--micro-batch", type=int, default=0, help="sequences per micro-batch (default: the published size)")
    ap.add_argument("--peak", type=float, default=989e12, help="dense bf16 peak FLOP/s (H100 / H200 SXM: 989e12)")
    ap.add_argument("--seq", type=int, default=SEQ, help="sequence length (FLAME-MoE: 2048)")
    ap.add_argument("--worker", default=WORKER, help="the worker binary (default: kernels/build/flame-worker-cuda)")
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.worker):
        sys.exit(f"{a.worker} is missing: make -C kernels cuda")
    os.makedirs(OUT, exist_ok=True)
    scales = {s["id"]: s for s in json.load(open(SCALES))["scales"]}
    rows = []
    for sid in a.scales.split(","):
        m = model_cfg(scales[sid], a.seq)
        mbs = a.micro_batch or scales[sid]["microBatchSize"]
        tokens = mbs * a.micro_batches * a.seq
        fl = flops_logged(m, mbs * a.micro_batches)
        w = run_worker(a.worker, sid, m, mbs, a.micro_batches, a.iters)
        row = dict(scale=sid, microBatch=mbs, microBatches=a.micro_batches, seq=a.seq, flopsPerIteration=fl, flopsPerToken=fl / tokens,
                   workerTokensPerS=round(w, 1), workerMfu=round(fl / tokens * w / a.peak, 4))
        if not a.no_torch:
            try:
                t = run_torch(m, mbs, a.micro_batches, a.iters)
                row.update(torchTokensPerS=round(t, 1), torchMfu=round(fl / tokens * t / a.peak, 4), ratio=round(w / t, 3))
            except Exception as e:  # the peer is optional (no torch, out of memory)
                row["torchError"] = f"{type(e).__name__}: {e}"[:300]
        rows.append(row)
        msg = f"{sid:16s} mbs {mbs:3d} x {a.micro_batches}: flame-worker {w:10.0f} tokens/s  MFU {100 * row['workerMfu']:5.1f}%"
        if "torchTokensPerS" in row:
            msg += f" | pytorch {row['torchTokensPerS']:10.0f} tokens/s  MFU {100 * row['torchMfu']:5.1f}% | ratio {row['ratio']:.2f}x"
        print(msg, flush=True)
    print(json.dumps(dict(peak=a.peak, rows=rows)))


if __name__ == "__main__":
    main()
