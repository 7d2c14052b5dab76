"""MXNet files read without MXNet: the .params NDArray list and -symbol.json."""

import json
import struct

import numpy as np
import pytest

from models.mxnet_writer import write_ndarray_list
from neo_local.frontends.mxnet_format import (
    FormatError, attr_bool, attr_int, attr_tuple, parse_symbol, read_ndarray_list,
)

# One float32 array [1.0, -2.0] named "arg:w", byte by byte as MXNet's NDArray::Save writes it
ONE_ARRAY = bytes.fromhex(
    "1201000000000000"      # uint64 kMXAPINDArrayListMagic 0x112
    "0000000000000000"      # uint64 reserved
    "0100000000000000"      # uint64 number of arrays
    "c9fa93f9"              # uint32 NDARRAY_V2_MAGIC 0xF993FAC9
    "00000000"              # int32 storage type: default (dense)
    "01000000"              # uint32 ndim
    "0200000000000000"      # int64 dims[0]
    "01000000" "00000000"   # context: dev_type 1 (cpu), dev_id 0
    "00000000"              # int32 type flag 0: float32
    "0000803f" "000000c0"   # 1.0, -2.0
    "0100000000000000"      # uint64 number of names
    "0500000000000000"      # uint64 length
) + b"arg:w"


def _array(magic: int, shape, flag: int, data: bytes, with_stype=True, ctx=(1, 0)) -> bytes:
    out = struct.pack("<I", magic)
    if with_stype:
        out += struct.pack("<i", 0)
    out += struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}q", *shape)
    return out + struct.pack("<iii", *ctx, flag) + data


def _list(arrays: list[bytes], names: list[str]) -> bytes:
    out = struct.pack("<QQQ", 0x112, 0, len(arrays)) + b"".join(arrays) + struct.pack("<Q", len(names))
    return out + b"".join(struct.pack("<Q", len(n)) + n.encode() for n in names)


def test_reads_a_hand_built_file():
    [(name, value)] = read_ndarray_list(ONE_ARRAY)
    assert name == "arg:w"
    assert value.dtype == np.float32 and value.tolist() == [1.0, -2.0]


def test_the_writer_produces_the_same_bytes():
    assert write_ndarray_list([("arg:w", np.array([1.0, -2.0], np.float32))]) == ONE_ARRAY


def test_dtypes_shapes_contexts_and_versions():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    ids = np.array([[7, -1]], dtype=np.int64)
    half = np.array([0.5, 1.5, -3.0], dtype=np.float16)
    data = _list(
        [
            _array(0xF993FAC9, w.shape, 0, w.tobytes(), ctx=(2, 1)),       # saved from gpu(1)
            _array(0xF993FACA, ids.shape, 6, ids.tobytes()),                # V3 (NumPy shape) magic
            _array(0xF993FAC8, half.shape, 2, half.tobytes(), with_stype=False),  # V1: no storage type
        ],
        ["arg:w", "aux:ids", "half"],
    )
    items = dict(read_ndarray_list(data))
    np.testing.assert_array_equal(items["arg:w"], w)
    np.testing.assert_array_equal(items["aux:ids"], ids)
    assert items["half"].dtype == np.float16
    np.testing.assert_array_equal(items["half"], half)


def test_empty_arrays_and_v3_scalars():
    none_v2 = struct.pack("<IiI", 0xF993FAC9, 0, 0)                    # ndim 0: nothing follows
    scalar_v3 = struct.pack("<IiI", 0xF993FACA, 0, 0) + struct.pack("<iii", 1, 0, 0) + struct.pack("<f", 2.5)
    none_v3 = struct.pack("<Iii", 0xF993FACA, 0, -1)
    items = read_ndarray_list(_list([none_v2, scalar_v3, none_v3], ["a", "b", "c"]))
    assert [(n, a.shape) for n, a in items] == [("a", (0,)), ("b", ()), ("c", (0,))]
    assert items[1][1] == np.float32(2.5)


def test_legacy_arrays_have_uint32_dims_and_no_magic():
    v = np.array([[1, 2], [3, 4]], np.float32)
    legacy = struct.pack("<III", 2, 2, 2) + struct.pack("<iii", 1, 0, 0) + v.tobytes()
    [(name, value)] = read_ndarray_list(_list([legacy], []))
    assert name == "0"  # a file without names: arrays by position
    np.testing.assert_array_equal(value, v)


