#!/usr/bin/python3
"""Train a tiny FLAME-MoE-shaped model with the worker for a few steps and print the
checkpoint directory it saved (input for the Megatron fixture round trip).

  make_worker_checkpoint.py WORKDIR [--shared-expert-size N] [--moe-layers PATTERN]
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
WORKER = os.path.join(REPO, "kernels", "build", "flame-worker")


def write_indexed_dataset(prefix, docs):
    """Megatron MMIDIDX .bin/.idx with uint16 tokens (as test/integration/worker/helpers.ts)."""
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    with open(prefix + ".bin", "wb") as f:
        for d in docs:
            f.write(struct.pack(f"<{len(d)}H", *d))
    with open(prefix + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00" + struct.pack("<QB", 1, 8) + struct.pack("<QQ", len(docs), len(docs) + 1))
        f.write(struct.pack(f"<{len(docs)}i", *[len(d) for d in docs]))
        ptr = 0
        for d in docs:
            f.write(struct.pack("<q", ptr))
            ptr += 2 * len(d)
        f.write(struct.pack(f"<{len(docs) + 1}q", *range(len(docs) + 1)))


def corpus(n, vocab, seed=1):
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        t = rng.randrange(1, vocab)
        d = []
        for _ in range(rng.randrange(20, 120)):
            d.append(t)
            t = (5 * t + 3) % (vocab - 1) + 1 if rng.random() < 0.9 else rng.randrange(1, vocab)
        docs.append(d + [0])
    return docs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--shared-expert-size", type=int, default=None)
    ap.add_argument("--moe-layers", default="[0]*1+[1]*2")
    ap.add_argument("--vocab-size", type=int, default=128)
    a = ap.parse_args()
    prefix = os.path.join(a.workdir, "corpus", "synthetic_text_document")
    write_indexed_dataset(prefix, corpus(300, a.vocab_size))
    model = dict(vocabSize=a.vocab_size, hiddenSize=64, numLayers=len(eval(a.moe_layers, {"__builtins__": {}})),
                 numAttentionHeads=4, ffnHiddenSize=96, moeFfnHiddenSize=32, numExperts=16, topK=2,
                 moeLayers=a.moe_layers, seqLength=32)
    if a.shared_expert_size is not None:
        model["sharedExpertSize"] = a.shared_expert_size
    cfg = dict(model=model,
               train=dict(globalBatchSize=8, microBatchSize=4, trainIters=3, saveInterval=3, logInterval=1,
                          lr=3e-3, minLr=3e-4),
               data=dict(prefix=prefix), runtime=dict(threads=2, outputDir=os.path.join(a.workdir, "run")))
    path = os.path.join(a.workdir, "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
    r = subprocess.run([WORKER, "train", "--config", path], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"worker failed ({r.returncode}): {r.stderr}")
    print(os.path.join(a.workdir, "run", "iter_0000003"))


if __name__ == "__main__":
    main()
