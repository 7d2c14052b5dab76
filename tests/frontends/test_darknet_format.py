"""DarkNet files: .cfg parsing as darknet's read_cfg does it, the .weights header."""

import struct

import numpy as np
import pytest

from neo_local.frontends.darknet_format import FormatError, parse_cfg, read_weights

CFG = """\
[net]
# Testing
batch = 1
width=416   # inline comment
height=416
channels=3 ; also a comment
; a comment line

[convolutional]
batch_normalize=1
filters = 16
activation=leaky

[conv]
filters=8
[maxpool]
size=2
stride=2

[route]
layers = -1, 1
"""


def test_sections_options_and_comments():
    sections = parse_cfg(CFG)
    assert [s.kind for s in sections] == ["net", "convolutional", "convolutional", "maxpool", "route"]
    assert [s.header for s in sections] == ["[net]", "[convolutional]", "[conv]", "[maxpool]", "[route]"]
    assert sections[0].options == {"batch": "1", "width": "416", "height": "416", "channels": "3"}
    assert sections[1].options == {"batch_normalize": "1", "filters": "16", "activation": "leaky"}
    assert sections[2].options == {"filters": "8"}
    assert sections[4].options == {"layers": "-1,1"}  # whitespace dropped anywhere, as darknet's strip does
    assert [s.line for s in sections] == [1, 9, 14, 16, 20]


@pytest.mark.parametrize(
    "text,message",
    [
        ("width=3\n[net]\n", "line 1: option 'width=3' comes before any [section]"),
        ("[net]\nwidth 416\n", "line 2: 'width 416' is neither a [section] nor key=value"),
        ("[net\n", "line 1: '[net' is not a [section] header"),
        ("# nothing\n", "it has no sections"),
    ],
)
def test_bad_cfgs(text, message):
    with pytest.raises(FormatError) as err:
        parse_cfg(text)
    assert str(err.value) == message


def test_weights_header_with_64_bit_seen():
    values = np.array([1.5, -2.0, 3.25], np.float32)
    data = struct.pack("<iiiQ", 0, 2, 5, 32013312) + values.tobytes()
    w = read_weights(data)
    assert (w.major, w.minor, w.revision, w.seen, w.transpose) == (0, 2, 5, 32013312, False)
    np.testing.assert_array_equal(w.values, values)


def test_weights_header_with_32_bit_seen():
    """Version 0.1 (and older files) wrote ``seen`` as a 32-bit int."""
    values = np.array([0.5, 0.25], np.float32)
    w = read_weights(struct.pack("<iiii", 0, 1, 0, 1000) + values.tobytes())
    assert (w.major, w.minor, w.seen) == (0, 1, 1000)
    np.testing.assert_array_equal(w.values, values)


def test_transposed_marker():
    w = read_weights(struct.pack("<iiii", 1001, 0, 0, 7))
    assert w.transpose and w.seen == 7 and w.values.size == 0


@pytest.mark.parametrize(
    "data,message",
    [
        (b"\x00" * 10, "it has 10 bytes, fewer than the 16 of a darknet header"),
        (struct.pack("<iiii", 0, 2, 0, 0), "it has 16 bytes, fewer than the 20 of a version 0.2 header"),
        (struct.pack("<iiiQ", 0, 2, 0, 0) + b"\x00" * 6, "its 6 bytes after the header are not whole float32 values"),
        (struct.pack("<iiii", -5, 0, 0, 0), "its header version -5.0.0 is not a darknet version"),
    ],
)
def test_bad_weights(data, message):
    with pytest.raises(FormatError) as err:
        read_weights(data)
    assert str(err.value) == message
