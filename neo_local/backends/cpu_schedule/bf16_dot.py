"""The bfloat16 dot product of the opt-in bfloat16 precision (CompilerOptions ``precision``).

With it, every float conv that ``schedule_conv`` schedules in blocks reads its input and weights
as bfloat16 (float32 rounded to 8 significant bits, to nearest even) and sums their products in
float32: one AVX512_BF16 ``vdpbf16ps`` step adds the products of 2 input channels (one broadcast
32-bit word) with the lanes x 2 weights of those channels into ``lanes`` float32 accumulators,
twice the multiply-adds of a float32 FMA, from half the bytes. The conv's input is rounded where
it is made (the conversion fuses into the producing kernel's epilogue), its weights once, at
compile time. Dense layers take the same step per 16 output columns (``dot_matmul``).

TVM has no bfloat vector type for LLVM (its bfloat16 values are stored as 16-bit integers and
computed in float32), and LLVM's intrinsic takes ``<32 x bfloat>``: the step calls a small LLVM
function that reinterprets the bits and calls the intrinsic, linked into each kernel and inlined
(``DotInstruction.llvm_import``). Here bfloat16 values are int16 bit patterns throughout.

Measured (Zen 5, 2 threads, in one process): ResNet-50-style 19.2 -> 10.7 ms (onnxruntime's
float32: 18.4 ms), its outputs 0.046 of their largest magnitude from float32's (README, bfloat16).
"""

from __future__ import annotations

import tvm
from tvm import te
from tvm.script import tirx as T

from neo_local.backends.cpu_schedule.int8_dot import ACCUMULATOR_SCOPE, DotInstruction, description

#: input channels per step: one 32-bit word of two bfloat16
GROUP = 2
#: how bfloat16 bit patterns are held (the padding's zero is +0.0)
BITS = "int16"


def widen(bits: tvm.tirx.PrimExpr) -> tvm.tirx.PrimExpr:
    """A bfloat16 bit pattern's float32 value: the upper half of its bits."""
    return tvm.tirx.reinterpret("float32", bits.astype("int32") << 16)


def _llvm(lanes: int) -> str:
    """The step as an LLVM function of TVM's types: int16 vectors of bfloat16 bits."""
    pairs, suffix = 2 * lanes, 32 * lanes
    intrinsic = f"llvm.x86.avx512bf16.dpbf16ps.{suffix}"
    return f"""
declare <{lanes} x float> @{intrinsic}(<{lanes} x float>, <{pairs} x bfloat>, <{pairs} x bfloat>)
define <{lanes} x float> @{_function(lanes)}(<{lanes} x float> %c, <{pairs} x i16> %a, <{pairs} x i16> %b) {{
  %x = bitcast <{pairs} x i16> %a to <{pairs} x bfloat>
  %y = bitcast <{pairs} x i16> %b to <{pairs} x bfloat>
  %r = call <{lanes} x float> @{intrinsic}(<{lanes} x float> %c, <{pairs} x bfloat> %x, <{pairs} x bfloat> %y)
  ret <{lanes} x float> %r
}}
"""


def _function(lanes: int) -> str:
    return f"neo_local_dpbf16ps_{32 * lanes}"


def _step(lanes: int):
    """One step as the call of ``_llvm``'s function."""
    f32, bits = f"float32x{lanes}", f"{BITS}x{GROUP * lanes}"

    @T.prim_func(s_tir=True)
    def step(a: T.Buffer((GROUP,), BITS, offset_factor=1), b: T.Buffer((lanes, GROUP), BITS, offset_factor=1),
             c: T.Buffer((lanes,), "float32", offset_factor=1, scope=ACCUMULATOR_SCOPE)) -> None:
        with T.sblock("root"):
            T.reads(c[0:lanes], a[0:GROUP], b[0:lanes, 0:GROUP])
            T.writes(c[0:lanes])
            # one expression: named values become local buffers (``int8_dot._step``)
            c[T.ramp(T.int32(0), 1, lanes)] = T.call_pure_extern(
                f32, _function(lanes), c.vload([0], dtype=f32),
                T.reinterpret(T.broadcast(T.reinterpret(a.vload([0], f"{BITS}x{GROUP}"), dtype="int32"), lanes),
                              dtype=bits),
                b.vload([0, 0], dtype=bits))

    return step


def _instruction(name: str, lanes: int) -> DotInstruction:
    return DotInstruction(name, lanes, False, 16, group=GROUP, weight_bytes=2, llvm_import=_llvm(lanes),
                          widen=widen, intrinsic=lambda: (
                              description(lanes, GROUP, (BITS, BITS), "float32", widen), _step(lanes)))


BF16_512 = _instruction("neo_local_bf16_dot_16x2_avx512bf16", 16)
BF16_256 = _instruction("neo_local_bf16_dot_8x2_avx512bf16", 8)
BY_NAME = {i.name: i for i in (BF16_512, BF16_256)}


def for_target(lanes: int, features: set[str]) -> DotInstruction | None:
    """The bfloat16 dot of an x86 target with ``lanes``-wide float blocks and LLVM ``features``
    (the 8-lane form on ymm registers needs AVX-512VL too: ShuffleNet's blocks)."""
    if "avx512bf16" not in features:
        return None
    if lanes == 16:
        return BF16_512
    return BF16_256 if lanes == 8 and "avx512vl" in features else None


def to_bits(x: te.Tensor) -> te.Tensor:
    """float32 -> bfloat16 bit patterns, rounded to nearest even (a NaN stays a quiet NaN)."""
    def convert(*i):
        bits = tvm.tirx.reinterpret("uint32", x(*i))
        one = tvm.tirx.const(1, "uint32")
        rounded = (bits + tvm.tirx.const(0x7FFF, "uint32") + ((bits >> 16) & one)) >> 16
        nan = x(*i) != x(*i)
        return tvm.tirx.Select(nan, tvm.tirx.const(0x7FC0, "uint32"), rounded).astype(BITS)

    return te.compute(x.shape, convert, name="to_bf16")
