#!/usr/bin/python3
"""Write a Megatron-LM checkpoint of a FLAME-MoE-shaped GPT model, as test fixtures.

The layout follows docs/megatron-checkpoints.md (which cites the Megatron-core and
torch 2.x sources each rule comes from). Input is either a flame-worker checkpoint
directory (model.safetensors + state.json) or --random-init with the shape on the
command line. Output: <out>/iter_XXXXXXX/... and <out>/latest_checkpointed_iteration.txt.

Runs on Debian's python3-torch (1.13), which has no torch.distributed.checkpoint: the
.metadata pickle is produced with stand-in classes that pickle under torch 2.x's (and
Megatron's) module paths. Tensor blobs and common.pt are real torch.save archives.
"""
import argparse
import copyreg
import enum
import heapq
import io
import json
import os
import pathlib
import pickle
import random
import struct
import sys
import types
import uuid
from collections import ChainMap, OrderedDict

import numpy as np
import torch

# ---------------------------------------------------------------------------
# Stand-ins for torch 2.x / Megatron classes that only need to *pickle* right.
# pickle writes a class as (module, qualname) after checking that importing that
# module yields the same object, so each stand-in lives in a synthetic module
# registered in sys.modules under the real name.
# ---------------------------------------------------------------------------


def _module(name):
    """A synthetic module registered under `name` (created once, reused afterwards)."""
    mod = sys.modules.get(name)
    if mod is None or not getattr(mod, "_flame_standin", False):
        mod = types.ModuleType(name)
        mod._flame_standin = True
        sys.modules[name] = mod
    # pickle's import check needs the top-level package importable too (e.g. 'megatron').
    parent = name.rpartition(".")[0]
    while parent and parent not in sys.modules:
        sys.modules[parent] = types.ModuleType(parent)
        parent = parent.rpartition(".")[0]
    return mod


def _standin(module, qualname, fields, state=None):
    """A class pickled as NEWOBJ(module.qualname) + BUILD(state(obj)); state defaults to a
    dict of the fields in declaration order (what a dataclass's __dict__ would be)."""

    def __init__(self, *args, **kwargs):
        values = dict(zip(fields, args))
        values.update(kwargs)
        for f in fields:
            setattr(self, f, values.get(f))

    def __reduce_ex__(self, protocol):
        st = state(self) if state else {f: getattr(self, f) for f in fields}
        return (copyreg.__newobj__, (type(self),), st)

    cls = type(qualname, (), {"__init__": __init__, "__reduce_ex__": __reduce_ex__})
    cls.__module__ = module
    cls.__qualname__ = qualname
    setattr(_module(module), qualname, cls)
    return cls


# How enum members pickle: Python >= 3.11 writes getattr(EnumClass, 'NAME'); Python <= 3.10
# wrote EnumClass(value). Real checkpoints can hold either, so fixtures can too.
ENUM_PICKLE = {"style": "name"}


def _reduce_enum(self, protocol):
    if ENUM_PICKLE["style"] == "value":
        return (type(self), (self._value_,))
    return (getattr, (type(self), self._name_))


def _standin_enum(module, qualname, members):
    cls = enum.Enum(qualname, members, module=module, qualname=qualname)
    cls.__reduce_ex__ = _reduce_enum
    setattr(_module(module), qualname, cls)
    return cls


DCP = "torch.distributed.checkpoint"
OLD_TP = "torch.distributed._shard.sharded_tensor.metadata"


class Pickles:
    """The stand-in classes for one flavour of torch: 'new' (TensorProperties in
    torch.distributed.checkpoint.metadata, Metadata with storage_meta/version) or 'old'
    (TensorProperties in torch.distributed._shard.sharded_tensor.metadata, 3-field Metadata)."""

    def __init__(self, flavour):
        self.flavour = flavour
        md = f"{DCP}.metadata"
        tp_mod, enum_name = (md, "_MEM_FORMAT_ENCODING") if flavour == "new" else (OLD_TP, "MEM_FORMAT_ENCODING")
        self.MemFormat = _standin_enum(
            tp_mod, enum_name, [("TORCH_CONTIGUOUS_FORMAT", 0), ("TORCH_CHANNELS_LAST", 1), ("TORCH_PRESERVE_FORMAT", 2)]
        )
        # TensorProperties.__getstate__ returns a tuple because torch.memory_format can't be pickled.
        self.TensorProperties = _standin(
            tp_mod,
            "TensorProperties",
            ["dtype", "layout", "requires_grad", "memory_format", "pin_memory"],
            state=lambda o: (o.dtype, o.layout, o.requires_grad, o.memory_format, o.pin_memory),
        )
        self.ChunkStorageMetadata = _standin(md, "ChunkStorageMetadata", ["offsets", "sizes"])
        self.TensorStorageMetadata = _standin(md, "TensorStorageMetadata", ["properties", "size", "chunks"])
        self.BytesStorageMetadata = _standin(md, "BytesStorageMetadata", [])
        meta_fields = ["state_dict_metadata", "planner_data", "storage_data"]
        if flavour == "new":
            meta_fields += ["storage_meta", "version"]
            self.StorageMeta = _standin(md, "StorageMeta", ["checkpoint_id", "save_id", "load_id", "modules"])
        # Megatron sets mcore_data and all_local_plans as extra attributes after creation.
        self.Metadata = _standin(md, "Metadata", meta_fields + ["mcore_data", "all_local_plans"])
        # MetadataIndex.__init__ sets fqn, index, then offset only when given.
        self.MetadataIndex = _standin(
            md,
            "MetadataIndex",
            ["fqn", "offset", "index"],
            state=lambda o: {"fqn": o.fqn, "index": o.index, **({"offset": o.offset} if o.offset is not None else {})},
        )
        # Newer torch drops None fields (transform_descriptors) in __getstate__.
        self.StorageInfo = _standin(f"{DCP}.filesystem", "_StorageInfo", ["relative_path", "offset", "length"])
        pl = f"{DCP}.planner"
        self.WriteItemType = _standin_enum(pl, "WriteItemType", [("TENSOR", 1), ("SHARD", 2), ("BYTE_IO", 3)])
        self.TensorWriteData = _standin(pl, "TensorWriteData", ["chunk", "properties", "size"])
        self.WriteItem = _standin(pl, "WriteItem", ["index", "type", "tensor_data"])
        plan_fields = ["items", "storage_data", "planner_data"] + (["usable"] if flavour == "new" else []) + ["mcore_data"]
        self.MCoreSavePlan = _standin("megatron.core.dist_checkpointing.strategies.torch", "MCoreSavePlan", plan_fields)