def test_round_trip_through_the_writer():
    rng = np.random.default_rng(0)
    items = [("arg:conv_weight", rng.standard_normal((4, 3, 3, 3)).astype(np.float32)),
             ("aux:bn_moving_var", rng.random(4).astype(np.float32)),
             ("arg:scalar_like", np.array([3.5], np.float64))]
    back = read_ndarray_list(write_ndarray_list(items))
    assert [n for n, _ in back] == [n for n, _ in items]
    for (_, a), (_, b) in zip(items, back):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\x13" + ONE_ARRAY[1:], "it does not start with the NDArray list magic 0x112 (found 0x113)"),
        (ONE_ARRAY[:60], "the file ends at byte 60 inside the data of array 0 (shape [2], float32)"),
        (ONE_ARRAY[:24] + struct.pack("<Ii", 0xF993FAC9, 2) + ONE_ARRAY[32:], "array 0 is a csr array"),
        (ONE_ARRAY[:52] + struct.pack("<i", 99) + ONE_ARRAY[56:], "array 0 has the unknown type flag 99"),
        (_list([ONE_ARRAY[24:64]] * 2, ["a"]), "it has 2 arrays but 1 names"),
    ],
    ids=["magic", "truncated", "sparse", "dtype", "names"],
)
def test_damaged_files_say_what_is_wrong(data, message):
    with pytest.raises(FormatError) as err:
        read_ndarray_list(data)
    assert str(err.value).startswith(message)


def test_symbol_nodes_attrs_inputs_and_heads():
    doc = {
        "nodes": [
            {"op": "null", "name": "data", "inputs": []},
            {"op": "null", "name": "w", "attrs": {"__shape__": "(4, 3, 1, 1)"}, "inputs": []},
            {"op": "Convolution", "name": "c", "attrs": {"kernel": "(1, 1)", "num_filter": "4", "no_bias": "True"},
             "inputs": [[0, 0, 0], [1, 0, 0]]},
            {"op": "Activation", "name": "a", "param": {"act_type": "relu"}, "inputs": [[2, 0]]},  # pre-nnvm keys
        ],
        "arg_nodes": [0, 1],
        "heads": [[3, 0, 0]],
    }
    sym = parse_symbol(json.dumps(doc))
    assert [n.op for n in sym.nodes] == ["null", "null", "Convolution", "Activation"]
    assert sym.nodes[2].attrs["kernel"] == "(1, 1)" and sym.nodes[2].inputs == ((0, 0), (1, 0))
    assert sym.nodes[3].attrs == {"act_type": "relu"}
    assert sym.arg_nodes == (0, 1) and sym.heads == ((3, 0),)


@pytest.mark.parametrize(
    "text,message",
    [
        ("{nodes", "it is not JSON"),
        ('{"nodes": []}', 'it has no "nodes" list and "heads"'),
        ('{"nodes": [{"op": "relu", "name": "r", "inputs": [[0, 0, 0]]}], "heads": [[0, 0, 0]]}',
         "node 0 refers to node 0, which is not an earlier node"),
        ('{"nodes": [{"op": "null", "name": "x"}], "heads": []}', "it has no heads"),
    ],
)
def test_bad_symbols(text, message):
    with pytest.raises(FormatError, match="^" + message.replace("[", r"\[")):
        parse_symbol(text)


def test_attribute_values():
    assert attr_tuple("(3, 3)") == (3, 3)
    assert attr_tuple("[1,2]") == (1, 2)
    assert attr_tuple("3") == (3,)
    assert attr_tuple("(2,)") == (2,)
    assert attr_tuple("()") == ()
    assert attr_tuple("(None, 4)") == (None, 4)
    assert attr_bool("True") and attr_bool("1") and not attr_bool("false")
    assert attr_int("16") == 16 and attr_int("2.0") == 2
    for bad in (lambda: attr_bool("maybe"), lambda: attr_tuple("(a, b)"), lambda: attr_int("1.5")):
        with pytest.raises(ValueError):
            bad()
