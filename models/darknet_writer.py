"""DarkNet networks for tests: ``.cfg`` texts, seeded ``.weights`` files, and a torch
implementation of the same cfg that loads those weights (the reference a compiled model is
compared with; DarkNet itself is not installed).

The torch side is written independently of ``neo_local.frontends.darknet`` from darknet's C
sources' behaviour: batch norm as ``(x - mean) / (sqrt(var) + 1e-6) * scales + biases``
(unfolded), maxpool windows starting at ``-padding/2`` over a ``-inf``-padded input, yolo layers
applying the logistic function to x, y, objectness and classes.

``.weights``: int32 major, minor, revision; ``seen`` as uint64 (version >= 0.2) or int32; then
float32 per layer in cfg order (convolutional: biases, [scales, rolling_mean,
rolling_variance], weights; connected: biases, weights, [scales, rolling_mean,
rolling_variance]; batchnorm: scales, rolling_mean, rolling_variance).

    python -m models.darknet_writer NAME --out DIR
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.cache import example_main

# --------------------------------------------------------------------------- cfgs


def yolov3_tiny_cfg(size: int = 160, classes: int = 80) -> str:
    """yolov3-tiny as darknet ships it (cfg/yolov3-tiny.cfg), with the input size made small."""
    filters = 3 * (classes + 5)
    conv = "[convolutional]\nbatch_normalize=1\nfilters={f}\nsize={k}\nstride=1\npad=1\nactivation=leaky\n"
    yolo = (
        "[yolo]\nmask = {m}\nanchors = 10,14,  23,27,  37,58,  81,82,  135,169,  344,319\n"
        f"classes={classes}\nnum=6\njitter=.3\nignore_thresh = .7\ntruth_thresh = 1\nrandom=1\n"
    )
    parts = [
        "[net]\n# Testing\nbatch=1\nsubdivisions=1\n# Training\n# batch=64\n"
        f"width={size}\nheight={size}\nchannels=3\nmomentum=0.9\ndecay=0.0005\nangle=0\n"
        "saturation = 1.5\nexposure = 1.5\nhue=.1\n\nlearning_rate=0.001\nburn_in=1000\n"
        "max_batches = 500200\npolicy=steps\nsteps=400000,450000\nscales=.1,.1\n",
    ]
    for i, f in enumerate((16, 32, 64, 128, 256, 512)):
        parts.append(conv.format(f=f, k=3))
        parts.append("[maxpool]\nsize=2\nstride=%d\n" % (1 if i == 5 else 2))
    parts += [
        conv.format(f=1024, k=3),
        "###########\n",
        conv.format(f=256, k=1),
        conv.format(f=512, k=3),
        f"[convolutional]\nsize=1\nstride=1\npad=1\nfilters={filters}\nactivation=linear\n",
        yolo.format(m="3,4,5"),
        "[route]\nlayers = -4\n",
        conv.format(f=128, k=1),
        "[upsample]\nstride=2\n",
        "[route]\nlayers = -1, 8\n",
        conv.format(f=256, k=3),
        f"[convolutional]\nsize=1\nstride=1\npad=1\nfilters={filters}\nactivation=linear\n",
        yolo.format(m="0,1,2"),
    ]
    return "\n".join(parts)


#: a small darknet classifier (darknet-reference style), exercising more layer types: odd
#: sizes through maxpool (ceil-like output), grouped conv, route groups, shortcut, dropout,
#: avgpool, a batch-normalized connected layer, softmax, cost; several activations
CLASSIFIER_CFG = """\
[net]
batch=128
subdivisions=1
height=76
width=76
channels=3   ; RGB
max_crop=80

[convolutional]
batch_normalize=1
filters=16
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=3
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=2
pad=1
activation=mish

# 19x19 -> 10x10: the last window hangs over the edge
[maxpool]
size=2
stride=2

[convolutional]
batch_normalize=1
filters=32
size=3
stride=1
pad=1
groups=4
activation=relu