class AttnBackend(enum.Enum):
    """Megatron's enum stored in args.attention_backend (pickled by module path)."""

    flash = 1
    fused = 2
    unfused = 3
    local = 4
    auto = 5


AttnBackend.__module__ = "megatron.core.transformer.enums"
AttnBackend.__reduce_ex__ = _reduce_enum
setattr(_module("megatron.core.transformer.enums"), "AttnBackend", AttnBackend)

# ---------------------------------------------------------------------------
# Input: a worker checkpoint, or seeded random weights.
# ---------------------------------------------------------------------------


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = OrderedDict()
    for name, info in sorted(((k, v) for k, v in header.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]):
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).copy())
    return out


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for k, v in tensors.items():
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + 4 * v.numel()]}
        offset += 4 * v.numel()
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for v in tensors.values():
            f.write(v.float().contiguous().numpy().astype("<f4").tobytes())


def load_worker(ckpt_dir):
    with open(os.path.join(ckpt_dir, "state.json")) as f:
        state = json.load(f)
    cfg = dict(state["model"])
    return cfg, read_safetensors(os.path.join(ckpt_dir, "model.safetensors"))


def worker_tensor_shapes(cfg):
    """Worker tensor names and shapes, in kernels/src/model.cpp Model::Model order."""
    h, V = cfg["hiddenSize"], cfg["vocabSize"]
    shapes = OrderedDict([("embedding.weight", (V, h))])
    for l, moe in enumerate(cfg["moeLayers"]):
        p = f"layers.{l}."
        shapes[p + "attn_norm.weight"] = (h,)
        shapes[p + "attn.qkv.weight"] = (3 * h, h)
        shapes[p + "attn.proj.weight"] = (h, h)
        shapes[p + "mlp_norm.weight"] = (h,)
        if moe:
            E, F, S = cfg["numExperts"], cfg["moeFfnHiddenSize"], cfg["sharedExpertSize"]
            shapes[p + "moe.router.weight"] = (E, h)
            shapes[p + "moe.experts.fc1.weight"] = (E, 2 * F, h)
            shapes[p + "moe.experts.fc2.weight"] = (E, h, F)
            if S > 0:
                shapes[p + "moe.shared.fc1.weight"] = (2 * S, h)
                shapes[p + "moe.shared.fc2.weight"] = (h, S)
        else:
            f = cfg["ffnHiddenSize"]
            shapes[p + "mlp.fc1.weight"] = (2 * f, h)
            shapes[p + "mlp.fc2.weight"] = (h, f)
    shapes["final_norm.weight"] = (h,)
    shapes["output.weight"] = (V, h)
    return shapes


def random_worker(a):
    L = a.num_layers
    pattern = eval(a.moe_layers, {"__builtins__": {}}) if a.moe_layers else [0] + [1] * (L - 1)  # noqa: S307 - a list literal
    cfg = dict(
        vocabSize=a.vocab_size, hiddenSize=a.hidden_size, numLayers=L, numAttentionHeads=a.num_attention_heads,
        ffnHiddenSize=a.ffn_hidden_size, moeFfnHiddenSize=a.moe_ffn_hidden_size, numExperts=a.num_experts,
        topK=a.topk, sharedExpertSize=2 * a.moe_ffn_hidden_size if a.shared_expert_size is None else a.shared_expert_size,
        moeLayers=[bool(x) for x in pattern], seqLength=a.seq_length, ropeBase=a.rope_base, normEps=a.norm_eps,
        initStd=0.02, auxLossCoeff=0.01, zLossCoeff=0.001,
    )
    gen = torch.Generator().manual_seed(a.seed)
    tensors = OrderedDict()
    for name, shape in worker_tensor_shapes(cfg).items():
        if name.endswith("norm.weight"):
            tensors[name] = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        else:
            tensors[name] = 0.02 * torch.randn(shape, generator=gen)
    return cfg, tensors


def check_input(cfg, tensors):
    want = worker_tensor_shapes(cfg)
    if list(tensors) != list(want) and set(tensors) != set(want):
        missing, extra = set(want) - set(tensors), set(tensors) - set(want)
        raise SystemExit(f"worker tensors do not match the config: missing {sorted(missing)}, unexpected {sorted(extra)}")
    for k, s in want.items():
        if tuple(tensors[k].shape) != s:
            raise SystemExit(f"worker tensor {k} has shape {tuple(tensors[k].shape)}, config says {s}")


# ---------------------------------------------------------------------------
# Megatron's view of the model: sharded tensors (with chunks) and sharded objects.
# ---------------------------------------------------------------------------


class Chunk:
    """One ShardedTensor shard: global offset, data (chunk shape incl. prepended axes), the ranks
    holding a replica of it, and optionally a flattened range (optimizer state)."""

    def __init__(self, offset, data, holders, flat=None):
        self.offset, self.data, self.holders, self.flat = tuple(offset), data, list(holders), flat
        self.writer = None

    @property
    def sizes(self):
        return tuple(self.data.shape)

    def nbytes(self):
        return self.data.numel() * self.data.element_size()

    def shard_id(self, key):
        return (key, self.offset, None if self.flat is None else self.flat)


class ShTensor:
    def __init__(self, key, global_shape, chunks, mcore=None):
        self.key, self.global_shape, self.chunks, self.mcore = key, tuple(global_shape), chunks, mcore or {}


