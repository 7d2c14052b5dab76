"""MXNet's two model files, read without MXNet: the ``-symbol.json`` graph and the ``.params``
NDArray list.

The ``.params`` layout (little-endian; MXNet ``src/ndarray/ndarray.cc``, ``NDArray::Save``):

    uint64 0x112 (kMXAPINDArrayListMagic), uint64 reserved
    uint64 count, then ``count`` NDArrays, each:
        uint32 magic: 0xF993FAC9 (V2, with storage type) or 0xF993FACA (V3, NumPy shape
                      semantics; same layout). 0xF993FAC8 (V1) has no storage type. Any other
                      value is a legacy file: it is ndim, followed by ndim uint32 dims.
        V2/V3: int32 storage type (0 dense; 1 row_sparse, 2 csr are not model weights)
        shape: uint32 ndim, int64 dims[ndim]   (ndim 0: an empty array, nothing follows; in V3
               files ndim -1 is the empty array and ndim 0 a scalar)
        context: int32 dev_type, int32 dev_id
        int32 type flag (mshadow: 0 float32, 1 float64, 2 float16, 3 uint8, 4 int32, 5 int8,
                         6 int64, 7 bool, ...)
        raw data, C order
    uint64 count, then ``count`` names, each uint64 length + bytes ("arg:conv0_weight",
    "aux:bn0_moving_mean"; Gluon's ``save_parameters`` writes names without the prefixes)
"""

from __future__ import annotations

import ast
import json
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA

#: mshadow type flags
DTYPES = {
    0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<f2"), 3: np.dtype("u1"),
    4: np.dtype("<i4"), 5: np.dtype("i1"), 6: np.dtype("<i8"), 7: np.dtype("?"),
    8: np.dtype("<i2"), 9: np.dtype("<u2"), 10: np.dtype("<u4"), 11: np.dtype("<u8"),
}
_STORAGE = {0: "default", 1: "row_sparse", 2: "csr"}


