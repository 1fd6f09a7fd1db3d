#!/usr/bin/env python3
"""Reference sample order of a Megatron-LM data blend, for test/integration/worker/blend.test.ts.

Written from the sources FLAME-MoE pinned (yuzc19/Megatron-LM cbaf684c, megatron/core/datasets/):
BlendedMegatronDatasetBuilder (one GPTDataset per prefix and split, sizes from the normalised
weights with a 0.5% margin), BlendedDataset + helpers.cpp build_blending_indices, GPTDataset's
document / sample / shuffle indices, utils.normalize and the split matrix. Independent of the
worker: Python + numpy only, its own reader of the .bin/.idx files.

    blend_oracle.py --data-path 1.0 P1 1.0 P2 ... --split 90,5,5 --seq-length 16 --seed 1234 \
                    --sizes TRAIN,VALID,TEST --which valid [--count N]

prints one JSON object: {"size", "numSamples", "epochs", "separateFinalEpoch" (per dataset), "rows":
[{"dataset", "datasetSample", "tokens"}]} with the first N (default: all) samples of the split. --margin and --ties exist to
check that the test would notice a wrong margin or tie-break.
"""
import argparse
import json
import math
import re
import struct

import numpy

DTYPES = {1: numpy.uint8, 2: numpy.int8, 3: numpy.int16, 4: numpy.int32, 5: numpy.int64, 6: numpy.float64,
          7: numpy.float32, 8: numpy.uint16}


class Indexed:
    """MMIDIDX .idx: magic, u64 version, u8 dtype, u64 sequences, u64 documents + 1, i32 lengths,
    i64 byte pointers, i64 document indices; .bin: the tokens."""

    def __init__(self, prefix):
        with open(prefix + ".idx", "rb") as f:
            idx = f.read()
        assert idx[:9] == b"MMIDIDX\x00\x00", prefix
        (version,) = struct.unpack("<Q", idx[9:17])
        assert version == 1
        self.dtype = numpy.dtype(DTYPES[idx[17]])
        n_seq, _n_doc = struct.unpack("<QQ", idx[18:34])
        self.lengths = numpy.frombuffer(idx, dtype=numpy.int32, count=n_seq, offset=34)
        self.pointers = numpy.frombuffer(idx, dtype=numpy.int64, count=n_seq, offset=34 + 4 * n_seq)
        self.tokens = numpy.fromfile(prefix + ".bin", dtype=self.dtype)

    def get(self, seq, offset, length):
        start = int(self.pointers[seq]) // self.dtype.itemsize + offset
        return self.tokens[start:start + length]


def normalize(weights):  # utils.normalize
    w = numpy.array(weights, dtype=numpy.float64)
    return (w / numpy.sum(w)).tolist()


def split_matrix(split):  # parse_and_normalize_split + convert_split_vector_to_split_matrix
    vector = [float(x) for x in re.findall(r"[.0-9]+", split)]
    vector = normalize(vector + [0.0] * (3 - len(vector)))
    ends = [0.0]
    for share in vector:
        ends.append(ends[-1] + share)
    return [None if hi <= lo else (lo, hi) for lo, hi in zip(ends[:-1], ends[1:])]


