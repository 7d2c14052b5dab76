"""Write torch modules as MXNet checkpoints (``<prefix>-symbol.json`` + ``<prefix>-NNNN.params``),
the files ``mx.model.save_checkpoint`` / Gluon ``export`` produce, without MXNet.

The module is traced with ``torch.fx``; each call becomes the MXNet operator with the same
meaning (``nn.Conv2d`` -> ``Convolution``, ``nn.BatchNorm2d`` -> ``BatchNorm`` with
``fix_gamma=False``, ``nn.MaxPool2d(ceil_mode=True)`` -> ``Pooling`` with
``pooling_convention='full'``, ``x + y`` -> ``elemwise_add`` ...). The torch module stays the
reference: tests compare a compiled checkpoint with the module's own outputs.

``.params`` layout (MXNet ``NDArray::Save``): uint64 0x112, uint64 0, uint64 count, per array
[uint32 0xF993FAC9, int32 storage type 0, uint32 ndim, int64 dims, int32 dev_type 1 (cpu),
int32 dev_id 0, int32 type flag, raw little-endian data], uint64 count, per name
[uint64 length, bytes]. Names carry ``arg:`` / ``aux:`` prefixes.

    python -m models.mxnet_writer NAME --out DIR     # NAME: one of EXAMPLES
"""

from __future__ import annotations

import hashlib
import json
import operator
import struct
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from models.cache import example_main

_TYPE_FLAGS = {
    np.dtype("<f4"): 0, np.dtype("<f8"): 1, np.dtype("<f2"): 2, np.dtype("u1"): 3, np.dtype("<i4"): 4,
    np.dtype("i1"): 5, np.dtype("<i8"): 6,
}


def write_ndarray_list(items: Sequence[tuple[str, np.ndarray]]) -> bytes:
    """An MXNet NDArray list file (``mx.nd.save``): V2 dense arrays on cpu(0)."""
    out = [struct.pack("<QQQ", 0x112, 0, len(items))]
    for name, array in items:
        a = np.ascontiguousarray(array)
        le = a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype
        if le not in _TYPE_FLAGS:
            raise ValueError(f"{name}: dtype {a.dtype} has no MXNet type flag here")
        out.append(struct.pack("<Ii", 0xF993FAC9, 0))                # magic, storage type: dense
        out.append(struct.pack(f"<I{a.ndim}q", a.ndim, *a.shape))   # shape
        out.append(struct.pack("<iii", 1, 0, _TYPE_FLAGS[le]))       # cpu(0), type flag
        out.append(a.astype(le, copy=False).tobytes())
    out.append(struct.pack("<Q", len(items)))
    for name, _ in items:
        raw = name.encode("utf-8")
        out.append(struct.pack("<Q", len(raw)) + raw)
    return b"".join(out)


# --------------------------------------------------------------------------- marker modules


class SoftmaxOutput(nn.Module):
    """MXNet's SoftmaxOutput: softmax per instance, written with a ``<name>_label`` input."""

    def forward(self, x):
        return torch.softmax(x.flatten(1), dim=1).reshape(x.shape)


class MxReshape(nn.Module):
    """MXNet ``Reshape`` with its special values (``mx_shape``); ``torch_shape`` is what it
    means for the traced input, written out by hand as the reference."""

    def __init__(self, mx_shape: Sequence[int], torch_shape: Sequence[int], reverse: bool = False) -> None:
        super().__init__()
        self.mx_shape, self.torch_shape, self.reverse = tuple(mx_shape), tuple(torch_shape), reverse

    def forward(self, x):
        return x.reshape(self.torch_shape)


# --------------------------------------------------------------------------- the writer


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return str(value)


