"""The four routing analyses written the plain way: Python loops over tokens, as a notebook would, on the
first --tokens tokens of the traces (it is slow; the benchmark scales its time per token).

    python3 routing_python.py --final FINAL.bin --checkpoint A.bin --tokens N --vocab V [--repeat R]

prints {"tokens": N, "layers": L, "times": {analysis: process CPU seconds, the best of R runs}} as JSON.
"""
import argparse
import json
import math
import time

from routing_numpy import read_trace


def saturation(current, final, ks):
    out = []
    for k in ks:
        total = 0.0
        for a, b in zip(current, final):
            total += len(set(a[:k]) & set(b[:k])) / k
        out.append(total / len(current))
    return out


def load_balance(rows, experts):
    counts = [0] * experts
    for row in rows:
        for e in row:
            counts[e] += 1
    total = sum(counts)
    mean = total / experts
    std = math.sqrt(sum((c - mean) ** 2 for c in counts) / experts)
    entropy = -sum(c / total * math.log(c / total) for c in counts if c > 0)
    return {"cv": std / mean, "entropy": entropy, "maxOverMean": max(counts) / mean}


def coactivation(rows, experts):
    both = [[0] * experts for _ in range(experts)]
    for row in rows:
        for i in row:
            for j in row:
                both[i][j] += 1
    out = []
    for i in range(experts):
        n = both[i][i]
        out.append([0.0 if i == j or n == 0 else both[i][j] / n for j in range(experts)])
    return out


def specialization(rows, tokens, experts, vocab):
    occurrences = [0] * vocab
    routed = [[0] * vocab for _ in range(experts)]
    for row, token in zip(rows, tokens):
        occurrences[token] += 1
        for e in row:
            routed[e][token] += 1
    return [[r[v] / occurrences[v] if occurrences[v] else 0.0 for v in range(vocab)] for r in routed]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--final", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--ks", default="6,4,2,1")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    final = read_trace(args.final)
    early = read_trace(args.checkpoint)
    n = min(args.tokens, len(final["tokens"]))
    layers = len(final["layers"])
    # Reading the rows into Python lists is what a notebook does first; it is not timed.
    f_rows = [final["ids"][l][:n].tolist() for l in range(layers)]
    e_rows = [early["ids"][l][:n].tolist() for l in range(layers)]
    tokens = final["tokens"][:n].tolist()

    def timed():
        times = {}
        t0 = time.process_time()
        for l in range(layers):
            # As the other implementations: every checkpoint against the final one, the final included.
            saturation(e_rows[l], f_rows[l], ks)
            saturation(f_rows[l], f_rows[l], ks)
        times["saturation"] = time.process_time() - t0
        t0 = time.process_time()
        for l in range(layers):
            load_balance(e_rows[l], final["experts"])
            load_balance(f_rows[l], final["experts"])
        times["load"] = time.process_time() - t0
        t0 = time.process_time()
        for l in range(layers):
            coactivation(f_rows[l], final["experts"])
        times["coactivation"] = time.process_time() - t0
        t0 = time.process_time()
        for l in range(layers):
            specialization(f_rows[l], tokens, final["experts"], args.vocab)
        times["specialization"] = time.process_time() - t0
        return times

    runs = [timed() for _ in range(max(1, args.repeat))]
    times = {name: min(r[name] for r in runs) for name in runs[0]}
    print(json.dumps({"tokens": n, "layers": layers, "times": times}))


if __name__ == "__main__":
    main()