class GPT:
    """GPTDataset over the sequences `documents` of one prefix, num_samples requested."""

    def __init__(self, data, documents, num_samples, seq, seed):
        self.data, self.seq = data, seq
        tokens_per_epoch = int(numpy.sum(data.lengths[documents]))
        epochs, have = 1, tokens_per_epoch
        while have < num_samples * seq + 1:
            epochs += 1
            have += tokens_per_epoch
        separate = False
        if epochs > 1:
            sans_final = ((epochs - 1) * tokens_per_epoch - 1) // seq
            from_final = num_samples - sans_final
            per_epoch = (tokens_per_epoch - 1) // seq
            separate = from_final < int(0.80 * per_epoch)
        self.epochs, self.separate = epochs, separate
        rng = numpy.random.RandomState(seed)

        def doc_index(n_epochs):
            a = numpy.tile(documents, n_epochs).astype(numpy.int32)
            rng.shuffle(a)
            return a

        if separate:
            self.doc = numpy.concatenate((doc_index(epochs - 1), doc_index(1)))
        else:
            self.doc = doc_index(epochs)
        # build_sample_idx: seq + 1 tokens per sample, consecutive samples share one token
        total = (epochs * tokens_per_epoch - 1) // seq
        starts = [(0, 0)]
        k, offset = 0, 0
        for _ in range(total):
            need = seq + 1
            while True:
                left = int(data.lengths[self.doc[k]]) - offset
                if left >= need:
                    offset += need - 1
                    break
                need -= left
                k, offset = k + 1, 0
            starts.append((k, offset))
        self.starts = starts
        first = sans_final if separate else total
        head = numpy.arange(first, dtype=numpy.uint32)
        rng.shuffle(head)
        if first < total:
            tail = numpy.arange(first, total, dtype=numpy.uint32)
            rng.shuffle(tail)
            head = numpy.concatenate((head, tail))
        self.shuffle = head

    def __len__(self):
        return len(self.starts) - 1

    def __getitem__(self, i):
        j = int(self.shuffle[i])
        (d0, o0), (d1, o1) = self.starts[j], self.starts[j + 1]
        parts = []
        for d in range(d0, d1 + 1):
            lo = o0 if d == d0 else 0
            hi = o1 + 1 if d == d1 else int(self.data.lengths[self.doc[d]])
            parts.append(self.data.get(int(self.doc[d]), lo, hi - lo))
        row = numpy.concatenate(parts).astype(numpy.int64).tolist()
        assert len(row) == self.seq + 1
        return row


def blend_indices(weights, size, ties):
    """build_blending_indices: the dataset furthest behind its share takes the next sample."""
    drawn = [0] * len(weights)
    out = []
    for i in range(size):
        x = max(float(i), 1.0)
        errors = [w * x - c for w, c in zip(weights, drawn)]
        best = max(errors)
        picks = [d for d, e in enumerate(errors) if e == best]
        d = picks[0] if ties == "first" else picks[-1]
        out.append((d, drawn[d]))
        drawn[d] += 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-path", nargs="+", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--seq-length", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--sizes", required=True, help="train_valid_test_num_samples, e.g. 400,60,40")
    ap.add_argument("--which", choices=["train", "valid", "test"], required=True)
    ap.add_argument("--count", type=int, default=None)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--ties", choices=["first", "last"], default="first")
    a = ap.parse_args()
    assert len(a.data_path) % 2 == 0, "weighted blends only: W1 P1 W2 P2 ..."
    weights = normalize([float(w) for w in a.data_path[0::2]])
    prefixes = a.data_path[1::2]
    sizes = [int(s) for s in a.sizes.split(",")]
    which = ["train", "valid", "test"].index(a.which)
    bookends = split_matrix(a.split)
    if bookends[which] is None:
        print(json.dumps({"error": "no %s split" % a.which}))
        return
    target = sizes[which]
    planned = [int(math.ceil(math.ceil(target * w) * (1 + 0.0 / 100))) for w in weights]
    built = [int(math.ceil(math.ceil(target * w) * (1 + a.margin / 100))) for w in weights]
    datasets = []
    for p, n_samples in zip(prefixes, built):
        data = Indexed(p)
        n = data.lengths.shape[0]
        lo, hi = bookends[which]
        docs = numpy.arange(int(round(lo * float(n))), int(round(hi * float(n))), dtype=numpy.int32)
        datasets.append(GPT(data, docs, n_samples, a.seq_length, a.seed))
    order = blend_indices(normalize(weights), sum(planned), a.ties)
    count = len(order) if a.count is None else a.count
    rows = [{"dataset": d, "datasetSample": s, "tokens": datasets[d][s]} for d, s in order[:count]]
    print(json.dumps({"size": len(order), "numSamples": built, "epochs": [g.epochs for g in datasets],
                      "separateFinalEpoch": [g.separate for g in datasets], "rows": rows}))


if __name__ == "__main__":
    main()
