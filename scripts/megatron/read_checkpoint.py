#!/usr/bin/python3
"""Read a Megatron-LM checkpoint of a FLAME-MoE-shaped GPT and write the worker's tensors.

An independent check of scripts/megatron/write_checkpoint.py (it shares no code with it) and
a reference for the TypeScript importer: it follows docs/megatron-checkpoints.md only.

  read_checkpoint.py <megatron save dir or iter dir> --out model.safetensors [--compare worker.safetensors]

torch_dist: .metadata is unpickled with stand-ins found by class *name* (any module path);
each chunk is torch.load-ed from (relative_path, offset, length) and placed by its offsets;
the chunks must tile every global tensor exactly once. legacy: mp_rank_*/model_optim_rng.pt.
Then Megatron's layout is undone (qkv per-head interleave, local-spec key renames, expert
layouts) and the result written as F32 safetensors in the worker's tensor order.
--compare checks the result against a worker model.safetensors: bitwise when the checkpoint
is fp32, equal to torch's bf16 rounding of the reference when it is bf16.
"""
import argparse
import io
import json
import os
import pickle
import re
import struct
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import torch

# ---------------------------------------------------------------------------
# A permissive unpickler: known classes by name, anything else as a generic record.
# ---------------------------------------------------------------------------


class Record:
    """Generic stand-in for any class the reader does not need to understand."""

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.state = state


class TensorProperties(Record):
    def __setstate__(self, state):
        # torch's __getstate__: (dtype, layout, requires_grad, memory_format_enum, pin_memory)
        if isinstance(state, tuple):
            self.dtype, self.layout, self.requires_grad, self.memory_format, self.pin_memory = state
        else:
            self.__dict__.update(state)


def _record_class(name):
    return type(name, (Record,), {})


KNOWN = {name: _record_class(name) for name in (
    "Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata", "MetadataIndex",
    "_StorageInfo", "StorageMeta")}
KNOWN["TensorProperties"] = TensorProperties


class EnumLike(Record):
    """An enum class seen in a pickle: members come back as (class name, name or value)."""

    def __init__(self, qualname):
        self.qualname = qualname

    def __call__(self, value):
        return (self.qualname, value)


def _getattr(obj, name):
    if isinstance(obj, EnumLike):
        return (obj.qualname, name)
    return getattr(obj, name)


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if name in KNOWN:
            return KNOWN[name]
        if module in ("builtins", "__builtin__") and name == "getattr":
            # Python >= 3.11 pickles enum members as getattr(cls, name); protocol <= 2 (torch.save)
            # spells the module with its Python 2 name.
            return _getattr
        if "ENCODING" in name or name in ("WriteItemType", "AttnBackend"):
            return EnumLike(name)
        if module.startswith("torch") or module in ("collections", "argparse", "pathlib", "builtins", "_io",
                                                    "copyreg", "numpy", "numpy.core.multiarray", "_codecs"):
            try:
                return super().find_class(module, name)
            except Exception:  # noqa: BLE001 - e.g. torch 2.x-only modules, or ones that fail to import here
                pass
        return _record_class(name)


STORAGE_DTYPES = {
    "BFloat16Storage": torch.bfloat16, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "DoubleStorage": torch.float64, "ByteStorage": torch.uint8, "CharStorage": torch.int8,
    "ShortStorage": torch.int16, "IntStorage": torch.int32, "LongStorage": torch.int64, "BoolStorage": torch.bool,
}


def _rebuild_tensor(storage, storage_offset, size, stride, *rest):
    """torch._utils._rebuild_tensor_v2 over a flat storage tensor."""
    return torch.as_strided(storage, tuple(size), tuple(stride), storage_offset).clone()