[route]
layers=-1
groups=2
group_id=1

[convolutional]
batch_normalize=1
filters=32
size=1
stride=1
pad=1
activation=logistic

# residual: conv output + the grouped conv's
[shortcut]
from=-3
activation=linear

[dropout]
probability=.5

[convolutional]
filters=24
size=3
stride=1
pad=0
activation=swish

[avgpool]

[connected]
output=10
batch_normalize=1
activation=tanh

[softmax]
groups=1

[cost]
type=sse
"""


# --------------------------------------------------------------------------- cfg parsing


def parse_cfg(text: str) -> list[tuple[str, dict[str, str]]]:
    """(section, options) pairs, darknet's way: whitespace dropped, # and ; comment lines."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            sections.append((line[1:-1], {}))
        else:
            key, value = line.split("#")[0].split(";")[0].split("=", 1)
            sections[-1][1][key] = value
    return sections


# --------------------------------------------------------------------------- torch network


def _act(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "linear":
        return x
    if name == "leaky":
        return torch.where(x > 0, x, 0.1 * x)
    if name == "relu":
        return torch.clamp(x, min=0)
    if name == "logistic":
        return 1.0 / (1.0 + torch.exp(-x))
    if name == "tanh":
        return torch.tanh(x)
    if name == "mish":
        return x * torch.tanh(F.softplus(x))
    if name == "swish":
        return x * torch.sigmoid(x)
    raise NotImplementedError(name)


class DarknetTorch(nn.Module):
    """The cfg as a torch module; parameters in darknet's own terms (biases, scales, rolling_*)."""

    def __init__(self, cfg: str, height: int | None = None, width: int | None = None) -> None:
        super().__init__()
        sections = parse_cfg(cfg)
        net = sections[0][1]
        self.c, self.h, self.w = int(net["channels"]), height or int(net["height"]), width or int(net["width"])
        self.layers = sections[1:]
        self.params = nn.ParameterDict()
        c, h, w = self.c, self.h, self.w
        self.shapes: list[tuple[int, int, int]] = []
        for i, (kind, o) in enumerate(self.layers):
            if kind == "convolutional":
                n, k, s, g = int(o["filters"]), int(o["size"]), int(o.get("stride", 1)), int(o.get("groups", 1))
                p = k // 2 if int(o.get("pad", 0)) else 0
                self._add(i, "biases", n)
                if int(o.get("batch_normalize", 0)):
                    self._add(i, "scales", n), self._add(i, "rolling_mean", n), self._add(i, "rolling_variance", n)
                self._add(i, "weights", n, c // g, k, k)
                c, h, w = n, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            elif kind == "maxpool":
                s = int(o.get("stride", 1))
                k = int(o.get("size", s))
                p = int(o.get("padding", k - 1))
                h, w = (h + p - k) // s + 1, (w + p - k) // s + 1
            elif kind == "avgpool":
                h = w = 1
            elif kind == "connected":
                n = int(o["output"])
                self._add(i, "biases", n)
                self._add(i, "weights", n, c * h * w)
                if int(o.get("batch_normalize", 0)):
                    self._add(i, "scales", n), self._add(i, "rolling_mean", n), self._add(i, "rolling_variance", n)
                c, h, w = n, 1, 1
            elif kind == "route":
                refs = [int(v) for v in o["layers"].split(",")]
                shapes = [self.shapes[r if r >= 0 else i + r] for r in refs]
                c, h, w = sum(sh[0] for sh in shapes) // int(o.get("groups", 1)), shapes[0][1], shapes[0][2]
            elif kind == "upsample":
                s = int(o.get("stride", 2))
                h, w = h * s, w * s
            self.shapes.append((c, h, w))

    def _add(self, i: int, what: str, *shape: int) -> None:
        self.params[f"l{i}_{what}"] = nn.Parameter(torch.zeros(shape), requires_grad=False)

    def ordered(self) -> list[nn.Parameter]:
        """Parameters in .weights file order."""
        out = []
        for i, (kind, o) in enumerate(self.layers):
            bn = int(o.get("batch_normalize", 0))
            if kind == "convolutional":
                names = ["biases"] + (["scales", "rolling_mean", "rolling_variance"] if bn else []) + ["weights"]
            elif kind == "connected":
                names = ["biases", "weights"] + (["scales", "rolling_mean", "rolling_variance"] if bn else [])
            else:
                continue
            out += [self.params[f"l{i}_{n}"] for n in names]
        return out

    def randomize(self, seed: int) -> "DarknetTorch":
        """Seeded weights with realistic scales (He-like conv weights, positive variances)."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.params.items():
                kind = name.split("_", 1)[1]
                if kind == "weights":
                    fan_in = int(np.prod(p.shape[1:]))
                    p.copy_(torch.randn(p.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                elif kind == "biases":
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
                elif kind == "scales":
                    p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.75)
                elif kind == "rolling_mean":
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
                else:
                    p.copy_(torch.rand(p.shape, generator=g) * 1.5 + 0.5)
        return self

    def save_weights(self, path: str | Path, version: tuple[int, int, int] = (0, 2, 0), seen: int = 32013312) -> Path:
        major, minor, revision = version
        head = struct.pack("<iii", major, minor, revision)
        head += struct.pack("<Q", seen) if major * 10 + minor >= 2 else struct.pack("<i", seen)
        body = b"".join(p.detach().numpy().astype("<f4").tobytes() for p in self.ordered())
        Path(path).write_bytes(head + body)
        return Path(path)

    def load_weights(self, path: str | Path) -> "DarknetTorch":
        data = Path(path).read_bytes()
        major, minor, _ = struct.unpack_from("<iii", data)
        offset = 20 if major * 10 + minor >= 2 and major < 1000 and minor < 1000 else 16
        values = np.frombuffer(data[offset:], "<f4")
        pos = 0
        with torch.no_grad():
            for p in self.ordered():
                n = p.numel()
                p.copy_(torch.from_numpy(values[pos:pos + n].copy()).reshape(p.shape))
                pos += n
        if pos != len(values):
            raise ValueError(f"{path}: {len(values)} values, the cfg needs {pos}")
        return self

    def _p(self, i: int, what: str) -> torch.Tensor:
        return self.params[f"l{i}_{what}"]

    def _bn(self, i: int, y: torch.Tensor, dims: int) -> torch.Tensor:
        shape = (1, -1) + (1,) * dims
        mean, var = self._p(i, "rolling_mean").reshape(shape), self._p(i, "rolling_variance").reshape(shape)
        y = (y - mean) / (torch.sqrt(var) + 1e-6)
        return y * self._p(i, "scales").reshape(shape)

    def forward(self, x: torch.Tensor):
        outs: list[torch.Tensor] = []
        heads = []
        for i, (kind, o) in enumerate(self.layers):
            if kind == "convolutional":
                k, s, g = int(o["size"]), int(o.get("stride", 1)), int(o.get("groups", 1))
                p = k // 2 if int(o.get("pad", 0)) else 0
                y = F.conv2d(x, self._p(i, "weights"), None, s, p, 1, g)
                if int(o.get("batch_normalize", 0)):
                    y = self._bn(i, y, 2)
                x = _act(y + self._p(i, "biases").reshape(1, -1, 1, 1), o.get("activation", "logistic"))
            elif kind == "maxpool":
                s = int(o.get("stride", 1))
                k = int(o.get("size", s))
                p = int(o.get("padding", k - 1))
                out_h, out_w = (x.shape[2] + p - k) // s + 1, (x.shape[3] + p - k) // s + 1
                # pad -inf: p//2 before; after, whatever the last window reaches
                after_h, after_w = (out_h - 1) * s + k - x.shape[2] - p // 2, (out_w - 1) * s + k - x.shape[3] - p // 2
                padded = F.pad(x, (p // 2, max(after_w, 0), p // 2, max(after_h, 0)), value=float("-inf"))
                x = F.max_pool2d(padded, k, s)[:, :, :out_h, :out_w]
            elif kind == "avgpool":
                x = x.mean(dim=(2, 3), keepdim=True)
            elif kind == "connected":
                y = x.reshape(x.shape[0], -1) @ self._p(i, "weights").T
                if int(o.get("batch_normalize", 0)):
                    y = self._bn(i, y, 0)
                x = _act(y + self._p(i, "biases"), o.get("activation", "logistic")).reshape(x.shape[0], -1, 1, 1)
            elif kind == "route":
                refs = [int(v) for v in o["layers"].split(",")]
                parts = [outs[r if r >= 0 else i + r] for r in refs]
                groups, gid = int(o.get("groups", 1)), int(o.get("group_id", 0))
                parts = [t.chunk(groups, dim=1)[gid] for t in parts]
                x = torch.cat(parts, dim=1)
            elif kind == "shortcut":
                other = outs[int(o["from"]) + i if int(o["from"]) < 0 else int(o["from"])]
                x = _act(x + other, o.get("activation", "linear"))
            elif kind == "upsample":
                s = int(o.get("stride", 2))
                x = x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)
            elif kind == "yolo":
                classes = int(o.get("classes", 20))
                n = len(o["mask"].split(","))
                b, _, h, w = x.shape
                y = x.reshape(b, n, classes + 5, h, w).clone()
                y[:, :, 0:2] = torch.sigmoid(y[:, :, 0:2])
                y[:, :, 4:] = torch.sigmoid(y[:, :, 4:])
                x = y.reshape(b, -1, h, w)
                heads.append(x)
            elif kind == "softmax":
                x = torch.softmax(x.reshape(x.shape[0], -1), dim=1).reshape(x.shape)
            elif kind in ("dropout", "cost"):
                pass
            else:
                raise NotImplementedError(kind)
            outs.append(x)
        return tuple(heads) if heads else x


# --------------------------------------------------------------------------- examples

EXAMPLES = {
    # name -> (cfg text, input shape)
    "yolov3_tiny_160": (yolov3_tiny_cfg(160), (1, 3, 160, 160)),
    "darknet_classifier": (CLASSIFIER_CFG, (1, 3, 76, 76)),
}


def write_network(cfg: str, out_dir: str | Path, name: str, seed: int = 0) -> tuple[DarknetTorch, list[Path]]:
    """``<name>.cfg`` and seeded ``<name>.weights`` in ``out_dir``; the torch module loaded from them."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg_path = out / f"{name}.cfg"
    cfg_path.write_text(cfg)
    weights_path = DarknetTorch(cfg).randomize(seed).save_weights(out / f"{name}.weights")
    module = DarknetTorch(cfg).load_weights(weights_path).eval()  # the reference reads the file back
    return module, [cfg_path, weights_path]


def build_darknet_example(name: str, out_dir: str | Path, seed: int = 0, force: bool = False):
    """The archive ``<out_dir>/<name>.tar.gz`` (``<name>.cfg`` + ``<name>.weights``) with seeded
    inputs and the torch implementation's outputs, as a ``models.build.BuildResult``."""
    from models.build import BuildResult
    from models.mxnet_writer import build_cached

    cfg, shape = EXAMPLES[name]
    return build_cached(
        name, "darknet", "DARKNET", out_dir, seed, force,
        sources=("darknet_writer.py", "mxnet_writer.py"),
        shapes={"data": shape},
        make=lambda tmp: write_network(cfg, tmp, name, seed),
        result_type=BuildResult,
        model_file=f"{name}.cfg",
    )


def main(argv: list[str] | None = None) -> int:
    return example_main("python -m models.darknet_writer", __doc__.split("\n")[0], EXAMPLES, build_darknet_example, argv)


if __name__ == "__main__":
    sys.exit(main())
