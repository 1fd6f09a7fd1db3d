#!/usr/bin/python3
"""Check the layout claims of docs/megatron-checkpoints.md by *computing* with the Megatron
tensors the way Megatron's forward code does, and with the worker tensors the way the worker's
kernels do, on random inputs — rather than by re-applying the permutations.

  check_semantics.py WORKER_CKPT_DIR MEGATRON_DIST_DIR MEGATRON_LEGACY_GROUPED_DIR

The Megatron checkpoints must be fp32 (--dtype fp32); the legacy one written with
--format legacy --experts grouped (GroupedMLP's weight1/weight2 layout).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "scripts", "megatron"))
import read_checkpoint as rc  # noqa: E402  (used only to *load* tensors, not to map them)


def megatron_qkv(x, w, n_heads, n_groups):
    """attention.py get_query_key_value_tensors: view [.., ng, (np/ng+2)*d], split [np/ng*d, d, d]."""
    d = w.shape[1] // n_heads
    mixed = x @ w.T
    mixed = mixed.view(x.shape[0], n_groups, (n_heads // n_groups + 2) * d)
    q, k, v = torch.split(mixed, [n_heads // n_groups * d, d, d], dim=2)
    return q.reshape(x.shape[0], n_heads, d), k.reshape(x.shape[0], n_groups, d), v.reshape(x.shape[0], n_groups, d)


def worker_qkv(x, w, n_heads):
    """ops/attention.cpp: q at column hd*d, k at h + hd*d, v at 2h + hd*d of the [3h] row."""
    h = w.shape[1]
    d = h // n_heads
    y = x @ w.T
    return tuple(y[:, j * h:(j + 1) * h].reshape(x.shape[0], n_heads, d) for j in range(3))


def megatron_mlp(x, fc1, fc2):
    """mlp.py MLP.forward with gated_linear_unit: glu(x) = silu(chunk(x,2)[0]) * chunk(x,2)[1]."""
    y = x @ fc1.T
    a, b = torch.chunk(y, 2, dim=-1)
    return (F.silu(a) * b) @ fc2.T


def worker_mlp(x, fc1, fc2):
    """ops/swiglu.cpp fwd_row: a[j] = silu(h[j]) * h[f + j]."""
    hh = x @ fc1.T
    f = fc1.shape[0] // 2
    return (F.silu(hh[:, :f]) * hh[:, f:]) @ fc2.T


def grouped_mlp(x, weight1, weight2, E_l, h, e):
    """experts.py GroupedMLP.forward: w1 = weight1.view(E_l, h, -1); gmm(x, w1[e]); glu; gmm(., w2[e])."""
    w1 = weight1.view(E_l, h, -1)[e]
    w2 = weight2.view(E_l, -1, h)[e]
    a, b = torch.chunk(x @ w1, 2, dim=-1)
    return (F.silu(a) * b) @ w2


def close(name, a, b):
    if not torch.allclose(a, b, rtol=1e-10, atol=1e-10):
        sys.exit(f"FAIL {name}: max diff {(a - b).abs().max().item()}")


def main(worker_dir, dist_dir, legacy_dir):
    w = {k: v.double() for k, v in rc.read_safetensors(os.path.join(worker_dir, "model.safetensors")).items()}
    args, meg = rc.read_torch_dist(rc.iteration_dir(dist_dir))
    meg = {k: v.double() for k, v in meg.items()}
    n = args.num_attention_heads
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, args.hidden_size, generator=gen, dtype=torch.float64)
    checks = 0
    for i, moe in enumerate(rc.moe_pattern(args)):
        p, q = f"decoder.layers.{i}.", f"layers.{i}."
        mq = megatron_qkv(x, meg[p + "self_attention.linear_qkv.weight"], n, n)
        wq = worker_qkv(x, w[q + "attn.qkv.weight"], n)
        for name, a, b in zip("qkv", mq, wq):
            close(f"layer {i} {name}", a, b)
        close(f"layer {i} attn_norm", meg[p + "self_attention.linear_qkv.layer_norm_weight"], w[q + "attn_norm.weight"])
        if not moe:
            close(f"layer {i} dense mlp", megatron_mlp(x, meg[p + "mlp.linear_fc1.weight"], meg[p + "mlp.linear_fc2.weight"]),
                  worker_mlp(x, w[q + "mlp.fc1.weight"], w[q + "mlp.fc2.weight"]))
        else:
            fc1, fc2 = meg[p + "mlp.experts.experts.linear_fc1.weight"], meg[p + "mlp.experts.experts.linear_fc2.weight"]
            for e in range(fc1.shape[0]):
                close(f"layer {i} expert {e}", megatron_mlp(x, fc1[e], fc2[e]),
                      worker_mlp(x, w[q + "moe.experts.fc1.weight"][e], w[q + "moe.experts.fc2.weight"][e]))
            close(f"layer {i} router", x @ meg[p + "mlp.router.weight"].T, x @ w[q + "moe.router.weight"].T)
            if q + "moe.shared.fc1.weight" in w:
                close(f"layer {i} shared", megatron_mlp(x, meg[p + "mlp.shared_experts.linear_fc1.weight"],
                                                        meg[p + "mlp.shared_experts.linear_fc2.weight"]),
                      worker_mlp(x, w[q + "moe.shared.fc1.weight"], w[q + "moe.shared.fc2.weight"]))
        checks += 1
    # Legacy GroupedMLP parameters, used the way GroupedMLP.forward uses them.
    d = rc.iteration_dir(legacy_dir)
    ranks = sorted(x for x in os.listdir(d) if x.startswith("mp_rank_"))
    for r, name in enumerate(ranks):
        sd = rc.torch_load(open(os.path.join(d, name, "model_optim_rng.pt"), "rb").read())["model"]
        for i, moe in enumerate(rc.moe_pattern(args)):
            if not moe:
                continue
            w1, w2 = sd[f"decoder.layers.{i}.mlp.experts.weight1"].double(), sd[f"decoder.layers.{i}.mlp.experts.weight2"].double()
            E_l = args.num_experts // len(ranks)
            for j in range(E_l):
                e = r * E_l + j
                close(f"legacy grouped layer {i} expert {e}", grouped_mlp(x, w1, w2, E_l, args.hidden_size, j),
                      worker_mlp(x, w[f"layers.{i}.moe.experts.fc1.weight"][e], w[f"layers.{i}.moe.experts.fc2.weight"][e]))
    print(f"ok: Megatron-style and worker-style computations agree on {checks} layers")


if __name__ == "__main__":
    main(*sys.argv[1:4])