class _Symbol:
    def __init__(self) -> None:
        self.nodes: list[dict] = []
        self.arg_nodes: list[int] = []
        self.arg_params: list[tuple[str, np.ndarray]] = []
        self.aux_params: list[tuple[str, np.ndarray]] = []
        self.outputs_of: dict[int, int] = {}

    def var(self, name: str, value: np.ndarray | None = None, aux: bool = False) -> tuple[int, int]:
        self.nodes.append({"op": "null", "name": name, "inputs": []})
        index = len(self.nodes) - 1
        self.arg_nodes.append(index)
        if value is not None:
            (self.aux_params if aux else self.arg_params).append((name, np.asarray(value, np.float32)))
        return (index, 0)

    def op(self, op: str, name: str, inputs: Sequence[tuple[int, int]], outputs: int = 1, **attrs: Any) -> tuple[int, int]:
        node = {"op": op, "name": name, "inputs": [[i, o, 0] for i, o in inputs]}
        if attrs:
            node["attrs"] = {k: _fmt(v) for k, v in attrs.items() if v is not None}
        self.nodes.append(node)
        self.outputs_of[len(self.nodes) - 1] = outputs
        return (len(self.nodes) - 1, 0)

    def json(self, heads: Sequence[tuple[int, int]]) -> str:
        row_ptr = [0]
        for i in range(len(self.nodes)):
            row_ptr.append(row_ptr[-1] + self.outputs_of.get(i, 1))
        doc = {
            "nodes": self.nodes,
            "arg_nodes": self.arg_nodes,
            "node_row_ptr": row_ptr,
            "heads": [[i, o, 0] for i, o in heads],
            "attrs": {"mxnet_version": ["int", 10901]},
        }
        return json.dumps(doc, indent=2)

    def params(self) -> bytes:
        items = [(f"arg:{n}", a) for n, a in self.arg_params] + [(f"aux:{n}", a) for n, a in self.aux_params]
        return write_ndarray_list(items)


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def to_checkpoint(module, input_shapes: dict[str, Sequence[int]]) -> tuple[str, bytes]:
    """(symbol JSON text, params bytes) for ``module`` traced on inputs of ``input_shapes``."""
    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, (SoftmaxOutput, MxReshape)) or super().is_leaf_module(m, qualname)

    module = module.eval()
    graph = Tracer().trace(module)
    gm = torch.fx.GraphModule(module, graph)
    ShapeProp(gm).propagate(*(torch.zeros(tuple(s)) for s in input_shapes.values()))
    modules = dict(gm.named_modules())
    sym = _Symbol()
    env: dict[str, tuple[int, int]] = {}
    names = iter(input_shapes)
    heads: list[tuple[int, int]] = []

    def shape(n) -> tuple[int, ...]:
        return tuple(n.meta["tensor_meta"].shape)

    def value(a):
        return env[a.name] if isinstance(a, torch.fx.Node) else a

    def binary(node, ops: tuple[str, str, str, str | None]):
        elemwise, broadcast, scalar, rscalar = ops
        a, b = node.args[:2]
        name = node.name
        if isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node):
            op = elemwise if shape(a) == shape(b) else broadcast
            return sym.op(op, name, [env[a.name], env[b.name]])
        if isinstance(a, torch.fx.Node):
            return sym.op(scalar, name, [env[a.name]], scalar=float(b))
        if rscalar is None:
            raise NotImplementedError(f"{node.target} with a scalar on the left")
        return sym.op(rscalar, name, [env[b.name]], scalar=float(a))

    def call_module(node, m):
        x = env[node.args[0].name]
        name = node.name
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros" or isinstance(m.padding, str):
                raise NotImplementedError("Conv2d padding must be explicit zeros")
            ins = [x, sym.var(f"{name}_weight", _np(m.weight))]
            if m.bias is not None:
                ins.append(sym.var(f"{name}_bias", _np(m.bias)))
            return sym.op("Convolution", name, ins, kernel=m.kernel_size, stride=m.stride, dilate=m.dilation,
                          pad=m.padding, num_filter=m.out_channels, num_group=m.groups, no_bias=m.bias is None,
                          layout="NCHW")
        if isinstance(m, nn.ConvTranspose2d):
            ins = [x, sym.var(f"{name}_weight", _np(m.weight))]
            if m.bias is not None:
                ins.append(sym.var(f"{name}_bias", _np(m.bias)))
            return sym.op("Deconvolution", name, ins, kernel=m.kernel_size, stride=m.stride, dilate=m.dilation,
                          pad=m.padding, adj=m.output_padding, num_filter=m.out_channels, num_group=m.groups,
                          no_bias=m.bias is None)
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            ins = [x, sym.var(f"{name}_gamma", _np(m.weight)), sym.var(f"{name}_beta", _np(m.bias)),
                   sym.var(f"{name}_moving_mean", _np(m.running_mean), aux=True),
                   sym.var(f"{name}_moving_var", _np(m.running_var), aux=True)]
            return sym.op("BatchNorm", name, ins, eps=m.eps, momentum=0.9, fix_gamma=False,
                          use_global_stats=False)
        if isinstance(m, nn.Linear):
            ins = [x, sym.var(f"{name}_weight", _np(m.weight))]
            if m.bias is not None:
                ins.append(sym.var(f"{name}_bias", _np(m.bias)))
            flat = len(shape(node.args[0])) == 2
            return sym.op("FullyConnected", name, ins, num_hidden=m.out_features, no_bias=m.bias is None,
                          flatten=flat)
        acts = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Softsign: "softsign", nn.Mish: "mish"}
        if type(m) in acts:
            return sym.op("Activation", name, [x], act_type=acts[type(m)])
        if isinstance(m, nn.Softplus):
            assert m.beta == 1
            return sym.op("Activation", name, [x], act_type="softrelu")
        if isinstance(m, nn.ReLU6):
            return sym.op("clip", name, [x], a_min=0.0, a_max=6.0)
        if isinstance(m, nn.Hardtanh):
            return sym.op("clip", name, [x], a_min=float(m.min_val), a_max=float(m.max_val))
        if isinstance(m, nn.LeakyReLU):
            return sym.op("LeakyReLU", name, [x], act_type="leaky", slope=m.negative_slope)
        if isinstance(m, nn.ELU):
            return sym.op("LeakyReLU", name, [x], act_type="elu", slope=m.alpha)
        if isinstance(m, nn.SELU):
            return sym.op("LeakyReLU", name, [x], act_type="selu")
        if isinstance(m, nn.GELU):
            assert m.approximate == "none"
            return sym.op("LeakyReLU", name, [x], act_type="gelu")
        if isinstance(m, nn.PReLU):
            return sym.op("LeakyReLU", name, [x, sym.var(f"{name}_gamma", _np(m.weight))], act_type="prelu")
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            if isinstance(m, nn.MaxPool2d) and _pair(m.dilation) != (1, 1):
                raise NotImplementedError("dilated max pooling")
            kernel, stride, pad = _pair(m.kernel_size), _pair(m.stride or m.kernel_size), _pair(m.padding)
            full = bool(m.ceil_mode)
            if full:  # MXNet 'full' keeps a last window that starts in the right padding; torch drops it
                for size, k, s, p in zip(shape(node.args[0])[2:], kernel, stride, pad):
                    out = 1 + -(-(size + 2 * p - k) // s)
                    if (out - 1) * s >= size + p:
                        raise NotImplementedError("ceil_mode pooling whose last window starts in the padding")
            attrs = dict(kernel=kernel, stride=stride, pad=pad, pooling_convention="full" if full else "valid")
            if isinstance(m, nn.MaxPool2d):
                return sym.op("Pooling", name, [x], pool_type="max", **attrs)
            if m.divisor_override:
                raise NotImplementedError("divisor_override")
            return sym.op("Pooling", name, [x], pool_type="avg", count_include_pad=m.count_include_pad, **attrs)
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            if _pair(m.output_size) != (1, 1):
                raise NotImplementedError("adaptive pooling to more than 1x1")
            kind = "avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "max"
            return sym.op("Pooling", name, [x], pool_type=kind, global_pool=True, kernel=(1, 1))
        if isinstance(m, nn.Flatten):
            if (m.start_dim, m.end_dim) != (1, -1):
                return sym.op("Reshape", name, [x], shape=shape(node))
            return sym.op("Flatten", name, [x])
        if isinstance(m, nn.Dropout):
            return sym.op("Dropout", name, [x], p=m.p, mode="training")
        if isinstance(m, nn.Identity):
            return x
        if isinstance(m, nn.Softmax):
            return sym.op("softmax", name, [x], axis=m.dim)
        if isinstance(m, nn.LogSoftmax):
            return sym.op("log_softmax", name, [x], axis=m.dim)
        if isinstance(m, nn.Upsample):
            assert m.mode == "nearest" and float(m.scale_factor) == int(m.scale_factor)
            return sym.op("UpSampling", name, [x], scale=int(m.scale_factor), sample_type="nearest", num_args=1)
        if isinstance(m, nn.LocalResponseNorm):
            return sym.op("LRN", name, [x], alpha=m.alpha, beta=m.beta, knorm=m.k, nsize=m.size)
        if isinstance(m, SoftmaxOutput):
            return sym.op("SoftmaxOutput", name, [x, sym.var(f"{name}_label")], grad_scale=1.0)
        if isinstance(m, MxReshape):
            return sym.op("Reshape", name, [x], shape=m.mx_shape, reverse=m.reverse)
        raise NotImplementedError(f"no MXNet writer for {type(m).__name__}")

    unary = {torch.relu: ("Activation", {"act_type": "relu"}), torch.sigmoid: ("Activation", {"act_type": "sigmoid"}),
             torch.tanh: ("Activation", {"act_type": "tanh"}), F.relu: ("Activation", {"act_type": "relu"}),
             torch.exp: ("exp", {}), torch.sqrt: ("sqrt", {}), torch.abs: ("abs", {}), torch.neg: ("negative", {}),
             operator.neg: ("negative", {})}
    binaries = {
        operator.add: ("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
        torch.add: ("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
        operator.sub: ("elemwise_sub", "broadcast_sub", "_minus_scalar", "_rminus_scalar"),
        operator.mul: ("elemwise_mul", "broadcast_mul", "_mul_scalar", "_mul_scalar"),
        torch.mul: ("elemwise_mul", "broadcast_mul", "_mul_scalar", "_mul_scalar"),
        operator.truediv: ("elemwise_div", "broadcast_div", "_div_scalar", "_rdiv_scalar"),
    }

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            env[node.name] = sym.var(next(names))
        elif node.op == "call_module":
            env[node.name] = call_module(node, modules[node.target])
        elif node.op in ("call_function", "call_method"):
            target = node.target
            x = node.args[0]
            if target in binaries:
                env[node.name] = binary(node, binaries[target])
            elif target in unary:
                op, attrs = unary[target]
                env[node.name] = sym.op(op, node.name, [env[x.name]], **attrs)
            elif target in (torch.flatten, "flatten"):
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                if start == 1 and len(node.args) <= 2:
                    env[node.name] = sym.op("Flatten", node.name, [env[x.name]])
                else:
                    env[node.name] = sym.op("Reshape", node.name, [env[x.name]], shape=shape(node))
            elif target in (torch.cat, torch.concat):
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
                parts = [env[p.name] for p in node.args[0]]
                env[node.name] = sym.op("Concat", node.name, parts, dim=dim, num_args=len(parts))
            elif target in (torch.clamp, "clamp"):
                low = node.args[1] if len(node.args) > 1 else node.kwargs.get("min")
                high = node.args[2] if len(node.args) > 2 else node.kwargs.get("max")
                env[node.name] = sym.op("clip", node.name, [env[x.name]], a_min=float(low), a_max=float(high))
            elif target in ("permute", torch.permute):
                dims = node.args[1] if target == torch.permute else node.args[1:]
                dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else tuple(dims)
                env[node.name] = sym.op("transpose", node.name, [env[x.name]], axes=dims)
            elif target in ("mean", torch.mean, "sum", torch.sum):
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
                keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
                op = "mean" if target in ("mean", torch.mean) else "sum"
                axis = tuple(dim) if isinstance(dim, (tuple, list)) else ((dim,) if dim is not None else ())
                env[node.name] = sym.op(op, node.name, [env[x.name]], axis=axis, keepdims=bool(keep))
            elif target in (torch.softmax, F.softmax, "softmax"):
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
                env[node.name] = sym.op("softmax", node.name, [env[x.name]], axis=dim)
            elif target in ("reshape", "view", torch.reshape):
                env[node.name] = sym.op("Reshape", node.name, [env[x.name]], shape=shape(node))
            else:
                raise NotImplementedError(f"no MXNet writer for {target}")
        elif node.op == "output":
            outs = node.args[0]
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            heads = [env[o.name] for o in outs]
        else:
            raise NotImplementedError(f"fx node {node.op} {node.target}")
    return sym.json(heads), sym.params()


def write_checkpoint(module, input_shapes: dict[str, Sequence[int]], out_dir: str | Path, prefix: str,
                     epoch: int = 0) -> tuple[Path, Path]:
    """Write ``<prefix>-symbol.json`` and ``<prefix>-<epoch:04d>.params`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text, params = to_checkpoint(module, input_shapes)
    symbol_path = out / f"{prefix}-symbol.json"
    params_path = out / f"{prefix}-{epoch:04d}.params"
    symbol_path.write_text(text)
    params_path.write_bytes(params)
    return symbol_path, params_path


# --------------------------------------------------------------------------- examples


def _resnet_softmax(seed: int):
    from models import zoo

    from collections import OrderedDict

    return nn.Sequential(OrderedDict(net=zoo.resnet_like(seed=seed), softmax=SoftmaxOutput())).eval()


def _mobilenet(seed: int):
    from models import zoo

    return zoo.mobilenet_like(seed=seed)


class OpsMix(nn.Module):
    """Many MXNet operators in one small network, two outputs: PReLU, ELU, GELU, LeakyReLU,
    softrelu; Pooling max/avg with 'full' convention, padding, count_include_pad both ways,
    global max; Deconvolution; UpSampling; LRN; Concat; transpose; FullyConnected with
    flatten=False; mean/sum with keepdims; broadcast_mul; Reshape with 0/-1/-2/-3/-4; scalar
    ops; clip; Dropout; softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool_full = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.avg_full = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=True)
        self.avg_excl = nn.AvgPool2d(2, 2, padding=1, count_include_pad=False)
        self.prelu = nn.PReLU(8)
        self.elu = nn.ELU(0.7)
        self.deconv = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.leaky = nn.LeakyReLU(0.2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.lrn = nn.LocalResponseNorm(3, alpha=1e-2, beta=0.75, k=2.0)
        self.gelu = nn.GELU()
        self.softplus = nn.Softplus()
        self.gmax = nn.AdaptiveMaxPool2d(1)
        self.fc3d = nn.Linear(12, 5)
        self.merge = MxReshape((0, -3, -2), (1, 88, 11))
        self.split = MxReshape((0, -4, 8, -1, 0), (1, 8, 11, 11))
        self.flat = MxReshape((0, -1), (1, -1))
        self.fc = nn.Linear(968, 6)
        self.dropout = nn.Dropout(0.3)

    def forward(self, x):
        y = self.relu(self.bn(self.conv(x)))                           # 8x20x20
        p1 = self.pool_full(y)                                          # 8x10x10
        a = self.prelu(self.avg_full(y)) + self.elu(self.avg_excl(y))   # 8x11x11
        a = a * a.mean((2, 3), keepdim=True)
        c = torch.cat([self.deconv(p1), self.up(self.leaky(p1))], 1)   # 12x20x20
        c = self.lrn(c)
        g1 = self.gelu(c).mean((2, 3))                                  # [1, 12]
        g2 = torch.flatten(self.gmax(self.softplus(a)), 1)              # [1, 8]
        t = self.fc3d(c.permute(0, 2, 3, 1)).sum((1, 2))                # [1, 5]
        r = self.flat(self.split(self.merge(a * 0.5 - 1.0)))            # [1, 968]
        h = torch.cat([g1, g2, t, self.fc(r)], 1)                       # [1, 31]
        h = self.dropout(torch.clamp(h, -3.0, 3.0))
        h = torch.sigmoid(h) * torch.tanh(1.0 - h) / 2
        return torch.softmax(h, dim=1), h


def _ops_mix(seed: int):
    from models.zoo import _finish

    torch.manual_seed(seed)
    module = OpsMix()
    with torch.no_grad():
        module.prelu.weight.copy_(torch.rand(8) * 0.5)
    return _finish(module, (3, 20, 20), batch=1)  # MxReshape fixes the batch at 1


#: name -> (builder(seed) -> torch module, input shapes by MXNet input name)
EXAMPLES: dict[str, tuple[Callable[[int], Any], dict[str, tuple[int, ...]]]] = {
    "resnet_like_mx": (_resnet_softmax, {"data": (1, 3, 64, 64)}),
    "mobilenet_like_mx": (_mobilenet, {"data": (1, 3, 64, 64)}),
    "mxnet_ops_mix": (_ops_mix, {"data": (1, 3, 20, 20)}),
}


def build_mxnet_example(name: str, out_dir: str | Path, seed: int = 0, force: bool = False):
    """The archive ``<out_dir>/<name>.tar.gz`` (``<name>-symbol.json`` + ``<name>-0000.params``)
    with seeded inputs and the torch module's outputs, as a ``models.build.BuildResult``."""
    from models.build import BuildResult

    builder, shapes = EXAMPLES[name]
    return build_cached(
        name, "mxnet", "MXNET", out_dir, seed, force,
        sources=("mxnet_writer.py", "zoo.py"),
        shapes=shapes,
        make=lambda tmp: _write_example(builder(seed), shapes, tmp, name),
        result_type=BuildResult,
        model_file=f"{name}-symbol.json",
    )


def _write_example(module, shapes, tmp: Path, name: str):
    symbol_path, params_path = write_checkpoint(module, shapes, tmp, name)
    return module, [symbol_path, params_path]


def build_cached(name, fmt, framework, out_dir, seed, force, sources, shapes, make, result_type, model_file):
    """Shared by the MXNet and DarkNet writers: build once per (name, seed, sources) key.

    ``make(tmp_dir)`` returns (torch module, files for the archive); the module's outputs on
    seeded inputs are the reference.
    """
    import tempfile
    from importlib.metadata import version

    from models.cache import BuildFiles
    from models.export import make_archive

    here = Path(__file__).resolve().parent
    h = hashlib.sha256(json.dumps([name, fmt, seed, version("torch"), {k: list(v) for k, v in shapes.items()}]).encode())
    for src in sources:
        h.update((here / src).read_bytes())
    key = h.hexdigest()[:16]
    files = BuildFiles.under(out_dir, name)

    def build():
        rng = np.random.default_rng(seed)
        inputs = {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
        with tempfile.TemporaryDirectory(dir=files.archive.parent, prefix=f".{name}-") as tmp:
            module, model_files = make(Path(tmp))
            make_archive(model_files, files.archive)
        with torch.no_grad():
            result = module(*(torch.from_numpy(a) for a in inputs.values()))
        outs = result if isinstance(result, (tuple, list)) else (result,)
        files.save_arrays(inputs, [o.detach().numpy() for o in outs])
        return result_type(
            name=name, format=fmt, framework=framework, seed=seed, opset=None, archive=str(files.archive),
            inputs_npz=str(files.inputs_npz), outputs_npz=str(files.outputs_npz), model_file=model_file,
            data_input_config=json.dumps({n: list(s) for n, s in shapes.items()}),
            inputs=[{"name": n, "shape": list(s), "dtype": "float32"} for n, s in shapes.items()], key=key,
        )

    return files.build_once(key, result_type, force, build)


def main(argv: list[str] | None = None) -> int:
    return example_main("python -m models.mxnet_writer", __doc__.split("\n")[0], EXAMPLES, build_mxnet_example, argv)


if __name__ == "__main__":
    sys.exit(main())
