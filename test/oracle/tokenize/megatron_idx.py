"""Independent writer of Megatron's MMIDIDX indexed dataset, for byte-for-byte comparisons.

Written from the format description (facts.json megatron.indexedDataset), with numpy and struct:
each non-empty document is one sequence; an empty one only repeats the document index.

usage: python3 megatron_idx.py SPEC.json   where SPEC = {"prefix", "dtype", "documents": [[ids]]}
"""
import json
import struct
import sys

import numpy as np

CODES = {"uint8": 1, "int8": 2, "int16": 3, "int32": 4, "int64": 5, "float64": 6, "float32": 7, "uint16": 8}


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    dtype = np.dtype(spec["dtype"])
    lengths, doc_idx = [], [0]
    with open(spec["prefix"] + ".bin", "wb") as bin_file:
        for doc in spec["documents"]:
            if doc:
                bin_file.write(np.array(doc, dtype=dtype).tobytes(order="C"))
                lengths.append(len(doc))
            doc_idx.append(len(lengths))
    pointers = np.zeros(len(lengths), dtype=np.int64)
    if lengths:
        pointers[1:] = np.cumsum(np.array(lengths[:-1], dtype=np.int64) * dtype.itemsize)
    with open(spec["prefix"] + ".idx", "wb") as idx:
        idx.write(b"MMIDIDX\x00\x00")
        idx.write(struct.pack("<Q", 1))
        idx.write(struct.pack("<B", CODES[spec["dtype"]]))
        idx.write(struct.pack("<Q", len(lengths)))
        idx.write(struct.pack("<Q", len(doc_idx)))
        idx.write(np.array(lengths, dtype=np.int32).tobytes(order="C"))
        idx.write(pointers.tobytes(order="C"))
        idx.write(np.array(doc_idx, dtype=np.int64).tobytes(order="C"))


if __name__ == "__main__":
    main()
