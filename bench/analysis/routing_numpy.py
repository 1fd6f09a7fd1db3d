"""The four routing analyses written directly in numpy, from their definitions (facts: routerTraces.analyses).

Used as the vectorised peer of the benchmark and as the independent computation the unit tests compare
the TypeScript implementation with. Reads the worker's trace format (kernels/README.md) on its own.

    python3 routing_numpy.py --final FINAL.bin [--checkpoint A.bin ...] [--ks 6,4,2,1] [--vocab V]
                             [--analyses saturation,load,coactivation,specialization] [--times]

prints one JSON object: the results, and with --times the process CPU seconds of each analysis.
"""
import argparse
import json
import time

import numpy as np


def read_trace(path):
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if bytes(data[:8]) != b"FLMTRACE":
        raise SystemExit(f"{path}: bad magic")
    version, layers, k, experts, seq, samples = np.frombuffer(data[8:32], dtype="<u4")
    tokens = int(np.frombuffer(data[32:40], dtype="<u8")[0])
    assert version == 1 and tokens == samples * seq
    at = 40
    layer_ids = np.frombuffer(data[at:at + 4 * layers], dtype="<u4").tolist()
    at += 4 * layers + 8 * samples
    token_ids = np.frombuffer(data[at:at + 4 * tokens], dtype="<i4")
    at += 4 * tokens
    ids = []
    for _ in range(layers):
        ids.append(np.frombuffer(data[at:at + tokens * k], dtype=np.uint8).reshape(tokens, k))
        at += tokens * k * 5
    assert at == len(data)
    return {"layers": layer_ids, "topK": int(k), "experts": int(experts), "tokens": token_ids, "ids": ids}


def saturation(current, final, ks):
    """Mean over tokens of |top_k(current) ∩ top_k(final)| / k."""
    out = []
    for k in ks:
        both = (current[:, :k, None] == final[:, None, :k]).any(axis=2).sum(axis=1)
        out.append(float((both / k).mean()))
    return out


def load_balance(ids, experts):
    counts = np.bincount(ids.ravel(), minlength=experts).astype(np.float64)
    fractions = counts / counts.sum()
    nz = fractions[fractions > 0]
    entropy = float(-(nz * np.log(nz)).sum())
    return {
        "fractions": fractions.tolist(),
        "cv": float(counts.std() / counts.mean()),
        "entropy": entropy,
        "normalizedEntropy": entropy / float(np.log(experts)),
        "maxOverMean": float(counts.max() / counts.mean()),
    }


def coactivation(ids, experts):
    """both[i, j] = tokens routed to i and j; rows divided by tokens routed to i; diagonal zeroed."""
    onehot = np.zeros((ids.shape[0], experts), dtype=np.float64)
    onehot[np.arange(ids.shape[0])[:, None], ids] = 1.0
    both = onehot.T @ onehot
    n = np.diag(both).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(n[:, None] > 0, both / n[:, None], 0.0)
    np.fill_diagonal(m, 0.0)
    return {"activations": n.tolist(), "matrix": m.tolist()}


def specialization(ids, token_ids, experts, vocab):
    """routed[e, v] = occurrences of token v routed to expert e; occurrences[v]; score = routed / occurrences."""
    occurrences = np.bincount(token_ids, minlength=vocab)
    flat = ids.astype(np.int64) * vocab + token_ids[:, None].astype(np.int64)
    routed = np.bincount(flat.ravel(), minlength=experts * vocab).reshape(experts, vocab)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(occurrences > 0, routed / np.maximum(occurrences, 1), 0.0)
    return occurrences, routed, score


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--final", required=True)
    ap.add_argument("--checkpoint", action="append", default=[])
    ap.add_argument("--ks", default="6,4,2,1")
    ap.add_argument("--vocab", type=int, default=0)
    ap.add_argument("--analyses", default="saturation,load,coactivation,specialization")
    ap.add_argument("--times", action="store_true")
    ap.add_argument("--summary-only", action="store_true", help="print checksums instead of full results")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    wanted = set(args.analyses.split(","))
    final = read_trace(args.final)
    traces = [read_trace(p) for p in args.checkpoint] + [final]
    out = {"times": {}}
    if "saturation" in wanted:
        t0 = time.process_time()
        out["saturation"] = [[saturation(t["ids"][l], final["ids"][l], ks) for t in traces] for l in range(len(final["layers"]))]
        out["times"]["saturation"] = time.process_time() - t0
    if "load" in wanted:
        t0 = time.process_time()
        out["load"] = [[load_balance(t["ids"][l], final["experts"]) for t in traces] for l in range(len(final["layers"]))]
        out["times"]["load"] = time.process_time() - t0
    if "coactivation" in wanted:
        t0 = time.process_time()
        out["coactivation"] = [coactivation(final["ids"][l], final["experts"]) for l in range(len(final["layers"]))]
        out["times"]["coactivation"] = time.process_time() - t0
    if "specialization" in wanted:
        vocab = args.vocab or int(final["tokens"].max()) + 1
        t0 = time.process_time()
        results = [specialization(final["ids"][l], final["tokens"], final["experts"], vocab) for l in range(len(final["layers"]))]
        out["times"]["specialization"] = time.process_time() - t0
        occurrences = results[0][0]
        present = np.nonzero(occurrences)[0]
        out["specialization"] = {
            "tokenIds": present.tolist(),
            "occurrences": occurrences[present].tolist(),
            # per layer, token-major rows of the present tokens, as the binary counts file stores them
            "routed": [r[1][:, present].T.ravel().tolist() for r in results],
        }
    if args.summary_only:
        for key in ("saturation", "load", "coactivation", "specialization"):
            out.pop(key, None)
    if not args.times:
        out.pop("times")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