class FormatError(ValueError):
    """The bytes are not what the format says; the message says where and what."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise FormatError(f"the file ends at byte {len(self.data)} inside {what} (needs {n} bytes at {self.pos})")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def u32(self, what: str) -> int:
        return self.unpack("I", what)[0]

    def i32(self, what: str) -> int:
        return self.unpack("i", what)[0]

    def u64(self, what: str) -> int:
        return self.unpack("Q", what)[0]


def read_ndarray_list(data: bytes) -> list[tuple[str, np.ndarray]]:
    """(name, array) pairs of an MXNet NDArray list file, in file order. Raises FormatError."""
    r = _Reader(data)
    magic = r.u64("the header")
    if magic != LIST_MAGIC:
        raise FormatError(f"it does not start with the NDArray list magic 0x112 (found {magic:#x})")
    r.u64("the header")  # reserved
    count = r.u64("the array count")
    if count > len(data):  # each array takes at least 4 bytes: a corrupt count, not a huge file
        raise FormatError(f"the array count {count} cannot fit in {len(data)} bytes")
    arrays = [_read_ndarray(r, i) for i in range(count)]
    n_names = r.u64("the name count")
    if n_names not in (0, count):
        raise FormatError(f"it has {count} arrays but {n_names} names")
    names = []
    for i in range(n_names):
        length = r.u64(f"the length of name {i}")
        raw = r.take(length, f"name {i}")
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise FormatError(f"name {i} is not UTF-8 text") from exc
    if not names:
        names = [str(i) for i in range(count)]
    return list(zip(names, arrays))


def _read_ndarray(r: _Reader, index: int) -> np.ndarray:
    what = f"array {index}"
    magic = r.u32(what)
    if magic in (V2_MAGIC, V3_MAGIC):
        stype = r.i32(what)
        if stype != 0:
            kind = _STORAGE.get(stype, f"storage type {stype}")
            raise FormatError(f"{what} is a {kind} array; only dense arrays are model parameters")
        shape = _read_shape(r, what, numpy_semantics=magic == V3_MAGIC)
    elif magic == V1_MAGIC:
        shape = _read_shape(r, what, numpy_semantics=False)
    else:  # legacy: the magic is ndim, dims are uint32
        ndim = magic
        if ndim > 32:
            raise FormatError(f"{what} starts with {magic:#x}, neither an NDArray magic nor a plausible ndim")
        shape = tuple(r.unpack(f"{ndim}I", what)) if ndim else None
    if shape is None:  # an empty (none) array: nothing more was written
        return np.zeros((0,), dtype=np.float32)
    r.unpack("ii", what)  # context: dev_type, dev_id; the data is always written from the CPU
    flag = r.i32(what)
    dtype = DTYPES.get(flag)
    if dtype is None:
        raise FormatError(f"{what} has the unknown type flag {flag}")
    count = int(np.prod(shape, dtype=np.int64))  # 1 for a scalar
    raw = r.take(count * dtype.itemsize, f"the data of {what} (shape {list(shape)}, {dtype.name})")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _read_shape(r: _Reader, what: str, numpy_semantics: bool) -> tuple[int, ...] | None:
    """None for an array without data: ndim 0 in V1/V2 files; in V3 (NumPy shape semantics)
    ndim -1, while ndim 0 is a scalar."""
    ndim = r.i32(what)
    if ndim < 0 or (ndim == 0 and not numpy_semantics):
        return None
    if ndim > 32:
        raise FormatError(f"{what} claims {ndim} dimensions")
    dims = r.unpack(f"{ndim}q", what)
    if any(d < 0 for d in dims):
        raise FormatError(f"{what} has a negative dimension: {list(dims)}")
    return tuple(dims)


# --------------------------------------------------------------------------- symbol


@dataclass(frozen=True)
class Node:
    index: int
    op: str                               # "null" for variables (inputs and parameters)
    name: str
    attrs: dict[str, str]
    inputs: tuple[tuple[int, int], ...]   # (node index, output index)


@dataclass(frozen=True)
class Symbol:
    nodes: tuple[Node, ...]
    arg_nodes: tuple[int, ...]
    heads: tuple[tuple[int, int], ...]
    attrs: dict[str, Any] = field(default_factory=dict)


def parse_symbol(text: str) -> Symbol:
    """The graph of a ``-symbol.json`` file. Raises FormatError."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise FormatError(f"it is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list) or "heads" not in doc:
        raise FormatError('it has no "nodes" list and "heads" (is it a -symbol.json written by MXNet?)')
    nodes = []
    for i, raw in enumerate(doc["nodes"]):
        if not isinstance(raw, dict) or "op" not in raw or "name" not in raw:
            raise FormatError(f'node {i} has no "op" and "name"')
        # "attrs" since MXNet 0.9.5 / nnvm; "param" and "attr" in older files
        attrs: dict[str, str] = {}
        for key in ("param", "attr", "attrs"):
            value = raw.get(key)
            if isinstance(value, dict):
                attrs.update({str(k): str(v) for k, v in value.items()})
        inputs = tuple(_entry(e, i, len(doc["nodes"])) for e in raw.get("inputs", []))
        nodes.append(Node(i, str(raw["op"]), str(raw["name"]), attrs, inputs))
    arg_nodes = doc.get("arg_nodes")
    if not isinstance(arg_nodes, list):
        arg_nodes = [n.index for n in nodes if n.op == "null"]
    heads = tuple(_entry(e, -1, len(nodes)) for e in doc["heads"])
    if not heads:
        raise FormatError("it has no heads (outputs)")
    return Symbol(tuple(nodes), tuple(int(a) for a in arg_nodes), heads, dict(doc.get("attrs") or {}))


def _entry(value: Any, node: int, count: int) -> tuple[int, int]:
    where = f"node {node}" if node >= 0 else "heads"
    if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, int) for v in value[:2]):
        raise FormatError(f"{where} has an input entry {value!r}; expected [node, output, version]")
    if not 0 <= value[0] < count or (node >= 0 and value[0] >= node):
        raise FormatError(f"{where} refers to node {value[0]}, which is not an earlier node")
    return int(value[0]), int(value[1])


# --------------------------------------------------------------------------- attribute values


def attr_bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1"):
        return True
    if v in ("false", "0"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def attr_tuple(value: str) -> tuple:
    """``"(3, 3)"``, ``"[3,3]"``, ``"3"``, ``"(None, 2)"``, ``"()"`` -> tuples of ints/floats/None."""
    v = value.strip()
    if v in ("", "None"):
        return ()
    try:
        parsed = ast.literal_eval(v)
    except (ValueError, SyntaxError):
        raise ValueError(f"{value!r} is not a tuple of numbers") from None
    if isinstance(parsed, (int, float)) or parsed is None:
        return (parsed,)
    if not isinstance(parsed, (tuple, list)) or not all(isinstance(x, (int, float)) or x is None for x in parsed):
        raise ValueError(f"{value!r} is not a tuple of numbers")
    return tuple(parsed)


def attr_float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None


def attr_int(value: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an integer") from None
    if number != int(number):
        raise ValueError(f"{value!r} is not an integer")
    return int(number)