class ShObject:
    """A ShardedObject: stored as BYTE_IO under `key/shard_<offset>_<shape>` = torch.save([data])."""

    def __init__(self, key, data, offset, shape, writer):
        self.key = f"{key}/shard_{'.'.join(map(str, offset))}_{'.'.join(map(str, shape))}"
        self.data, self.writer = data, writer

    def payload(self):
        buf = io.BytesIO()
        torch.save([self.data], buf)
        return buf.getvalue()


def qkv_to_megatron(w, heads):
    """Worker rows [q heads; k heads; v heads] -> Megatron per-head [q_i; k_i; v_i] (no GQA)."""
    three_h, h = w.shape
    d = h // heads
    return w.reshape(3, heads, d, h).transpose(0, 1).reshape(three_h, h).contiguous()


def te_extra_state():
    """TE 1.x linears' get_extra_state(): an io.BytesIO holding torch.save(None) when not fp8."""
    buf = io.BytesIO()
    torch.save(None, buf)
    buf.seek(0)
    return buf


class Builder:
    """Produces the ordered list of ShTensor/ShObject entries one Megatron save would write,
    for a world of `world` ranks (TP = PP = 1, DP = world, EP = ep; ep rank = rank % ep)."""

    def __init__(self, cfg, tensors, o):
        self.cfg, self.w, self.o = cfg, tensors, o
        self.L = cfg["numLayers"]
        self.E = cfg["numExperts"]
        self.world, self.ep = o.world, o.ep
        self.E_l = self.E // self.ep if self.E else 0
        self.stacked = o.layer_keys == "stacked"
        self.entries = []

    # -- placement helpers
    def all_ranks(self):
        return list(range(self.world))

    def ep_ranks(self, r):
        """Ranks holding EP rank r's experts (one per expert-data-parallel replica)."""
        return [q for q in range(self.world) if q % self.ep == r]

    def cast(self, t):
        return t.to(self.o.torch_dtype).contiguous()

    def layer_axes(self, i):
        """(prefix for the key, prepended (offset, size) list) for layer i."""
        if self.stacked:
            return "decoder.layers.", [(i, self.L)]
        return f"decoder.layers.{i}.", []

    def add_tensor(self, key, t, pre=(), holders=None, swiglu=False):
        """A replicated (non-expert) tensor, optionally split in its two SwiGLU halves."""
        holders = holders if holders is not None else self.all_ranks()
        pre = list(pre)
        t = self.cast(t)
        view = t.reshape((1,) * len(pre) + tuple(t.shape))
        base = [o for o, _ in pre]
        shape = [s for _, s in pre] + list(t.shape)
        if swiglu:
            half = t.shape[0] // 2
            chunks = [
                Chunk(base + [0] + [0] * (t.dim() - 1), view.narrow(len(pre), 0, half).clone(), holders),
                Chunk(base + [half] + [0] * (t.dim() - 1), view.narrow(len(pre), half, half).clone(), holders),
            ]
        else:
            chunks = [Chunk(base + [0] * t.dim(), view, holders)]
        self.entries.append(ShTensor(key, shape, chunks))

    def add_object(self, key, data, pre=(), writer=0):
        pre = list(pre)
        offset = [o for o, _ in pre] or [0]
        shape = [s for _, s in pre] or [1]
        self.entries.append(ShObject(key, data, offset, shape, writer))

    def extra_state(self, key, pre=(), writer=0):
        if self.o.spec == "te":
            self.add_object(key, te_extra_state(), pre, writer)
        else:
            self.add_object(key, None, pre, writer)

    # -- model
    def build(self):
        cfg, w = self.cfg, self.w
        self.add_tensor("embedding.word_embeddings.weight", w["embedding.weight"])
        for i, moe in enumerate(cfg["moeLayers"]):
            self.build_layer(i, moe)
        self.add_tensor("decoder.final_layernorm.weight", w["final_norm.weight"])
        self.add_tensor("output_layer.weight", w["output.weight"])
        for key in self.o.extra_tensor:
            self.add_tensor(key, torch.zeros(cfg["hiddenSize"]))
        if self.o.with_optimizer:
            self.build_optimizer()
        # get_rng_state(use_dist_ckpt=True): ShardedObject('rng_state', ..., (pp, tp) shape/offset).
        self.add_object("rng_state", [self.rng_state()], pre=[(0, 1), (0, 1)], writer=0)

    def build_layer(self, i, moe):
        w, o, p = self.w, self.o, f"layers.{i}."
        prefix, pre = self.layer_axes(i)
        te = o.spec == "te"
        # Attention. Module order in SelfAttention: core_attention, linear_proj, linear_qkv.
        if te:
            self.extra_state(prefix + "self_attention.core_attention._extra_state", pre)
        self.add_tensor(prefix + "self_attention.linear_proj.weight", w[p + "attn.proj.weight"], pre)
        self.extra_state(prefix + "self_attention.linear_proj._extra_state", pre)
        # The local spec's key map renames input_layernorm.* to linear_qkv.layer_norm_*.
        self.add_tensor(prefix + "self_attention.linear_qkv.layer_norm_weight", w[p + "attn_norm.weight"], pre)
        qkv = qkv_to_megatron(w[p + "attn.qkv.weight"], self.cfg["numAttentionHeads"])
        self.add_tensor(prefix + "self_attention.linear_qkv.weight", qkv, pre)
        self.extra_state(prefix + "self_attention.linear_qkv._extra_state", pre)
        if not moe:
            # Dense MLP: TE fuses the pre-MLP norm into linear_fc1; the local spec renames
            # pre_mlp_layernorm.* to mlp.linear_fc1.layer_norm_* - same key either way.
            self.add_tensor(prefix + "mlp.linear_fc1.layer_norm_weight", w[p + "mlp_norm.weight"], pre)
            self.add_tensor(prefix + "mlp.linear_fc1.weight", w[p + "mlp.fc1.weight"], pre, swiglu=True)
            self.extra_state(prefix + "mlp.linear_fc1._extra_state", pre)
            self.add_tensor(prefix + "mlp.linear_fc2.weight", w[p + "mlp.fc2.weight"], pre)
            self.extra_state(prefix + "mlp.linear_fc2._extra_state", pre)
            return
        # MoE layer: TE keeps pre_mlp_layernorm as its own module; the local spec's key map
        # renames it to mlp.linear_fc1.layer_norm_weight even though a MoE layer has no linear_fc1.
        norm_key = "pre_mlp_layernorm.weight" if te else "mlp.linear_fc1.layer_norm_weight"
        self.add_tensor(prefix + norm_key, w[p + "mlp_norm.weight"], pre)
        self.add_tensor(prefix + "mlp.router.weight", w[p + "moe.router.weight"], pre)
        self.build_experts(prefix, pre, w[p + "moe.experts.fc1.weight"], w[p + "moe.experts.fc2.weight"])
        if self.cfg["sharedExpertSize"] > 0:
            self.add_tensor(prefix + "mlp.shared_experts.linear_fc1.weight", w[p + "moe.shared.fc1.weight"], pre, swiglu=True)
            self.extra_state(prefix + "mlp.shared_experts.linear_fc1._extra_state", pre)
            self.add_tensor(prefix + "mlp.shared_experts.linear_fc2.weight", w[p + "moe.shared.fc2.weight"], pre)
            self.extra_state(prefix + "mlp.shared_experts.linear_fc2._extra_state", pre)

    def build_experts(self, prefix, pre, fc1, fc2):
        """experts.experts.linear_fc{1,2}.weight with an expert axis after the layer axis."""
        E, E_l, F = self.E, self.E_l, fc2.shape[2]
        h = fc1.shape[2]
        base = [o for o, _ in pre]
        dims = [s for _, s in pre]
        k1, k2 = prefix + "mlp.experts.experts.linear_fc1.weight", prefix + "mlp.experts.experts.linear_fc2.weight"
        lead = (1,) * len(pre)
        c1, c2 = [], []
        if self.o.experts == "grouped":
            # Legacy GroupedMLP: one chunk per EP rank, the expert axis a real axis of the chunk.
            for r in range(self.ep):
                blk1 = self.cast(fc1[r * E_l:(r + 1) * E_l]).reshape(lead + (E_l, 2 * F, h))
                blk2 = self.cast(fc2[r * E_l:(r + 1) * E_l]).reshape(lead + (E_l, h, F))
                holders = self.ep_ranks(r)
                ax = len(pre) + 1
                c1.append(Chunk(base + [r * E_l, 0, 0], blk1.narrow(ax, 0, F).clone(), holders))
                c1.append(Chunk(base + [r * E_l, F, 0], blk1.narrow(ax, F, F).clone(), holders))
                c2.append(Chunk(base + [r * E_l, 0, 0], blk2, holders))
        else:
            # SequentialMLP / TEGroupedMLP: one prepended expert axis, two SwiGLU halves per expert.
            for e in range(E):
                holders = self.ep_ranks(e // E_l)
                t1 = self.cast(fc1[e]).reshape(lead + (1, 2 * F, h))
                ax = len(pre) + 1
                c1.append(Chunk(base + [e, 0, 0], t1.narrow(ax, 0, F).clone(), holders))
                c1.append(Chunk(base + [e, F, 0], t1.narrow(ax, F, F).clone(), holders))
                c2.append(Chunk(base + [e, 0, 0], self.cast(fc2[e]).reshape(lead + (1, h, F)), holders))
        self.entries.append(ShTensor(k1, dims + [E, 2 * F, h], c1))
        self.entries.append(ShTensor(k2, dims + [E, h, F], c2))
        # Per-expert extra states (ShardedObject offsets = layer axis + expert axis); written by
        # the expert-data-parallel rank 0 of the owning EP rank, i.e. rank == ep rank.
        te_states = self.o.spec == "te" and self.o.experts != "grouped"
        for e in range(E):
            for mod in ("linear_fc1", "linear_fc2"):
                data = te_extra_state() if te_states else None
                self.add_object(prefix + f"mlp.experts.experts.{mod}._extra_state", data, pre + [(e, E)], writer=e // E_l)

    def build_optimizer(self):
        """Distributed optimizer, fully_sharded_model_space: per model shard, fp32_param /
        exp_avg / exp_avg_sq flattened and split between the shard's holders (each DP rank owns a
        contiguous slice), with the N-D reformulated global shape."""
        model = [e for e in self.entries if isinstance(e, ShTensor)]
        gen = torch.Generator().manual_seed(1234)
        for state in ("fp32_param", "exp_avg", "exp_avg_sq"):
            for st in model:
                chunks = []
                frags = None
                for c in st.chunks:
                    frags = tuple(g // s for g, s in zip(st.global_shape, c.sizes))
                    local_numel = c.data.numel()
                    flat = c.data.float().reshape(-1)
                    if state != "fp32_param":
                        flat = torch.rand(local_numel, generator=gen) * (1e-3 if state == "exp_avg" else 1e-6)
                    parts = np.array_split(np.arange(local_numel), len(c.holders))
                    for owner, idx in zip(c.holders, parts):
                        if len(idx) == 0:
                            continue
                        a, b = int(idx[0]), int(idx[-1]) + 1
                        off = tuple(o // s for o, s in zip(c.offset, c.sizes)) + (a,)
                        data = flat[a:b].clone().reshape((1,) * len(c.sizes) + (b - a,))
                        chunks.append(Chunk(off, data, [owner], flat=(a, b)))
                shape = frags + (int(np.prod(st.chunks[0].sizes)),)
                self.entries.append(ShTensor(f"optimizer.state.{state}.{st.key}", shape, chunks,
                                             mcore={"nd_reformulated_orig_global_shape": st.global_shape}))

    def rng_state(self):
        return {
            "random_rng_state": random.Random(self.o.seed).getstate(),
            "np_rng_state": np.random.RandomState(self.o.seed).get_state(),
            "torch_rng_state": torch.Generator().manual_seed(self.o.seed).get_state(),
            "cuda_rng_state": torch.zeros(16, dtype=torch.uint8),
            "rng_tracker_states": {},
        }


def assign_writers(entries, world, fully_parallel):
    """Pick the rank that writes each shard (its 'main replica').

    Fully parallel save (Megatron's default): shards sorted by (#holders, -bytes, shard id) go
    greedily to the least-loaded holder (exchange_utils.distribute_shards_to_ranks). Otherwise the
    first holder writes (DP rank 0 for replicated tensors, the expert-DP rank 0 for experts)."""
    shards = [(st.key, c) for st in entries if isinstance(st, ShTensor) for c in st.chunks]
    if not fully_parallel or world == 1:
        for _, c in shards:
            c.writer = c.holders[0]
        return
    load = [0] * world
    for key, c in sorted(shards, key=lambda kc: (len(kc[1].holders), -kc[1].nbytes(), kc[1].shard_id(kc[0]))):
        size, rank = min((load[r], r) for r in c.holders)
        c.writer = rank
        load[rank] = size + c.nbytes()


# ---------------------------------------------------------------------------
# torch_dist output
# ---------------------------------------------------------------------------


def tensor_blob(t):
    buf = io.BytesIO()
    torch.save(t, buf)
    return buf.getvalue()


def split_buckets(items, bins=2):
    """filesystem_async._split_by_size_and_type: bytes round-robin, tensors largest first onto the
    lightest bucket (min-heap of (bytes, bucket))."""
    buckets = [[] for _ in range(bins)]
    byte_items = [it for it in items if it["kind"] == "bytes"]
    tensor_items = [it for it in items if it["kind"] == "tensor"]
    for i, it in enumerate(byte_items):
        buckets[i % bins].append(it)
    heap = [(0, i) for i in range(bins)]
    for it in sorted(tensor_items, key=lambda it: it["nbytes"], reverse=True):
        size, b = heapq.heappop(heap)
        buckets[b].append(it)
        heapq.heappush(heap, (size + it["nbytes"], b))
    return buckets


def rank_items(entries, rank):
    """This rank's write items, in state-dict order (what MCoreSavePlanner.create_local_plan sees)."""
    items = []
    for e in entries:
        if isinstance(e, ShObject):
            if e.writer == rank:
                items.append(dict(kind="bytes", fqn=e.key, entry=e))
        else:
            for c in e.chunks:
                if c.writer == rank:
                    items.append(dict(kind="tensor", fqn=e.key, entry=e, chunk=c, nbytes=c.nbytes()))
    return items


def write_torch_dist(iter_dir, entries, world, P, flavour):
    props = {}

    def properties(dtype):
        if dtype not in props:
            props[dtype] = P.TensorProperties(dtype, torch.strided, False, P.MemFormat(0), False)
        return props[dtype]

    def write_item(it):
        if it["kind"] == "bytes":
            return P.WriteItem(P.MetadataIndex(it["fqn"]), P.WriteItemType(3), None)
        c, st = it["chunk"], it["entry"]
        return P.WriteItem(
            P.MetadataIndex(it["fqn"], torch.Size(c.offset)), P.WriteItemType(2),
            P.TensorWriteData(P.ChunkStorageMetadata(torch.Size(c.offset), torch.Size(c.sizes)),
                              properties(c.data.dtype), torch.Size(st.global_shape)),
        )

    plans, storage_data = [], {}
    for rank in range(world):
        items = rank_items(entries, rank)
        mcore = {it["fqn"]: it["entry"].mcore for it in items if it["kind"] == "tensor"}
        plan = [P.MCoreSavePlan(items=[write_item(it) for it in items], storage_data=None, planner_data={},
                                mcore_data=mcore)]
        if flavour == "new":
            plan[0].usable = True
        plans.append((items, plan[0]))
        count = 0
        for bucket in split_buckets(items):
            if not bucket:
                continue
            name = f"__{rank}_{count}.distcp"
            count += 1
            with open(os.path.join(iter_dir, name), "wb") as f:
                # write_preloaded_data: all BYTE_IO items first, then the tensors.
                for it in [b for b in bucket if b["kind"] == "bytes"] + [b for b in bucket if b["kind"] == "tensor"]:
                    blob = it["entry"].payload() if it["kind"] == "bytes" else tensor_blob(it["chunk"].data)
                    offset = f.tell()
                    f.write(blob)
                    idx = (P.MetadataIndex(it["fqn"]) if it["kind"] == "bytes"
                           else P.MetadataIndex(it["fqn"], torch.Size(it["chunk"].offset)))
                    storage_data[idx] = P.StorageInfo(name, offset, len(blob))

    # create_default_global_save_plan: metadata per fqn in (rank, item) order.
    sdm = {}
    for items, _ in plans:
        for it in items:
            if it["kind"] == "bytes":
                sdm.setdefault(it["fqn"], P.BytesStorageMetadata())
                continue
            st, c = it["entry"], it["chunk"]
            md = sdm.setdefault(it["fqn"], P.TensorStorageMetadata(properties(c.data.dtype), torch.Size(st.global_shape), []))
            md.chunks.append(P.ChunkStorageMetadata(torch.Size(c.offset), torch.Size(c.sizes)))
    meta = dict(state_dict_metadata=sdm, planner_data=None, storage_data=storage_data,
                mcore_data=dict(ChainMap(*(plan.mcore_data for _, plan in plans))),
                all_local_plans=[plan for _, plan in plans])
    if flavour == "new":
        meta["storage_meta"] = P.StorageMeta(pathlib.PosixPath(os.path.abspath(iter_dir)), str(uuid.uuid4()), None, [])
        meta["version"] = None
    with open(os.path.join(iter_dir, ".metadata"), "wb") as f:
        pickle.dump(P.Metadata(**meta), f)  # default protocol, as FileSystemWriter.finish does
    with open(os.path.join(iter_dir, "metadata.json"), "w") as f:
        json.dump({"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                   "common_backend": "torch", "common_backend_version": 1}, f)


# ---------------------------------------------------------------------------
# Megatron args (common.pt / model_optim_rng.pt 'args')
# ---------------------------------------------------------------------------


def megatron_args(cfg, o):
    moe = any(cfg["moeLayers"])
    pattern = [int(x) for x in cfg["moeLayers"]]
    if o.layer_keys == "stacked":
        # Megatron stacks layer keys only for homogeneous blocks: moe_layer_freq == 1 (all MoE) or
        # no MoE at all; a list or an int > 1 always gives per-layer keys (TransformerBlock).
        if len(set(pattern)) != 1:
            raise SystemExit("--layer-keys stacked needs a homogeneous model (every layer MoE, or none): Megatron "
                             f"writes per-layer keys whenever dense and MoE layers mix (moeLayers {pattern})")
        freq = 1
    else:
        freq = pattern
    V = cfg["vocabSize"]
    h, heads = cfg["hiddenSize"], cfg["numAttentionHeads"]
    bf16 = o.dtype == "bf16"
    a = dict(
        # model shape
        num_layers=cfg["numLayers"], hidden_size=h, ffn_hidden_size=cfg["ffnHiddenSize"] or 4 * h,
        num_attention_heads=heads, kv_channels=h // heads, group_query_attention=False, num_query_groups=1,
        max_position_embeddings=cfg["seqLength"], seq_length=cfg["seqLength"], encoder_seq_length=cfg["seqLength"],
        padded_vocab_size=V, vocab_size=V, make_vocab_size_divisible_by=128 if V % 128 == 0 else 1,
        position_embedding_type="rope", use_rotary_position_embeddings=False, rotary_base=int(cfg["ropeBase"]),
        rotary_percent=1.0, rotary_interleaved=False, rotary_seq_len_interpolation_factor=None,
        use_rope_scaling=False, rope_scaling_factor=8.0, apply_rope_fusion=True, add_position_embedding=True,
        normalization="RMSNorm", norm_epsilon=cfg["normEps"], apply_layernorm_1p=False,
        apply_residual_connection_post_layernorm=False, qk_layernorm=False, swiglu=True, squared_relu=False,
        openai_gelu=False, onnx_safe=None, bias_gelu_fusion=False, bias_swiglu_fusion=True,
        add_bias_linear=False, add_qkv_bias=False, untie_embeddings_and_output_weights=True,
        multi_latent_attention=False, attention_backend=AttnBackend.auto, hidden_dropout=0.0,
        attention_dropout=0.0, init_method_std=0.02, attention_softmax_in_fp32=False,
        apply_query_key_layer_scaling=False,
        # MoE
        num_experts=cfg["numExperts"] if moe else None, moe_ffn_hidden_size=cfg["moeFfnHiddenSize"] if moe else None,
        moe_router_topk=cfg["topK"] if moe else 2, moe_layer_freq=freq,
        moe_shared_expert_intermediate_size=(cfg["sharedExpertSize"] or None) if moe else None,
        moe_shared_expert_overlap=False, moe_grouped_gemm=o.experts != "sequential",
        moe_use_legacy_grouped_gemm=o.experts == "grouped", moe_router_load_balancing_type="aux_loss",
        moe_router_dtype="fp32", moe_router_score_function="softmax", moe_router_pre_softmax=True,
        moe_router_num_groups=None, moe_router_group_topk=None, moe_router_topk_scaling_factor=None,
        moe_router_enable_expert_bias=False, moe_router_bias_update_rate=1e-3,
        moe_aux_loss_coeff=cfg.get("auxLossCoeff", 0.01), moe_z_loss_coeff=cfg.get("zLossCoeff", 0.001),
        moe_input_jitter_eps=None, moe_token_dispatcher_type="alltoall", moe_expert_capacity_factor=None,
        moe_pad_expert_input_to_capacity=False, moe_token_drop_policy="probs", moe_layer_recompute=False,
        moe_per_layer_logging=False, moe_enable_deepep=False,
        # implementation / parallelism / precision
        transformer_impl="transformer_engine" if o.spec == "te" else "local", use_legacy_models=False,
        spec=None, tensor_model_parallel_size=1, pipeline_model_parallel_size=1,
        expert_model_parallel_size=o.ep, expert_tensor_parallel_size=1, context_parallel_size=1,
        sequence_parallel=False, world_size=o.world, data_parallel_size=o.world, rank=0,
        virtual_pipeline_model_parallel_size=None, use_distributed_optimizer=True, overlap_grad_reduce=True,
        overlap_param_gather=True, bf16=bf16, fp16=False, fp8=None,
        params_dtype=torch.bfloat16 if bf16 else torch.float32, accumulate_allreduce_grads_in_fp32=True,
        # training
        micro_batch_size=32, global_batch_size=1024, lr=3e-4, min_lr=3e-5, lr_decay_style="WSD",
        lr_warmup_fraction=0.01, train_iters=o.iteration, weight_decay=0.01, adam_beta1=0.9,
        adam_beta2=0.999, adam_eps=1e-8, clip_grad=1.0, seed=1234, optimizer="adam",
        # tokenizer
        tokenizer_type="HuggingFaceTokenizer", tokenizer_model="EleutherAI/pythia-12b",
        # checkpointing
        ckpt_format=o.format, use_dist_ckpt=o.format == "torch_dist",
        ckpt_fully_parallel_save=o.fully_parallel, ckpt_fully_parallel_load=False,
        ckpt_assume_constant_structure=False, async_save=None, save=None, load=None,
        save_interval=o.iteration, no_save_optim=not o.with_optimizer, no_save_rng=False,
        iteration=o.iteration, consumed_train_samples=o.iteration * 1024, consumed_valid_samples=0,
    )
    for item in o.override_arg:
        name, _, value = item.partition("=")
        a[name] = parse_value(value)
    return argparse.Namespace(**a)


def parse_value(text):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def common_state(cfg, o):
    state = {"args": megatron_args(cfg, o), "checkpoint_version": 3.0, "iteration": o.iteration}
    if o.with_optimizer:
        state["optimizer"] = {
            "optimizer": {"param_groups": [
                {"lr": 3e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": wd, "amsgrad": False,
                 "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                 "fused": None, "wd_mult": wd_mult, "lr_mult": 1.0, "is_expert_parallel": False,
                 "is_decoupled_lr": False, "step": o.iteration, "params": []}
                for wd, wd_mult in ((0.01, 1.0), (0.0, 0.0))]},
            "param_state_sharding_type": "fully_sharded_model_space",
        }
        state["opt_param_scheduler"] = {"max_lr": 3e-4, "lr_warmup_steps": 21, "num_steps": o.iteration * 1024,
                                        "lr_decay_style": "WSD", "lr_decay_steps": o.iteration * 1024,
                                        "min_lr": 3e-5, "start_wd": 0.01, "end_wd": 0.01,
                                        "wd_incr_style": "constant", "wd_incr_steps": o.iteration * 1024}
    state["rerun_state_machine"] = {"mode": 0, "rerun_requested": False, "checkpoint_requested": False}
    state["num_floating_point_operations_so_far"] = 0.0
    return state


# ---------------------------------------------------------------------------
# Legacy (--ckpt-format torch) output
# ---------------------------------------------------------------------------


def legacy_model(cfg, w, o, ep_rank):
    """model.state_dict_for_save_checkpoint() on one EP rank: local module names, local expert
    indices, extra states as the modules return them."""
    E_l = cfg["numExperts"] // o.ep if cfg["numExperts"] else 0
    te = o.spec == "te"
    cast = lambda t: t.to(o.torch_dtype).contiguous()  # noqa: E731
    extra = (lambda: te_extra_state()) if te else (lambda: None)
    sd = OrderedDict()
    sd["embedding.word_embeddings.weight"] = cast(w["embedding.weight"])
    for i, moe in enumerate(cfg["moeLayers"]):
        p, q = f"decoder.layers.{i}.", f"layers.{i}."
        if not te:
            sd[p + "input_layernorm.weight"] = cast(w[q + "attn_norm.weight"])
        if te:
            sd[p + "self_attention.core_attention._extra_state"] = extra()
        sd[p + "self_attention.linear_proj.weight"] = cast(w[q + "attn.proj.weight"])
        sd[p + "self_attention.linear_proj._extra_state"] = extra()
        if te:
            sd[p + "self_attention.linear_qkv.layer_norm_weight"] = cast(w[q + "attn_norm.weight"])
        sd[p + "self_attention.linear_qkv.weight"] = cast(qkv_to_megatron(w[q + "attn.qkv.weight"], cfg["numAttentionHeads"]))
        sd[p + "self_attention.linear_qkv._extra_state"] = extra()
        if not moe:
            if te:
                sd[p + "mlp.linear_fc1.layer_norm_weight"] = cast(w[q + "mlp_norm.weight"])
            else:
                sd[p + "pre_mlp_layernorm.weight"] = cast(w[q + "mlp_norm.weight"])
            sd[p + "mlp.linear_fc1.weight"] = cast(w[q + "mlp.fc1.weight"])
            sd[p + "mlp.linear_fc1._extra_state"] = extra()
            sd[p + "mlp.linear_fc2.weight"] = cast(w[q + "mlp.fc2.weight"])
            sd[p + "mlp.linear_fc2._extra_state"] = extra()
            continue
        sd[p + "pre_mlp_layernorm.weight"] = cast(w[q + "mlp_norm.weight"])
        sd[p + "mlp.router.weight"] = cast(w[q + "moe.router.weight"])
        fc1 = w[q + "moe.experts.fc1.weight"][ep_rank * E_l:(ep_rank + 1) * E_l]
        fc2 = w[q + "moe.experts.fc2.weight"][ep_rank * E_l:(ep_rank + 1) * E_l]
        if o.experts == "sequential":
            for j in range(E_l):
                sd[p + f"mlp.experts.local_experts.{j}.linear_fc1.weight"] = cast(fc1[j])
                sd[p + f"mlp.experts.local_experts.{j}.linear_fc1._extra_state"] = extra()
                sd[p + f"mlp.experts.local_experts.{j}.linear_fc2.weight"] = cast(fc2[j])
                sd[p + f"mlp.experts.local_experts.{j}.linear_fc2._extra_state"] = extra()
        elif o.experts == "te-grouped":
            for j in range(E_l):
                sd[p + f"mlp.experts.linear_fc1.weight{j}"] = cast(fc1[j])
            sd[p + "mlp.experts.linear_fc1._extra_state"] = extra()
            for j in range(E_l):
                sd[p + f"mlp.experts.linear_fc2.weight{j}"] = cast(fc2[j])
            sd[p + "mlp.experts.linear_fc2._extra_state"] = extra()
        else:
            # GroupedMLP parameters: weight1 [h, E_l*2F] (= per expert [h, 2F]), weight2 [E_l*F, h].
            h = fc1.shape[2]
            sd[p + "mlp.experts.weight1"] = cast(fc1.transpose(1, 2).contiguous().reshape(h, -1))
            sd[p + "mlp.experts.weight2"] = cast(fc2.transpose(1, 2).reshape(-1, h))
        if cfg["sharedExpertSize"] > 0:
            sd[p + "mlp.shared_experts.linear_fc1.weight"] = cast(w[q + "moe.shared.fc1.weight"])
            sd[p + "mlp.shared_experts.linear_fc1._extra_state"] = extra()
            sd[p + "mlp.shared_experts.linear_fc2.weight"] = cast(w[q + "moe.shared.fc2.weight"])
            sd[p + "mlp.shared_experts.linear_fc2._extra_state"] = extra()
    sd["decoder.final_layernorm.weight"] = cast(w["final_norm.weight"])
    sd["output_layer.weight"] = cast(w["output.weight"])
    sd["output_layer._extra_state"] = None
    for key in o.extra_tensor:
        sd[key] = cast(torch.zeros(cfg["hiddenSize"]))
    return sd


def write_legacy(iter_dir, cfg, w, o):
    for r in range(o.ep):
        name = "mp_rank_00" + (f"_{r:03d}" if o.ep > 1 else "")
        d = os.path.join(iter_dir, name)
        os.makedirs(d)
        state = common_state(cfg, o)
        state["model"] = legacy_model(cfg, w, o, r)
        state["rng_state"] = [Builder.rng_state(types.SimpleNamespace(o=o))]
        if o.with_optimizer:
            # The distributed optimizer keeps its parameter state in a separate file.
            flat = torch.cat([t.float().reshape(-1) for t in state["model"].values() if torch.is_tensor(t)])
            torch.save({"buckets_coalesced": True, 0: {(torch.bfloat16, torch.float32): {
                "param": flat, "exp_avg": torch.zeros_like(flat), "exp_avg_sq": torch.zeros_like(flat)}}},
                os.path.join(d, "distrib_optim.pt"))
        torch.save(state, os.path.join(d, "model_optim_rng.pt"))


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--worker-checkpoint", "--from", dest="worker_checkpoint",
                     help="flame-worker checkpoint dir (model.safetensors + state.json)")
    src.add_argument("--random-init", action="store_true", help="seeded random weights; shape from the flags below")
    ap.add_argument("--out", required=True, help="Megatron save dir (gets iter_XXXXXXX/ and the tracker file)")
    ap.add_argument("--format", choices=["torch_dist", "legacy"], default="torch_dist")
    ap.add_argument("--spec", choices=["te", "local"], default="te")
    ap.add_argument("--experts", choices=["sequential", "te-grouped", "grouped"], default="sequential")
    ap.add_argument("--ep", type=int, default=None, help="expert-parallel ranks (default 8 when experts divide, else 1)")
    ap.add_argument("--world", type=int, default=None, help="ranks (= DP size, TP=PP=1); multiple of --ep; default --ep")
    ap.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--iteration", type=int, default=100)
    ap.add_argument("--with-optimizer", action="store_true", help="also write distributed-optimizer state")
    ap.add_argument("--layer-keys", choices=["per-layer", "stacked"], default="per-layer",
                    help="per-layer: moe_layer_freq is a list (FLAME-MoE); stacked: moe_layer_freq=1, all layers MoE")
    fp = ap.add_mutually_exclusive_group()
    fp.add_argument("--fully-parallel", dest="fully_parallel", action="store_true", default=True,
                    help="spread replicated tensors over ranks like ckpt_fully_parallel_save (default)")
    fp.add_argument("--no-fully-parallel", dest="fully_parallel", action="store_false")
    ap.add_argument("--torch-metadata", choices=["new", "old"], default="new",
                    help="pickle paths of torch >= 2.5 (new) or older 2.x (TensorProperties in _shard)")
    ap.add_argument("--enum-pickle", choices=["name", "value"], default="name",
                    help="enum members as getattr(cls, name) (Python >= 3.11) or cls(value) (<= 3.10)")
    ap.add_argument("--save-worker-tensors", metavar="PATH",
                    help="also write the input worker tensors (F32 safetensors), e.g. for --random-init checks")
    ap.add_argument("--extra-tensor", action="append", default=[], metavar="KEY",
                    help="add a replicated [hidden] tensor under KEY (a tensor FLAME-MoE does not have)")
    ap.add_argument("--override-arg", action="append", default=[], metavar="NAME=VALUE",
                    help="set a stored Megatron arg (true/false/none/int/float/str) without changing the tensors")
    ap.add_argument("--seed", type=int, default=0)
    g = ap.add_argument_group("--random-init shape")
    g.add_argument("--vocab-size", type=int, default=128)
    g.add_argument("--hidden-size", type=int, default=64)
    g.add_argument("--num-layers", type=int, default=3)
    g.add_argument("--num-attention-heads", type=int, default=4)
    g.add_argument("--ffn-hidden-size", type=int, default=128)
    g.add_argument("--moe-ffn-hidden-size", type=int, default=32)
    g.add_argument("--num-experts", type=int, default=8)
    g.add_argument("--topk", type=int, default=2)
    g.add_argument("--shared-expert-size", type=int, default=None, help="default 2 * moe-ffn-hidden-size; 0 = none")
    g.add_argument("--moe-layers", default=None, help='pattern like "[0]*1+[1]*2" (default FLAME-MoE: first dense)')
    g.add_argument("--seq-length", type=int, default=32)
    g.add_argument("--rope-base", type=float, default=10000.0)
    g.add_argument("--norm-eps", type=float, default=1e-6)
    return ap.parse_args(argv)


def main(argv=None):
    o = parse_args(argv)
    cfg, tensors = load_worker(o.worker_checkpoint) if o.worker_checkpoint else random_worker(o)
    check_input(cfg, tensors)
    E = cfg["numExperts"] if any(cfg["moeLayers"]) else 0
    if o.ep is None:
        o.ep = 8 if E and E % 8 == 0 else 1
    if E and E % o.ep:
        raise SystemExit(f"--ep {o.ep} does not divide numExperts {E}")
    o.world = o.world or o.ep
    if o.world % o.ep:
        raise SystemExit(f"--world {o.world} is not a multiple of --ep {o.ep}")
    if o.spec == "local" and o.experts == "te-grouped":
        raise SystemExit("--experts te-grouped needs --spec te (TEGroupedMLP is a Transformer Engine module)")
    o.torch_dtype = torch.bfloat16 if o.dtype == "bf16" else torch.float32
    ENUM_PICKLE["style"] = o.enum_pickle
    if o.save_worker_tensors:
        write_safetensors(o.save_worker_tensors, tensors)
    iter_dir = os.path.join(o.out, f"iter_{o.iteration:07d}")
    if os.path.exists(iter_dir):
        raise SystemExit(f"{iter_dir} already exists")
    os.makedirs(iter_dir)
    if o.format == "torch_dist":
        b = Builder(cfg, tensors, o)
        b.build()
        assign_writers(b.entries, o.world, o.fully_parallel)
        write_torch_dist(iter_dir, b.entries, o.world, Pickles(o.torch_metadata), o.torch_metadata)
        torch.save(common_state(cfg, o), os.path.join(iter_dir, "common.pt"))
    else:
        write_legacy(iter_dir, cfg, tensors, o)
    with open(os.path.join(o.out, "latest_checkpointed_iteration.txt"), "w") as f:
        f.write(str(o.iteration))
    print(iter_dir)


if __name__ == "__main__":
    main()
