"""The x86 int8 dot products that ``schedule_conv`` tensorizes an int8 conv's innermost loops into.

One step: ``lanes`` int32 accumulators (one output-channel block) += 4 uint8 inputs (one
broadcast 32-bit word) x the lanes x 4 int8 weights of those channels. Two kinds of instruction:

- VNNI (``vpdpbusd``; AVX512_VNNI on zmm, AVX-VNNI or AVX512_VNNI+VL on ymm): the four products
  of each lane summed into its int32 in one instruction, exact (the LLVM of TVM 0.27 takes its
  operands as byte vectors).
- AVX2 / AVX-512BW without VNNI (``vpmaddubsw`` then ``vpmaddwd`` by ones): neighbouring products
  are first added into int16 with saturation, so the Relax rewrite sends only the convs whose
  pair sums cannot saturate (``quantized.pairs_fit_int16``; onnxruntime's ``reduce_range`` 7-bit
  weights always fit).

Measured on a 128->128 3x3 at 28x28 (2 threads, znver3): the AVX2 form at 2.3x the float conv's speed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from tvm import tirx
from tvm.s_tir import TensorIntrin
from tvm.script import tirx as T

#: input channels per step: one 32-bit word of uint8
GROUP = 4
#: the annotation of a conv or matmul block computed on a dot instruction (this module's,
#: ``bf16_dot``'s), naming it
DOT_ATTR = "neo_local.dot"


def widen(value: tirx.PrimExpr) -> tirx.PrimExpr:
    """An int8 or uint8 operand as the int32 it is summed in."""
    return value.astype("int32")


@dataclass(frozen=True)
class DotInstruction:
    """One dot step that ``schedule_conv`` tensorizes a conv's innermost loops into (this module's
    int8 ones, ``bf16_dot``'s): its registered intrinsic, accumulator lanes (the output-channel
    block), whether it adds product pairs in int16 first, the register tile's accumulators (the
    rest of the register file holds the tile's input broadcasts and the step's temporaries), the
    input channels of one step, the bytes of one weight, LLVM IR that the kernels calling it
    link (``bf16_dot``: its intrinsic's bfloat vectors, which TVM's types cannot spell), and how
    one operand becomes the accumulators' type in the conv's compute."""

    name: str
    lanes: int
    saturates: bool
    max_acc: int
    group: int = GROUP
    weight_bytes: int = 1
    llvm_import: str = ""
    widen: Callable[[tirx.PrimExpr], tirx.PrimExpr] = widen
    #: (the loops one step replaces, its implementation): TensorIntrin's two functions, made on first use
    intrinsic: Callable[[], tuple[Any, Any]] | None = None

    def registered(self) -> str:
        """The instruction's TensorIntrin name, registered on first use. TVMScript parses each
        description and implementation in about 0.2 s: registering the six at import took 2.1 s of
        every compile, float32 ones included."""
        with _REGISTERING:
            if TensorIntrin.get(self.name, allow_missing=True) is None:
                TensorIntrin.register(self.name, *self.intrinsic())
        return self.name


_REGISTERING = threading.Lock()


#: storage scope of a register tile's accumulators (the conv's, depthwise conv's and matmul's
#: cache_write, and the dot steps' ``c``). TVM 0.27 keeps a small constant-size buffer on the stack
#: (where LLVM turns it into registers) only in scope "global"; a "local" one is allocated through
#: TVMBackendAllocWorkspace, once per parallel loop iteration: MobileNetV2-style's kernels made
#: ~2,000 such calls a run, 20% of its time on a Zen 3 (measured with perf)
ACCUMULATOR_SCOPE = "global"


def description(lanes: int, group: int, operands: tuple[str, str], accumulator: str,
                widen: Callable[[tirx.PrimExpr], tirx.PrimExpr]):
    """The loops one dot step replaces, as tensorize matches them in a conv's block:
    ``c[i] += widen(a[k]) * widen(b[i, k])`` over ``lanes`` accumulators and ``group`` input
    channels; ``operands``: the dtypes of a (inputs) and b (weights)."""
    a_dtype, b_dtype = operands

    @T.prim_func(s_tir=True)
    def step(a: T.Buffer((group,), a_dtype, offset_factor=1), b: T.Buffer((lanes, group), b_dtype, offset_factor=1),
             c: T.Buffer((lanes,), accumulator, offset_factor=1, scope=ACCUMULATOR_SCOPE)) -> None:
        with T.sblock("root"):
            T.reads(c[0:lanes], a[0:group], b[0:lanes, 0:group])
            T.writes(c[0:lanes])
            for i in T.serial(0, lanes):
                for k in T.serial(0, group):
                    with T.sblock("update"):
                        vi, vk = T.axis.remap("SR", [i, k])
                        c[vi] = c[vi] + widen(a[vk]) * widen(b[vi, vk])

    return step


def _step(lanes: int, intrinsics: tuple[str, ...]):
    """One step on ``vpdpbusd`` (one intrinsic) or on ``vpmaddubsw`` + ``vpmaddwd`` by ones (two)."""
    i32, i16, i8 = f"int32x{lanes}", f"int16x{2 * lanes}", f"int8x{4 * lanes}"
    vnni = len(intrinsics) == 1

    @T.prim_func(s_tir=True)
    def step(a: T.Buffer((4,), "uint8", offset_factor=1), b: T.Buffer((lanes, 4), "int8", offset_factor=1),
             c: T.Buffer((lanes,), "int32", offset_factor=1, scope=ACCUMULATOR_SCOPE)) -> None:
        with T.sblock("root"):
            T.reads(c[0:lanes], a[0:4], b[0:lanes, 0:4])
            T.writes(c[0:lanes])
            # one expression, no named values: TVMScript makes each name a local buffer, which TVM
            # allocates through TVMBackendAllocWorkspace once per parallel task (a TFLite CNN's
            # 16 -> 48 1x1 conv, 52 tasks of 60 steps: 9.7 us on one thread, 3.7 without those calls)
            if vnni:
                c[T.ramp(T.int32(0), 1, lanes)] = T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id(intrinsics[0]), c.vload([0], dtype=i32),
                    T.reinterpret(T.broadcast(T.reinterpret(a.vload([0], "uint8x4"), dtype="int32"), lanes), dtype=i8),
                    b.vload([0, 0], dtype=i8), dtype=i32)
            else:
                c[T.ramp(T.int32(0), 1, lanes)] += T.call_llvm_pure_intrin(
                    T.llvm_lookup_intrinsic_id(intrinsics[-1]),
                    T.call_llvm_pure_intrin(
                        T.llvm_lookup_intrinsic_id(intrinsics[0]),
                        T.reinterpret(T.broadcast(T.reinterpret(a.vload([0], "uint8x4"), dtype="int32"), lanes), dtype=i8),
                        b.vload([0, 0], dtype=i8), dtype=i16),
                    T.broadcast(T.int16(1), 2 * lanes), dtype=i32)

    return step


def _instruction(name: str, lanes: int, saturates: bool, *intrinsics: str) -> DotInstruction:
    return DotInstruction(name, lanes, saturates, lanes, intrinsic=lambda: (
        description(lanes, GROUP, ("uint8", "int8"), "int32", widen), _step(lanes, intrinsics)))


VNNI_512 = _instruction("neo_local_u8s8_dot_16x4_vnni", 16, False, "llvm.x86.avx512.vpdpbusd.512")
VNNI_256 = _instruction("neo_local_u8s8_dot_8x4_vnni", 8, False, "llvm.x86.avx512.vpdpbusd.256")
AVX512BW = _instruction("neo_local_u8s8_dot_16x4_avx512bw", 16, True,
                        "llvm.x86.avx512.pmaddubs.w.512", "llvm.x86.avx512.pmaddw.d.512")
AVX2 = _instruction("neo_local_u8s8_dot_8x4_avx2", 8, True, "llvm.x86.avx2.pmadd.ub.sw", "llvm.x86.avx2.pmadd.wd")
BY_NAME = {i.name: i for i in (VNNI_512, VNNI_256, AVX512BW, AVX2)}


def for_target(lanes: int, features: set[str]) -> DotInstruction | None:
    """The best int8 dot of an x86 target with ``lanes``-wide float blocks and LLVM ``features``."""
    if lanes == 16:
        return VNNI_512 if "avx512vnni" in features else AVX512BW if "avx512bw" in features else None
    if lanes == 8:
        if "avxvnni" in features or {"avx512vnni", "avx512vl"} <= features:
            return VNNI_256
        return AVX2 if "avx2" in features else None
    return None