class TorchZipUnpickler(Unpickler):
    """Unpickles a torch.save zip archive's data.pkl; storages come from <archive>/data/<key>."""

    def __init__(self, file, zf, prefix):
        super().__init__(file)
        self.zf, self.prefix, self.storages = zf, prefix, {}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return name  # keep the storage type as its name
        return super().find_class(module, name)

    def persistent_load(self, pid):
        kind, storage_type, key, _location, _numel = pid
        if kind != "storage":
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        if key not in self.storages:
            dtype = STORAGE_DTYPES[storage_type if isinstance(storage_type, str) else storage_type.__name__]
            raw = bytearray(self.zf.read(f"{self.prefix}data/{key}"))
            self.storages[key] = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        return self.storages[key]


def torch_load(data):
    """torch.load for a zip-format torch.save blob, without importing Megatron/TE classes.
    (Debian's torch 1.13 ignores torch.load's pickle_module argument, so this is done here.)"""
    zf = zipfile.ZipFile(io.BytesIO(data))
    pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    prefix = pkl[: -len("data.pkl")]
    order = zf.read(prefix + "byteorder").decode() if prefix + "byteorder" in zf.namelist() else "little"
    if order != "little":
        raise SystemExit(f"big-endian checkpoint blobs are not supported ({order})")
    return TorchZipUnpickler(io.BytesIO(zf.read(pkl)), zf, prefix).load()


# ---------------------------------------------------------------------------
# Locating the checkpoint
# ---------------------------------------------------------------------------


def iteration_dir(path):
    tracker = os.path.join(path, "latest_checkpointed_iteration.txt")
    if os.path.exists(tracker):
        text = open(tracker).read().strip()
        return os.path.join(path, "release" if text == "release" else f"iter_{int(text):07d}")
    return path


# ---------------------------------------------------------------------------
# torch_dist
# ---------------------------------------------------------------------------


def read_torch_dist(d):
    with open(os.path.join(d, ".metadata"), "rb") as f:
        meta = Unpickler(f).load()
    lookup = {}
    for idx, info in meta.storage_data.items():
        offset = tuple(getattr(idx, "offset", None) or ())
        lookup[(idx.fqn, offset)] = info
    tensors = OrderedDict()
    for key, md in meta.state_dict_metadata.items():
        if type(md).__name__ != "TensorStorageMetadata":
            continue  # BYTE_IO: _extra_state, rng_state
        if key.startswith("optimizer."):
            continue
        tensors[key] = assemble(d, key, md, lookup)
    common = torch_load(open(os.path.join(d, "common.pt"), "rb").read())
    return common["args"], tensors


def assemble(d, key, md, lookup):
    shape = tuple(md.size)
    dtype = md.properties.dtype
    out = torch.empty(shape, dtype=dtype)
    covered = np.zeros(shape, dtype=np.uint8)
    blobs = {}
    for ch in md.chunks:
        off, size = tuple(ch.offsets), tuple(ch.sizes)
        info = lookup[(key, off)]
        path = os.path.join(d, info.relative_path)
        if path not in blobs:
            blobs[path] = open(path, "rb").read()
        t = torch_load(blobs[path][info.offset:info.offset + info.length])
        if tuple(t.shape) != size or t.dtype != dtype:
            raise SystemExit(f"{key}: chunk at {off} holds {tuple(t.shape)} {t.dtype}, metadata says {size} {dtype}")
        region = tuple(slice(o, o + s) for o, s in zip(off, size))
        out[region] = t
        covered[region] += 1
    if covered.min() != 1 or covered.max() != 1:
        raise SystemExit(f"{key}: chunks do not tile the global shape {shape} exactly once")
    return out


# ---------------------------------------------------------------------------
# legacy
# ---------------------------------------------------------------------------


def read_legacy(d):
    """Returns args and the per-EP-rank 'model' dicts (rank order)."""
    dirs = sorted(x for x in os.listdir(d) if x.startswith("mp_rank_"))
    models, args = [], None
    for x in dirs:
        m = re.fullmatch(r"mp_rank_(\d{2})(?:_(\d{3}))?", x)
        if not m or m.group(1) != "00":
            raise SystemExit(f"unsupported legacy layout {x} (only TP=PP=1)")
        sd = torch_load(open(os.path.join(d, x, "model_optim_rng.pt"), "rb").read())
        args = sd["args"]
        models.append(sd["model"])
    return args, models


