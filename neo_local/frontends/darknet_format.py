"""DarkNet's two model files, read as darknet's own parser reads them (``src/parser.c``).

``.cfg``: INI-like sections (``[net]`` first, then one section per layer, names may repeat);
``key=value`` options; whitespace anywhere in a line is dropped (darknet's ``strip``); lines
starting with ``#`` or ``;`` are comments (text after a ``#`` or ``;`` on an option line is
dropped here too; darknet reads such values with ``atoi``/``atof``, which stop at it).

``.weights`` (little-endian): int32 major, int32 minor, int32 revision, then ``seen`` (images
seen in training) as uint64 when ``major*10 + minor >= 2`` (and both < 1000) else int32; then
float32 arrays, per layer in cfg order: convolutional [biases, (scales, rolling_mean,
rolling_variance if batch_normalize), weights]; connected [biases, weights, (scales,
rolling_mean, rolling_variance)]; batchnorm [scales, rolling_mean, rolling_variance].
``major > 1000 or minor > 1000`` marks connected weights stored transposed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

#: darknet's section names and their aliases (``string_to_layer_type``)
ALIASES = {
    "network": "net", "conv": "convolutional", "max": "maxpool", "avg": "avgpool", "conn": "connected",
    "soft": "softmax", "lrn": "normalization", "deconv": "deconvolutional", "silence": "empty",
}


class FormatError(ValueError):
    pass


@dataclass
class Section:
    kind: str                              # canonical name, e.g. "convolutional"
    line: int                              # where the section starts in the .cfg
    options: dict[str, str] = field(default_factory=dict)
    header: str = ""                       # as written, e.g. "[conv]"


def parse_cfg(text: str) -> list[Section]:
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]") or len(line) < 3:
                raise FormatError(f"line {number}: {raw.strip()!r} is not a [section] header")
            name = line[1:-1].lower()
            sections.append(Section(ALIASES.get(name, name), number, {}, f"[{name}]"))
            continue
        line = line.split("#", 1)[0].split(";", 1)[0]
        if "=" not in line:
            raise FormatError(f"line {number}: {raw.strip()!r} is neither a [section] nor key=value")
        if not sections:
            raise FormatError(f"line {number}: option {raw.strip()!r} comes before any [section]")
        key, value = line.split("=", 1)
        sections[-1].options[key] = value
    if not sections:
        raise FormatError("it has no sections")
    return sections


@dataclass(frozen=True)
class WeightsFile:
    major: int
    minor: int
    revision: int
    seen: int
    transpose: bool
    values: np.ndarray  # every float32 after the header


def read_weights(data: bytes) -> WeightsFile:
    if len(data) < 16:
        raise FormatError(f"it has {len(data)} bytes, fewer than the 16 of a darknet header")
    major, minor, revision = struct.unpack_from("<iii", data, 0)
    if major < 0 or minor < 0:
        raise FormatError(f"its header version {major}.{minor}.{revision} is not a darknet version")
    if major * 10 + minor >= 2 and major < 1000 and minor < 1000:
        if len(data) < 20:
            raise FormatError(f"it has {len(data)} bytes, fewer than the 20 of a version {major}.{minor} header")
        (seen,) = struct.unpack_from("<Q", data, 12)
        offset = 20
    else:
        (seen,) = struct.unpack_from("<i", data, 12)
        offset = 16
    body = data[offset:]
    if len(body) % 4:
        raise FormatError(f"its {len(body)} bytes after the header are not whole float32 values")
    values = np.frombuffer(body, dtype="<f4").astype(np.float32)
    return WeightsFile(major, minor, revision, seen, major > 1000 or minor > 1000, values)