def legacy_to_sharded(args, models):
    """Bring legacy module names onto the torch_dist sharded keys and global shapes."""
    E = args.num_experts or 0
    ep = len(models)
    E_l = E // ep if E else 0
    out = OrderedDict()
    experts = {}
    for r, sd in enumerate(models):
        for k, v in sd.items():
            if not torch.is_tensor(v):
                continue  # _extra_state (io.BytesIO or None)
            m = re.fullmatch(r"(decoder\.layers\.\d+\.mlp\.experts\.)(.*)", k)
            if m:
                experts.setdefault(m.group(1), {})[(r, m.group(2))] = v
                continue
            if r == 0:
                k = k.replace(".input_layernorm.", ".self_attention.linear_qkv.layer_norm_")
                out[k] = v
    for prefix, parts in experts.items():
        fc1, fc2 = [None] * E, [None] * E
        for (r, name), v in parts.items():
            m = re.fullmatch(r"local_experts\.(\d+)\.linear_fc([12])\.weight", name) or \
                re.fullmatch(r"linear_fc([12])\.weight(\d+)", name)
            if m and name.startswith("local_experts"):
                j, which = int(m.group(1)), m.group(2)
            elif m:
                which, j = m.group(1), int(m.group(2))
            elif name in ("weight1", "weight2"):
                h = v.shape[1] if name == "weight2" else v.shape[0]
                blk = v.reshape(E_l, h, -1).transpose(1, 2) if name == "weight1" else v.reshape(E_l, -1, h).transpose(1, 2)
                for j in range(E_l):
                    (fc1 if name == "weight1" else fc2)[r * E_l + j] = blk[j]
                continue
            else:
                raise SystemExit(f"unexpected expert tensor {prefix}{name}")
            (fc1 if which == "1" else fc2)[r * E_l + j] = v
        # prefix ends in "mlp.experts.", so this yields the sharded "mlp.experts.experts." keys.
        out[prefix + "experts.linear_fc1.weight"] = torch.stack(fc1)
        out[prefix + "experts.linear_fc2.weight"] = torch.stack(fc2)
    # Legacy local spec: a dense layer's pre-MLP norm is pre_mlp_layernorm.weight (no key map).
    for k in list(out):
        m = re.fullmatch(r"decoder\.layers\.(\d+)\.pre_mlp_layernorm\.weight", k)
        if m and f"decoder.layers.{m.group(1)}.mlp.linear_fc1.weight" in out:
            out[f"decoder.layers.{m.group(1)}.mlp.linear_fc1.layer_norm_weight"] = out.pop(k)
    return out


# ---------------------------------------------------------------------------
# Megatron sharded keys -> worker tensors
# ---------------------------------------------------------------------------


def moe_pattern(args):
    freq = args.moe_layer_freq
    if not args.num_experts:
        return [False] * args.num_layers
    if isinstance(freq, int):
        return [i % freq == 0 for i in range(args.num_layers)]
    return [bool(x) for x in freq]


def layer_tensor(tensors, stacked, i, name):
    if stacked:
        return tensors["decoder.layers." + name][i]
    return tensors[f"decoder.layers.{i}.{name}"]


def qkv_to_worker(w, heads):
    three_h, h = w.shape
    return w.reshape(heads, 3, h // heads, h).transpose(0, 1).reshape(three_h, h)


def to_worker(args, tensors):
    stacked = "decoder.layers.self_attention.linear_qkv.weight" in tensors
    n = args.num_attention_heads
    out = OrderedDict()
    out["embedding.weight"] = tensors["embedding.word_embeddings.weight"]
    for i, moe in enumerate(moe_pattern(args)):
        g = lambda name: layer_tensor(tensors, stacked, i, name)  # noqa: E731
        p = f"layers.{i}."
        out[p + "attn_norm.weight"] = g("self_attention.linear_qkv.layer_norm_weight")
        out[p + "attn.qkv.weight"] = qkv_to_worker(g("self_attention.linear_qkv.weight"), n)
        out[p + "attn.proj.weight"] = g("self_attention.linear_proj.weight")
        if moe:
            # TE spec: pre_mlp_layernorm.weight; local spec renames it to mlp.linear_fc1.layer_norm_weight.
            names = [x for x in ("pre_mlp_layernorm.weight", "mlp.linear_fc1.layer_norm_weight")
                     if (f"decoder.layers.{i}.{x}" if not stacked else "decoder.layers." + x) in tensors]
            if len(names) != 1:
                raise SystemExit(f"layer {i}: expected exactly one MoE pre-MLP norm, found {names}")
            out[p + "mlp_norm.weight"] = g(names[0])
            out[p + "moe.router.weight"] = g("mlp.router.weight")
            out[p + "moe.experts.fc1.weight"] = g("mlp.experts.experts.linear_fc1.weight")
            out[p + "moe.experts.fc2.weight"] = g("mlp.experts.experts.linear_fc2.weight")
            if args.moe_shared_expert_intermediate_size:
                out[p + "moe.shared.fc1.weight"] = g("mlp.shared_experts.linear_fc1.weight")
                out[p + "moe.shared.fc2.weight"] = g("mlp.shared_experts.linear_fc2.weight")
        else:
            out[p + "mlp_norm.weight"] = g("mlp.linear_fc1.layer_norm_weight")
            out[p + "mlp.fc1.weight"] = g("mlp.linear_fc1.weight")
            out[p + "mlp.fc2.weight"] = g("mlp.linear_fc2.weight")
    out["final_norm.weight"] = tensors["decoder.final_layernorm.weight"]
    out["output.weight"] = tensors["output_layer.weight"]
    return OrderedDict((k, v.float().contiguous()) for k, v in out.items())


# ---------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for k, v in tensors.items():
        b = v.numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = OrderedDict()
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(v["shape"]).copy())
    return out


def compare(got, ref_path, bf16):
    ref = read_safetensors(ref_path)
    if set(ref) != set(got):
        raise SystemExit(f"tensor sets differ: missing {sorted(set(ref) - set(got))}, extra {sorted(set(got) - set(ref))}")
    bad = []
    for k, r in ref.items():
        want = r.to(torch.bfloat16).float() if bf16 else r
        g = got[k]
        if g.shape != want.shape or not torch.equal(g.view(torch.int32), want.contiguous().view(torch.int32)):
            bad.append(k)
    if bad:
        raise SystemExit(f"{len(bad)} tensors differ from {ref_path}: {bad[:5]}")
    print(f"ok: {len(ref)} tensors equal to {'bf16-rounded ' if bf16 else ''}{ref_path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--out", required=True)
    ap.add_argument("--compare", help="worker model.safetensors the checkpoint was written from")
    a = ap.parse_args(argv)
    d = iteration_dir(a.checkpoint)
    if os.path.exists(os.path.join(d, "metadata.json")):
        cfg = json.load(open(os.path.join(d, "metadata.json")))
        if cfg.get("sharded_backend") != "torch_dist":
            raise SystemExit(f"unsupported sharded backend {cfg.get('sharded_backend')}")
        args, tensors = read_torch_dist(d)
    else:
        args, models = read_legacy(d)
        tensors = legacy_to_sharded(args, models)
    dtypes = {v.dtype for v in tensors.values()}
    worker = to_worker(args, tensors)
    write_safetensors(a.out, worker)
    print(f"wrote {len(worker)} tensors to {a.out} (checkpoint dtype {sorted(map(str, dtypes))})")
    if a.compare:
        compare(worker, a.compare, torch.bfloat16 in dtypes)


if __name__ == "__main__":
    main()
