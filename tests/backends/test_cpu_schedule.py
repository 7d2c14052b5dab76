"""The scheduled CPU pipeline (neo_local.backends.cpu_schedule): kernels and whole models against
torch, which target gets which vector width, and the fallback to TVM's plain pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from tvm import relax  # noqa: E402

from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule.schedules import choose_dw_tile, choose_tile  # noqa: E402


def _host_has(flag: str) -> bool:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return flag in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


AVX2 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "core-avx2"}
A72 = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72"}
ARMV7 = {"kind": "llvm", "mtriple": "armv7l-linux-gnueabihf", "mcpu": "cortex-a53", "mattr": ["+neon"],
         "mfloat-abi": "hard"}
needs_avx2 = pytest.mark.skipif(not _host_has("avx2"), reason="the host cannot run AVX2 code")


@pytest.fixture
def direct_convs(monkeypatch):
    """3x3 convs on the direct schedule, for the tests of its tiles and epilogues: Winograd
    (``cpu_schedule.winograd``) takes these shapes otherwise."""
    from neo_local.backends.cpu_schedule import winograd

    monkeypatch.setattr(winograd, "MIN_TILES", 10 ** 9)


def _run(executable, *arrays):
    vm = relax.VirtualMachine(executable, tvm.cpu())
    return vm["main"](*(tvm.runtime.tensor(a) for a in arrays)).numpy()


def _run_prim_func(func, arrays, target=AVX2):
    """Build one PrimFunc alone and run it on ``arrays`` (the last one its output); returns the output."""
    tensors = [tvm.runtime.tensor(a) for a in arrays]
    tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=tvm.target.Target(target))(
        *tensors)
    return tensors[-1].numpy()


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


# --------------------------------------------------------------------------- target selection


def test_vector_config_by_target():
    assert cpu_schedule.vector_config(AVX2) == (8, 12)
    assert cpu_schedule.vector_config({**AVX2, "mcpu": "znver3"}) == (8, 12)
    assert cpu_schedule.vector_config({**AVX2, "mcpu": "skylake-avx512"}) == (16, 16)
    assert cpu_schedule.vector_config({**AVX2, "mcpu": "x86-64"}) is None  # SSE2 only: plain build
    assert cpu_schedule.vector_config(A72) == (4, 20)  # NEON: 4 fp32 lanes, 20 of the 32 v registers
    assert cpu_schedule.vector_config({**A72, "mattr": ["-neon"]}) is None
    assert cpu_schedule.vector_config(ARMV7) == (4, 8)  # 8 of the 16 q registers
    assert cpu_schedule.vector_config({**ARMV7, "mattr": ["-neon"]}) is None


def _llvm_asm(executable) -> str:
    return next(m for m in executable.mod.imports if m.kind == "llvm").inspect_source("asm")


def test_aarch64_kernels_lower_to_neon_fmla(direct_convs):
    """The conv's register tile (2 output-channel vectors x 7 columns here) becomes NEON fused
    multiply-adds on 4 x fp32 (mostly fmla by element: the input value read by lane), with no vector
    register spilled to the stack inside the reduction; so does the matmul's tile. Numbers for
    aarch64 are checked under qemu (tests/test_pipeline_arm.py)."""
    import re

    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16, 3, 3)).astype("float32")
    ex, stats = cpu_schedule.compile_cpu(_conv_module((1, 16, 14, 14), w, np.zeros(32, "float32"), 1, 1, False, "relu"), A72)
    assert stats["conv"] == 1 and stats["lanes"] == 4, stats
    asm = _llvm_asm(ex)
    conv = asm[asm.index(".L__tvm_parallel_lambda"):]  # the parallel bodies: padding, then the conv tile
    # by lane, or from a broadcast (ld1r); one step of (rc, ry, rx): the 4 input channels of a block, unrolled
    assert len(re.findall(r"fmla\tv\d+\.4s, v\d+\.4s, v\d+\.(4s|s\[\d\])", conv)) >= 2 * 7 * 4
    assert not re.search(r"\b(ldr|ldp)\tq\d+, .*\[sp", conv.split("fmla", 1)[1].rsplit("fmla", 1)[0])
    ex, stats = cpu_schedule.compile_cpu(_matmul_module((1, 16, 64), rng.standard_normal((64, 32)).astype("float32"),
                                                        None, False), A72)
    assert stats["matmul"] == 1, stats
    assert re.search(r"fmla\tv\d+\.4s", _llvm_asm(ex))


def test_avx512_1x1_conv_tile_keeps_its_broadcasts_out_of_the_stack():
    """EfficientNet's 96->32 1x1 conv at 56x56 takes a 2 x 8 tile. With all 16 channels of a block
    unrolled per reduction step, LLVM's scheduling for Zen 4/5 (not Skylake's or Ice Lake's) loaded
    their 128 broadcasts ahead of the FMAs and spilled 63 of them (0.060 ms; 0.038 with 4 channels
    a step): no zmm register may go to the stack now. Compiled only: any x86 host can check it."""
    import re

    rng = np.random.default_rng(0)
    w = (rng.standard_normal((32, 96, 1, 1)) / 10).astype("float32")
    ex, stats = cpu_schedule.compile_cpu(_conv_module((1, 96, 56, 56), w, np.zeros(32, "float32"), 1, 0, False, "none"),
                                         {**AVX2, "mcpu": "znver4"})
    assert stats["conv"] == 1 and stats["lanes"] == 16, stats
    asm = _llvm_asm(ex)
    assert len(re.findall(r"vfmadd\w+\s+[^\n]*zmm", asm)) >= 2 * 8 * 4
    assert not re.search(r"%zmm\d+, -?\d*\(%rsp\)", asm)


def test_register_tiles_are_not_allocated_per_task():
    """A register tile's accumulators live on the stack (then in registers): TVM allocates a buffer
    in scope "local" through TVMBackendAllocWorkspace instead, once per iteration of the parallel
    loop (MobileNetV2-style: ~2,000 calls a run, 20% of its time on a Zen 3). Convs (1x1, depthwise
    without padding) and a matmul: no kernel may call it. Compiled only."""
    rng = np.random.default_rng(0)
    hidden = 32
    block = _inverted_residual_module((1, 8, 14, 14), rng.standard_normal((hidden, 8, 1, 1)).astype("float32"),
                                      rng.standard_normal((hidden, 1, 3, 3)).astype("float32"),
                                      rng.standard_normal((16, hidden, 1, 1)).astype("float32"),
                                      [np.zeros(n, "float32") for n in (hidden, hidden, 16)], 1, 0, "relu6")
    dense = _matmul_module((1, 64, 128), rng.standard_normal((128, 256)).astype("float32"), None, False)
    for mod, kind in ((block, "depthwise"), (dense, "matmul")):
        ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
        assert stats[kind] == 1 and stats["unscheduled"] == 0, stats
        assert "TVMBackendAllocWorkspace" not in _llvm_asm(ex), kind


def test_armv7_kernels_lower_to_neon_vfma(direct_convs):
    """armv7 (VFPv4 NEON): the conv tile (4 output-channel vectors x 2 columns: 8 accumulators) is
    vfma on q registers (4 x fp32). Numbers: tests/test_pipeline_arm.py, under qemu-arm."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16, 3, 3)).astype("float32")
    ex, stats = cpu_schedule.compile_cpu(_conv_module((1, 16, 14, 14), w, np.zeros(32, "float32"), 1, 1, False, "relu"),
                                         ARMV7)
    assert stats["conv"] == 1 and (stats["lanes"], stats["max_acc"]) == (4, 8), stats
    assert _llvm_asm(ex).count("vfma.f32\tq") >= 4 * 2 * 4  # one step of (rc, ry, rx): 4 input channels


@pytest.mark.parametrize("out_w,oc_chunks,max_acc", [(56, 8, 12), (7, 64, 12), (112, 8, 16), (13, 3, 12), (1, 1, 12)])
def test_tile_keeps_accumulators_in_registers(out_w, oc_chunks, max_acc):
    tc, tw = choose_tile(out_w, oc_chunks, max_acc)
    assert out_w % tw == 0 and oc_chunks % tc == 0
    assert 1 <= tc * tw <= max_acc


def test_channel_chunks_without_a_small_divisor_get_five_block_tiles():
    """40 channels (5 blocks) or 1000 classes (125) would leave a 1 x w tile: 5 x 2 instead; 56
    channels (7 blocks: 7 x 1 or 1 x 7) keep 1 x 7."""
    assert choose_tile(28, 5, 12) == (5, 2) and choose_tile(14, 125, 12) == (5, 2)
    assert choose_tile(1, 125, 12) == (5, 1)  # a dense classifier: five independent accumulators
    assert choose_tile(28, 7, 12) == (1, 7)


def test_tiles_leave_avx2_registers_for_their_broadcasts():
    """12 accumulators + one broadcast per column must fit AVX2's 16 registers with one spare:
    3 x 4 (16) and 2 x 6 (18) used to be chosen, and measured slower than 4 x 3 and 2 x 5."""
    assert choose_tile(12, 48, 12) == (4, 3) and choose_tile(52, 24, 12) == (4, 2)
    assert choose_tile(30, 22, 12) == (2, 5) and choose_tile(54, 10, 12) == (2, 3)
    for out_w in range(1, 120):
        for oc_chunks in (1, 2, 3, 5, 6, 10, 22, 24, 125):
            tc, tw = choose_tile(out_w, oc_chunks, 12)
            assert tc * tw + tw <= 15, (out_w, oc_chunks)
    assert choose_tile(28, 4, 16) == (4, 4)  # AVX-512: 16 accumulators + 4 broadcasts of 32 registers


@pytest.mark.parametrize("out_w,max_acc", [(32, 12), (16, 12), (7, 12), (13, 16), (1, 12)])
def test_depthwise_tile_divides_and_leaves_a_register(out_w, max_acc):
    tw = choose_dw_tile(out_w, max_acc)
    assert out_w % tw == 0 and 1 <= tw <= max(1, max_acc - 1)


def test_depthwise_takes_two_row_tiles_where_one_row_is_narrow():
    from neo_local.backends.cpu_schedule.schedules import DwConfig, default_dw_config

    assert default_dw_config(56, 56, 12) == DwConfig(4, tile_h=2)
    assert default_dw_config(16, 16, 12) == DwConfig(4, tile_h=2)
    assert default_dw_config(14, 14, 12) == DwConfig(7)  # 2 x 7 would need 14 accumulators
    assert default_dw_config(8, 8, 12) == DwConfig(8)  # small maps: no gain measured
    assert default_dw_config(15, 16, 12) == DwConfig(8)  # odd rows
    assert default_dw_config(56, 56, 24) == DwConfig(14)  # AVX-512: one row holds 14 already
    assert default_dw_config(28, 28, 16) == DwConfig(14)
    assert default_dw_config(28, 28, 16, stride=2) == DwConfig(4, tile_h=2)  # strided: AVX2's budget


# --------------------------------------------------------------------------- kernels


def _conv_module(x_shape, w, b, stride, pad, residual: bool, act: str):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))
    params = [x]
    with bb.function("main", params):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(w), strides=stride, padding=pad))
            y = bb.emit(relax.op.add(y, relax.const(b.reshape(1, -1, 1, 1))))
            if residual:
                y = bb.emit(relax.op.add(y, relax.op.nn.avg_pool2d(x, 1, strides=stride) if stride != 1 else x))
            if act == "relu":
                y = bb.emit(relax.op.nn.relu(y))
            elif act == "clip":
                y = bb.emit(relax.op.minimum(relax.op.maximum(y, relax.const(0.0)), relax.const(6.0)))
            elif act == "silu":
                y = bb.emit(relax.op.multiply(y, relax.op.sigmoid(y)))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


@needs_avx2
@pytest.mark.parametrize(
    "cin,cout,hw,k,stride,pad,residual,act",
    [
        (16, 16, 14, 3, 1, 1, True, "relu"),    # 3x3 + bias + residual + relu
        (32, 64, 15, 3, 2, 1, False, "clip"),   # odd size, stride 2, relu6
        (16, 48, 12, 1, 1, 0, False, "none"),   # 1x1 without epilogue or crop (cache_write path)
        (3, 16, 20, 7, 2, 3, False, "relu"),    # 3-channel stem (the NCHW input read as NCHW1c)
        (16, 12, 9, 1, 1, 0, False, "relu"),    # 12 output channels (a YOLO head's 255): padded to 16, sliced
        (32, 32, 14, 3, 1, 1, True, "silu"),    # SiLU epilogue: fast_math's sigmoid, not unrolled
        (64, 64, 7, 1, 1, 0, True, "relu"),     # 1x1 at 7x7: its 49 pixels computed as one row of 51 (4 x 3 tiles)
        (512, 32, 7, 3, 1, 1, False, "relu"),   # flat, 590 KB of weights per task: K-blocked, per task
        (256, 32, 7, 3, 1, 1, False, "relu"),   # flat, 295 KB per task: not blocked (K_BLOCK_FLAT_WEIGHTS)
        (256, 32, 28, 3, 1, 1, False, "clip"),  # ... with 107 KB of output per task: per row
        (40, 40, 14, 1, 1, 0, True, "none"),    # 5 channel blocks: 5 x 2 tiles
        (32, 1000, 13, 1, 1, 0, False, "relu"), # SqueezeNet's classifier conv: 125 blocks, 5 x 2 over 14 columns
    ],
)
def test_scheduled_conv_matches_torch(cin, cout, hw, k, stride, pad, residual, act, direct_convs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype("float32")
    b = rng.standard_normal(cout).astype("float32")
    if residual:
        assert cin == cout
    mod = _conv_module(x.shape, w, b, stride, pad, residual, act)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] >= 1 and stats["unscheduled"] == 0, stats
    got = _run(ex, x)

    with torch.no_grad():
        xt = torch.from_numpy(x)
        y = torch.nn.functional.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=pad)
        if residual:
            y = y + (xt if stride == 1 else torch.nn.functional.avg_pool2d(xt, 1, stride))
        if act == "relu":
            y = torch.relu(y)
        elif act == "clip":
            y = torch.clamp(y, 0.0, 6.0)
        elif act == "silu":
            y = torch.nn.functional.silu(y)
    assert got.shape == tuple(y.shape)
    assert _rel(got, y.numpy()) < 1e-5


@needs_avx2
def test_stem_reads_the_nchw_input_in_place():
    """The 3-channel stem reads the NCHW input as NCHW1c (a reshape), so no kernel transposes it
    first (as NCHW3c it did: MobileNetV2-style, MobileNetV3 and ShuffleNetV2 ran 8-9% faster
    without it on znver5); the output's unblocking is the one layout transform left."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal((16, 3, 3, 3)).astype("float32")
    mod = _conv_module((1, 3, 20, 20), w, rng.standard_normal(16).astype("float32"), 2, 1, False, "relu")
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    transforms = [gv.name_hint for gv, _ in opt.functions_items() if "layout_transform" in gv.name_hint]
    (conv,) = [f for gv, f in opt.functions_items() if "conv2d_nchwc" in gv.name_hint]
    assert len(transforms) == 1 and stats["conv"] == 1, (transforms, stats)
    assert "T.Buffer((T.int64(1), T.int64(3), T.int64(20), T.int64(20), T.int64(1)), " in conv.script()


def _inverted_residual_module(x_shape, w_expand, w_dw, w_proj, biases, stride, pad, act):
    """1x1 expand (+bias, act) -> depthwise kxk (+bias, act) -> 1x1 project (+bias) [+ input]."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(x_shape, "float32"))

    def activation(y):
        if act == "relu6":
            return bb.emit(relax.op.minimum(relax.op.maximum(y, relax.const(0.0)), relax.const(6.0)))
        if act == "clip":
            return bb.emit(relax.op.clip(y, 0.0, 6.0))
        return bb.emit(relax.op.nn.relu(y))

    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, relax.const(w_expand)))
            y = activation(bb.emit(relax.op.add(y, relax.const(biases[0].reshape(1, -1, 1, 1)))))
            y = bb.emit(relax.op.nn.conv2d(y, relax.const(w_dw), strides=stride, padding=pad, groups=w_dw.shape[0]))
            y = activation(bb.emit(relax.op.add(y, relax.const(biases[1].reshape(-1, 1, 1)))))  # [C,1,1] bias
            y = bb.emit(relax.op.nn.conv2d(y, relax.const(w_proj)))
            y = bb.emit(relax.op.add(y, relax.const(biases[2].reshape(1, -1, 1, 1))))
            if stride == 1 and x_shape[1] == w_proj.shape[0]:
                y = bb.emit(relax.op.add(y, x))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


@needs_avx2
@pytest.mark.parametrize(
    "cin,hidden,cout,hw,k,stride,act",
    [
        (16, 64, 16, 16, 3, 1, "relu6"),   # residual inverted block; 2 x 4 depthwise tiles
        (8, 24, 8, 20, 5, 1, "relu"),      # 5x5 in 2 x 4 tiles, the padding's border checked in the reads
        (16, 48, 24, 15, 3, 2, "relu6"),   # odd size, stride 2
        (8, 32, 8, 9, 5, 1, "clip"),       # 5x5 depthwise, R.clip, odd width (tile 9)
        (8, 16, 16, 7, 3, 2, "relu"),      # tiny map, relu
    ],
)
def test_scheduled_depthwise_block_matches_torch(cin, hidden, cout, hw, k, stride, act):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    we = (rng.standard_normal((hidden, cin, 1, 1)) / np.sqrt(cin)).astype("float32")
    wd = (rng.standard_normal((hidden, 1, k, k)) / k).astype("float32")
    wp = (rng.standard_normal((cout, hidden, 1, 1)) / np.sqrt(hidden)).astype("float32")
    biases = [rng.standard_normal(n).astype("float32") for n in (hidden, hidden, cout)]
    pad = k // 2
    mod = _inverted_residual_module(x.shape, we, wd, wp, biases, stride, pad, act)

    opt, stats = cpu_schedule.optimize(mod, AVX2)
    assert stats["depthwise"] == 1 and stats["conv"] == 2 and stats["unscheduled"] == 0, stats
    # the whole block stays blocked: one layout_transform in, one out, none between the convs
    calls = [b.value for blk in opt["main"].body.blocks for b in blk.bindings]
    names = [c.args[0].name_hint for c in calls if isinstance(c, relax.Call) and c.args and hasattr(c.args[0], "name_hint")]
    assert sum("layout_transform" in n for n in names) == 2, names
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)

    f = torch.nn.functional
    with torch.no_grad():
        def activation(t):
            return torch.relu(t) if act == "relu" else torch.clamp(t, 0.0, 6.0)

        xt = torch.from_numpy(x)
        y = activation(f.conv2d(xt, torch.from_numpy(we), torch.from_numpy(biases[0])))
        y = activation(f.conv2d(y, torch.from_numpy(wd), torch.from_numpy(biases[1]), stride=stride, padding=pad, groups=hidden))
        y = f.conv2d(y, torch.from_numpy(wp), torch.from_numpy(biases[2]))
        if stride == 1 and cin == cout:
            y = y + xt
    assert got.shape == tuple(y.shape)
    assert _rel(got, y.numpy()) < 1e-5


@needs_avx2
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_paddings_agree_with_the_unscheduled_kernel(stride):
    """Each way of padding a depthwise conv's input (``DW_PADDINGS``: border checks inlined into
    the reads, a padded buffer per task's rows, a padded copy first) computes what the kernel
    does unscheduled."""
    from neo_local.backends.cpu_schedule.passes import relax_passes
    from neo_local.backends.cpu_schedule.schedules import DW_PADDINGS, DwConfig, schedule_depthwise

    rng = np.random.default_rng(5)
    w = lambda *shape: (rng.standard_normal(shape) / 3).astype("float32")  # noqa: E731
    mod = _inverted_residual_module((1, 8, 11, 11), w(16, 8, 1, 1), w(16, 1, 5, 5), w(8, 16, 1, 1),
                                    [w(16), w(16), w(8)], stride, 2, "relu6")
    (dw,) = [f for name, f in _prim_funcs(relax_passes(mod, 8, 12)).items() if "depthwise" in name]
    args = [rng.standard_normal([int(d) for d in p.shape]).astype("float32") for p in dw.params]
    want = _run_prim_func(dw, args)
    for padding in DW_PADDINGS:
        got = _run_prim_func(schedule_depthwise(dw, 8, 12, DwConfig(3 if stride == 1 else 2, padding=padding)), args)
        assert _rel(got, want) < 1e-6, padding


@needs_avx2
def test_depthwise_then_unary_and_spatial_mean_stay_blocked():
    """relu -> depthwise -> sigmoid -> mean(H, W, keepdims=False): the mean runs blocked and only
    its [1, C] result is unblocked; also builds for 16-lane (AVX-512) targets."""
    rng = np.random.default_rng(3)
    c = 32
    w1 = (rng.standard_normal((c, c, 1, 1)) / 6).astype("float32")
    wd = rng.standard_normal((c, 1, 3, 3)).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, c, 10, 10), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.relu(relax.op.nn.conv2d(x, relax.const(w1))))
            y = bb.emit(relax.op.nn.conv2d(y, relax.const(wd), padding=1, groups=c))
            y = bb.emit(relax.op.sigmoid(y))
            out = bb.emit_output(bb.emit(relax.op.mean(y, axis=[2, 3], keepdims=False)))
        bb.emit_func_output(out)
    mod = bb.get()
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["depthwise"] == 1 and stats["unscheduled"] == 0, stats
    xv = rng.standard_normal((1, c, 10, 10)).astype("float32")
    got = _run(ex, xv)
    f = torch.nn.functional
    with torch.no_grad():
        y = torch.relu(f.conv2d(torch.from_numpy(xv), torch.from_numpy(w1)))
        want = torch.sigmoid(f.conv2d(y, torch.from_numpy(wd), padding=1, groups=c)).mean(dim=(2, 3)).numpy()
    assert got.shape == want.shape and _rel(got, want) < 1e-5
    avx512 = {**AVX2, "mcpu": "skylake-avx512"}
    opt, stats = cpu_schedule.optimize(mod, avx512)
    assert stats["lanes"] == 16 and stats["depthwise"] == 1, stats
    tvm.compile(opt, target=tvm.target.Target(avx512))


def test_depthwise_weights_repacked_to_channel_blocks():
    from neo_local.backends.cpu_schedule.passes import blocked_depthwise

    rng = np.random.default_rng(2)
    w = rng.standard_normal((16, 1, 3, 3)).astype("float32")
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 6, 6), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.conv2d(x, relax.const(w), padding=1, groups=16)))
        bb.emit_func_output(out)
    mod = blocked_depthwise(bb.get(), 8)
    convs = [b.value for blk in mod["main"].body.blocks for b in blk.bindings
             if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") == "relax.nn.conv2d"]
    assert len(convs) == 1 and convs[0].attrs.kernel_layout == "OIHW1i8o" and int(convs[0].attrs.groups) == 16
    wb = convs[0].args[1].value.numpy()
    assert wb.shape == (2, 1, 3, 3, 1, 8)
    for c in range(16):
        np.testing.assert_array_equal(wb[c // 8, 0, :, :, 0, c % 8], w[c, 0])


@needs_avx2
@pytest.mark.parametrize("groups", [1, 16])
def test_channels_last_conv_takes_the_blocked_schedules(groups, direct_convs):
    """TFLite's form: NHWC/HWIO conv (HWOI depthwise), a rank-1 bias, R.clip; all of it moves to
    the blocked layout instead of staying channels-last and unscheduled."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 14, 14, 16)).astype("float32")
    w = rng.standard_normal((3, 3, 16 // groups, 16) if groups == 1 else (3, 3, 16, 1)).astype("float32")
    b = rng.standard_normal(16).astype("float32")
    bb = relax.BlockBuilder()
    xv = relax.Var("x", relax.TensorType(x.shape, "float32"))
    with bb.function("main", [xv]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(xv, relax.const(w), padding=1, groups=groups, data_layout="NHWC",
                                           kernel_layout="HWIO" if groups == 1 else "HWOI"))
            y = bb.emit(relax.op.add(y, relax.const(b)))
            out = bb.emit_output(bb.emit(relax.op.clip(y, 0.0, 6.0)))
        bb.emit_func_output(out)
    ex, stats = cpu_schedule.compile_cpu(bb.get(), AVX2)
    assert stats["conv" if groups == 1 else "depthwise"] == 1, stats
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy() if groups == 1 else w.transpose(2, 3, 0, 1).copy())
    want = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), wt, torch.from_numpy(b),
                                      padding=1, groups=groups).clamp(0, 6).numpy().transpose(0, 2, 3, 1)
    assert _rel(_run(ex, x), want) < 1e-5


# --------------------------------------------------------------------------- matmul


def _matmul_module(a_shape, b, bias, gelu: bool):
    """x @ B (+ bias, + erf GELU) as Relax, B and bias constants: a dense layer as importers emit it."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(a_shape, "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.matmul(x, relax.const(b)))
            if bias is not None:
                y = bb.emit(relax.op.add(y, relax.const(bias)))
            if gelu:
                e = bb.emit(relax.op.erf(relax.op.divide(y, relax.const(np.float32(np.sqrt(2))))))
                y = bb.emit(relax.op.multiply(relax.op.multiply(y, relax.op.add(e, relax.const(np.float32(1)))),
                                              relax.const(np.float32(0.5))))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


@needs_avx2
@pytest.mark.parametrize("a_shape,n,bias,gelu", [
    ((1, 64, 128), 512, True, True),     # BERT FFN up-projection with GELU
    ((1, 64, 512), 128, True, False),    # FFN down-projection
    ((6, 40), 24, False, False),         # 2-D, rows not a multiple of 4
    ((2, 3, 8, 16), 32, True, False),    # batch dims fused with the row tiles
    ((1, 64, 96), 40, True, False),      # 5 column vectors: a 5-vector tile (max_tile_c)
])
def test_scheduled_matmul_matches_numpy(a_shape, n, bias, gelu):
    from math import erf

    rng = np.random.default_rng(0)
    x = rng.standard_normal(a_shape).astype("float32")
    b = rng.standard_normal((a_shape[-1], n)).astype("float32")
    bias_v = rng.standard_normal(n).astype("float32") if bias else None
    ex, stats = cpu_schedule.compile_cpu(_matmul_module(a_shape, b, bias_v, gelu), AVX2)
    assert stats["matmul"] == 1, stats
    want = x.astype("float64") @ b
    if bias:
        want = want + bias_v
    if gelu:
        want = want * 0.5 * (1 + np.vectorize(erf)(want / np.sqrt(2)))
    assert _rel(_run(ex, x), want) < 1e-5


def test_dense_weights_are_packed_in_column_panels():
    """A dense layer's constant [K, N] weights become [N/L, K, L] at compile time, so each vector
    of output columns reads its weights in one run down K (BERT-style on Zen 3: 0.609 -> 0.492
    ms); a product of two computed values (attention's) keeps Relax's layout."""
    rng = np.random.default_rng(0)
    opt, stats = cpu_schedule.optimize(_matmul_module((1, 64, 128), rng.standard_normal((128, 512)).astype("float32"),
                                                      None, False), AVX2)
    assert stats["matmul"] == 1, stats
    (dense,) = [f for gv, f in opt.functions_items() if "matmul" in gv.name_hint]
    assert [[int(d) for d in p.shape] for p in dense.params][1] == [64, 128, 8]

    bb = relax.BlockBuilder()
    q, k = (relax.Var(n, relax.TensorType((1, 4, 64, 32), "float32")) for n in "qk")
    with bb.function("main", [q, k]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.matmul(q, relax.op.permute_dims(k, [0, 1, 3, 2]))))
        bb.emit_func_output(out)
    opt, stats = cpu_schedule.optimize(bb.get(), AVX2)
    assert stats["matmul"] == 1, stats
    (product,) = [f for gv, f in opt.functions_items() if "matmul" in gv.name_hint]
    assert sorted([int(d) for d in p.shape] for p in product.params)[0] == [1, 4, 32, 64]


def test_matmul_default_tiles_take_rows_and_unroll_the_reduction():
    from neo_local.backends.cpu_schedule.schedules import MatmulConfig, default_matmul_config

    assert default_matmul_config(64, 64, 12, 128) == MatmulConfig(4, 2, 8)  # not 2 rows x 4 vectors
    assert default_matmul_config(13, 3, 12, 36) == MatmulConfig(1, 3, 4)  # 13 rows: no 3-row tile
    assert default_matmul_config(64, 64, 16, 6) == MatmulConfig(4, 4, 2)
    # ViT's 198 rows (no divisor 4): 3 x 4 turned to 6 x 2, half the vector loads a step
    assert default_matmul_config(198, 96, 12, 192) == MatmulConfig(6, 2, 8)


def test_gemv_and_ragged_columns_are_left_to_dlight():
    ex, stats = cpu_schedule.compile_cpu(_matmul_module((1, 128), np.ones((128, 10), "float32"), None, False), AVX2)
    assert stats["matmul"] == 0, stats


# --------------------------------------------------------------------------- whole models


@needs_avx2
@pytest.mark.parametrize("name", ["resnet_like", "mobilenet_like", "bert_like"])
def test_models_match_torch(name, tmp_path):
    """Whole models vs torch; MobileNet's depthwise convs all take the blocked depthwise schedule,
    the BERT-style encoder's dense layers and attention products the matmul schedule."""
    import onnx

    from models.build import build_example
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    built = build_example(name, "onnx", tmp_path)
    import tarfile

    with tarfile.open(built.archive) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    model = onnx.load(str(tmp_path / "model" / built.model_file))
    specs = tuple(TensorSpec(i["name"], tuple(i["shape"]), i["dtype"]) for i in built.inputs)
    mod, _ = import_onnx(model, specs, name)
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv" if name != "bert_like" else "matmul"] > 0 and stats["unscheduled"] == 0, stats
    if name == "mobilenet_like":
        assert stats["depthwise"] == 7, stats
    inputs = built.load_inputs()
    got = _run(ex, *(inputs[s.name] for s in specs))
    want = built.load_outputs()[0]
    assert _rel(got, want) < 1e-4


# --------------------------------------------------------------------------- fallback


class _Recurrent(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = torch.nn.LSTM(16, 24, 2, batch_first=True), torch.nn.Linear(24, 4)

    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])


@needs_avx2
def test_an_lstm_builds_on_the_scheduled_pipeline():
    """TVM's ConvertLayout failed on an exported LSTM ("tvm::String index out of bounds": its layout
    for the stacked outputs), which sent such models to the plain build (76x onnxruntime's time for
    2 layers over 50 steps); ``stack_as_concat`` gives it a concat instead."""
    torch.manual_seed(2)
    model = _Recurrent().eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 5, 16)), AVX2)
    assert stats["unscheduled"] == 0, stats
    x = np.random.default_rng(2).standard_normal((1, 5, 16)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


class _ConvRecurrent(torch.nn.Module):
    """A text recognizer's shape (CRNN): convs over a line image, its columns read by a
    bidirectional LSTM, a class per column."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d((4, 1)))
        self.lstm, self.head = nn.LSTM(16, 12, 1, batch_first=True, bidirectional=True), nn.Linear(24, 5)

    def forward(self, x):
        y = self.conv(x).squeeze(2).permute(0, 2, 1)  # [N, columns, channels]
        return self.head(self.lstm(y)[0])


@needs_avx2
def test_convs_and_a_bidirectional_lstm_build_on_the_scheduled_pipeline():
    """The stacked directions of a bidirectional LSTM after convs failed ConvertLayout (plain build:
    a CRNN 90x onnxruntime's time); as a concat (``stack_as_concat``) the convs run blocked."""
    torch.manual_seed(3)
    model = _ConvRecurrent().eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 1, 8, 12)), AVX2)
    assert stats["conv"] >= 1 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(3).standard_normal((1, 1, 8, 12)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


class _Windows(torch.nn.Module):
    """A Swin block's window partition around a roll by ``shift`` (0: torch.roll exports a slice of
    everything and an empty one, concatenated), a linear layer per window, and back."""

    def __init__(self, shift: int):
        super().__init__()
        self.shift, self.mix = shift, torch.nn.Linear(16, 16)

    def forward(self, x):  # [1, 8, 8, 16]
        y = torch.roll(x, (-self.shift, -self.shift), (1, 2))
        y = y.reshape(1, 2, 4, 2, 4, 16).permute(0, 1, 3, 2, 4, 5).reshape(4, 16, 16)
        y = self.mix(y).reshape(1, 2, 2, 4, 4, 16).permute(0, 1, 3, 2, 4, 5).reshape(1, 8, 8, 16)
        return x + torch.roll(y, (self.shift, self.shift), (1, 2))


@needs_avx2
@pytest.mark.parametrize("shift", [0, 2])
def test_a_roll_by_nothing_leaves_no_kernel_unscheduled(shift):
    torch.manual_seed(shift)
    model = _Windows(shift).eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, 8, 8, 16)), AVX2)
    assert stats["unscheduled"] == 0, stats
    x = np.random.default_rng(shift).standard_normal((1, 8, 8, 16)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(ex, x), want) < 1e-5


def test_backend_falls_back_to_plain_build(monkeypatch):
    from neo_local.backends import tvm_relax

    def broken(mod, target, *_, **__):
        raise RuntimeError("schedule bug")

    monkeypatch.setattr(cpu_schedule, "compile_cpu", broken)
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.relu(x)))
        bb.emit_func_output(out)
    ex, pipeline = tvm_relax._compile(bb.get(), AVX2)
    assert pipeline == "TVM default (unscheduled: the scheduled pipeline failed: schedule bug)"
    a = np.array([[-1, 2, -3], [4, -5, 6]], "float32")
    if _host_has("avx2"):
        np.testing.assert_array_equal(_run(ex, a), np.maximum(a, 0))


def test_a_bfloat16_build_fails_rather_than_fall_back_to_float32(monkeypatch):
    """The plain build is float32: a bfloat16 request whose scheduled build fails ends the job,
    saying so, instead of handing back a float32 artifact labelled bfloat16."""
    from types import SimpleNamespace

    from neo_local.api.errors import JobFailure
    from neo_local.backends import tvm_relax

    def broken(*_, **__):
        raise RuntimeError("schedule bug")

    monkeypatch.setattr(cpu_schedule, "compile_cpu", broken)
    x = relax.Var("x", relax.TensorType((2, 3), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        bb.emit_func_output(bb.emit(relax.op.nn.relu(x)))
    with pytest.raises(JobFailure) as failed:
        tvm_relax._compile(bb.get(), AVX2, SimpleNamespace(precision="bfloat16", tuning=None))
    assert failed.value.reason == ("InternalError: the bfloat16 build failed (schedule bug). Compile without "
                                   "CompilerOptions precision for a float32 build.")


def test_fallback_reason_names_the_failing_call_not_tvmscript_comments():
    """An int8 conv (QLinearConv / ConvInteger models) is not computed by our blocked kernels;
    the plain build takes it, and Build.Pipeline says what the scheduled pipeline choked on."""
    from neo_local.backends import tvm_relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 16, 8, 8), "int8"))
    w = np.random.default_rng(0).integers(-3, 4, (16, 16, 3, 3)).astype("int8")
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(bb.emit(relax.op.nn.conv2d(x, relax.const(w), padding=1, out_dtype="int32")))
        bb.emit_func_output(out)
    ex, pipeline = tvm_relax._compile(bb.get(), AVX2)
    assert pipeline.startswith("TVM default (unscheduled: the scheduled pipeline failed: R.nn.conv2d("), pipeline
    if _host_has("avx2"):
        a = np.random.default_rng(1).integers(-3, 4, (1, 16, 8, 8)).astype("int8")
        want = torch.nn.functional.conv2d(torch.from_numpy(a).int(), torch.from_numpy(w).int(), padding=1).numpy()
        np.testing.assert_array_equal(_run(ex, a), want)


# --------------------------------------------------------------------------- issue #6 families: pools, concat, dense, widths


def _onnx_module(module, *shapes):
    """``module`` exported to ONNX and imported (the path the benchmark families take)."""
    import tempfile

    import onnx

    from models.export import to_onnx
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    names = [f"input{i}" for i in range(len(shapes))]
    with tempfile.TemporaryDirectory() as tmp:
        to_onnx(module, [torch.randn(*s) for s in shapes], f"{tmp}/m.onnx", names)
        mod, _ = import_onnx(onnx.load(f"{tmp}/m.onnx"), tuple(TensorSpec(n, s, "float32")
                                                             for n, s in zip(names, shapes)), "m")
    return mod


def _after_vectorizing(opt, name: str, target=AVX2) -> str:
    """Kernel ``name`` of an optimized module, built alone for ``target``: its TIR as TVM's
    VectorizeLoop leaves it (a vector store's index is a slice, a scalarized one's a single
    element)."""
    from tvm.ir.instrument import pass_instrument

    from neo_local.backends.cpu_schedule.tir_pipeline import pipeline

    func = next(f for gv, f in opt.functions.items() if gv.name_hint == name).with_attr("global_symbol", "main")
    scripts = []

    @pass_instrument
    class AfterVectorizing:
        def run_after_pass(self, mod, info):
            if info.name == "tirx.VectorizeLoop":
                scripts.append(mod.script())

    with tvm.transform.PassContext(instruments=[AfterVectorizing()]):
        tvm.compile(tvm.IRModule({"main": func}), target=tvm.target.Target(target), tir_pipeline=pipeline())
    return scripts[0]


def _prim_funcs(mod) -> dict:
    return {gv.name_hint: f for gv, f in mod.functions_items() if isinstance(f, tvm.tirx.PrimFunc)}


class _DenseStem(torch.nn.Module):
    """3-channel stem -> ceil-mode maxpool -> two convs concatenated with the pool (DenseNet /
    SqueezeNet style) -> batch norm (not foldable into a conv) -> relu -> avgpool -> conv."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True))
        self.a, self.b = nn.Conv2d(16, 8, 1), nn.Conv2d(16, 16, 3, padding=1)
        self.tail = nn.Sequential(nn.BatchNorm2d(40), nn.ReLU(), nn.AvgPool2d(2, 2), nn.Conv2d(40, 16, 1))
        with torch.no_grad():
            self.tail[0].running_mean.uniform_(-0.5, 0.5)
            self.tail[0].running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        y = self.stem(x)
        return self.tail(torch.cat([y, self.a(y), self.b(y)], 1))


@needs_avx2
def test_pools_concat_and_batch_norm_stay_blocked():
    """Max/avg pooling, channel concat and a standalone batch norm follow the blocked layout: no
    kernel but the input's layout transform and the last unblock touches an NCHW tensor."""
    torch.manual_seed(0)
    model = _DenseStem().eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 30, 30)), AVX2)
    four_d = _nchw_kernels(opt)
    assert len(four_d) == 1 and "layout_transform" in four_d[0], four_d  # only the final unblock
    assert stats["conv"] == 4 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(0).standard_normal((1, 3, 30, 30)).astype("float32")
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and _rel(got, want) < 1e-5


@needs_avx2
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_resize_between_convs_stays_blocked(mode):
    """A segmentation head's upsample (bilinear or nearest, 2x) runs on the blocked layout like a
    pool: no kernel but the input's layout transform and the last unblock touches NCHW."""
    torch.manual_seed(4)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Upsample(scale_factor=2, mode=mode),
                          nn.Conv2d(16, 8, 1)).eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 12, 12)), AVX2)
    four_d = _nchw_kernels(opt)
    assert len(four_d) == 1 and "layout_transform" in four_d[0], four_d
    x = np.random.default_rng(4).standard_normal((1, 3, 12, 12)).astype("float32")
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape and _rel(got, want) < 1e-5


@needs_avx2
@pytest.mark.parametrize("k,n", [(64, 40), (64, 36), (100, 64)])
def test_one_row_dense_takes_the_conv_schedule(k, n):
    """A classifier on one row (x[1, K] @ W) runs as a blocked 1x1 conv, not dlight's GEMV;
    output counts that do not divide by 8 are padded and sliced back, input counts (a 100-dim
    latent) padded with zeros."""
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(k, n), torch.nn.Hardswish()).eval()
    ex, stats = cpu_schedule.compile_cpu(_onnx_module(model, (1, k)), AVX2)
    assert stats["conv"] == 1 and stats["dlight"] == 0 and stats["matmul"] == 0, stats
    x = np.random.default_rng(1).standard_normal((1, k)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(ex, x)
    assert got.shape == want.shape and _rel(got, want) < 1e-5


def test_k_blocking_by_default_where_a_task_weights_outgrow_the_cache():
    from neo_local.backends.cpu_schedule.passes import tile_width
    from neo_local.backends.cpu_schedule.schedules import default_conv_config

    def k_block(cin, cout, hw, k):  # extents: n, oc chunks, rows, columns, oc block, ic chunks, kh, kw, ic block
        width = tile_width(hw, cout // 8, 12)
        return default_conv_config([1, cout // 8, hw, width, 8, cin // 8, k, k, 8], 4, 12).k_block

    assert k_block(512, 512, 7, 3) == 8  # ResNet-50's last 3x3: 590 KB per task, blocks of 72 KB
    assert k_block(256, 256, 14, 3) == 8
    assert k_block(128, 128, 28, 3) == 0  # 147 KB: in cache as it is
    assert k_block(2048, 512, 7, 1) == 0  # 256 KB: at the limit
    # outputs of 107 and 408 KB per task: blocked per row, one 8-channel chunk (9 KB) per block
    assert k_block(512, 512, 28, 3) == 1 and k_block(256, 256, 56, 3) == 1
    # AVX-512: a 16-channel chunk of 4 output blocks is 37 KB, over the row budget; still blocked
    assert default_conv_config([1, 32, 28, 28, 16, 32, 3, 3, 16], 4, 16).k_block == 1
    # computed flat (one row of 52 pixels), blocking would leave only the output-channel groups as
    # tasks: EfficientNet's 1152 -> 192 1x1 at 7x7 (295 KB per task) and ResNet-50's 2048 -> 512
    # (512 KB) are not blocked; ResNet-50's 3x3 512 -> 512 (1.2 MB) is
    assert default_conv_config([1, 12, 1, 52, 16, 72, 1, 1, 16], 4, 16).k_block == 24
    assert default_conv_config([1, 12, 1, 52, 16, 72, 1, 1, 16], 4, 16, flat=True).k_block == 0
    assert default_conv_config([1, 32, 1, 52, 16, 128, 1, 1, 16], 4, 16, flat=True).k_block == 0
    assert default_conv_config([1, 32, 1, 52, 16, 32, 3, 3, 16], 4, 16, flat=True).k_block == 2


def test_a_flat_conv_runs_its_tiles_in_parallel_where_blocking_would_leave_few_tasks():
    """EfficientNet's 1152 -> 192 1x1 conv at 7x7, computed as one row of 52 pixels in 4 x 4 tiles:
    its 3 output-channel groups x 13 tiles are its parallel tasks. K-blocked, only the 3 groups
    were (``K_BLOCK_FLAT_WEIGHTS``). Numbers checked where the host has AVX-512."""
    from neo_local.backends.cpu_schedule.passes import FLAT_ATTR

    x, w, b, opt, text = _znver4_1x1_conv(1152, 192, 7, 11, "none")
    assert FLAT_ATTR in text and "T.parallel(T.int64(39))" in text, text[:3000]
    if _host_has("avx512f"):
        ex = relax.build(opt, tvm.target.Target(ZNVER4))
        with torch.no_grad():
            want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
        assert _rel(_run(ex, x), want) < 1e-5


def test_tile_width_widens_to_full_tiles():
    from neo_local.backends.cpu_schedule.passes import tile_width

    assert tile_width(13, 125, 12) == 14  # 1 x 13 (prime) -> 5 x 2
    assert tile_width(109, 4, 12) > 109  # (4, 1) -> wider
    # 4 x 2 (8 accumulators) or 1 x 7 -> 4 x 3 (12) one or two columns wider
    assert tile_width(56, 8, 12) == 57 and tile_width(28, 16, 12) == 30 and tile_width(14, 64, 12) == 15
    assert tile_width(7, 64, 12) == 9
    assert tile_width(60, 8, 12) == 60  # already 4 x 3
    assert tile_width(28, 2, 16) == 28  # AVX-512: 2 x 7 with 16 accumulators is as good as it gets


@needs_avx2
@pytest.mark.parametrize("bias", [True, False])
def test_prime_width_conv_is_computed_wider_and_cropped(bias, direct_convs):
    """A 13-wide output (prime) is computed 14 wide and cropped inside the conv kernel, which
    still takes the conv schedule, with an epilogue (bias, relu) or without one. The extra column
    reads the last one's input: the padding stage stays as wide as the conv needs (13 + 2)."""
    torch.manual_seed(2)
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 24, 3, padding=1, bias=bias),
                                torch.nn.ReLU() if bias else torch.nn.Identity()).eval()
    from neo_local.backends.cpu_schedule.passes import relax_passes

    mod = _onnx_module(model, (1, 16, 13, 13))
    (conv,) = [f for name, f in _prim_funcs(relax_passes(mod, 8, 12)).items() if "conv2d_nchwc" in name]
    text = conv.script()
    assert 'T.sblock("conv_crop")' in text and "T.int64(14)" in text
    assert "T.sblock_alloc_buffer((T.int64(1), T.int64(2), T.int64(15), T.int64(15), T.int64(8))" in text, text
    opt, stats = cpu_schedule.optimize(mod, AVX2)
    assert stats["conv"] == 1 and stats["unscheduled"] == 0, stats
    x = np.random.default_rng(2).standard_normal((1, 16, 13, 13)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = _run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x)
    assert _rel(got, want) < 1e-5


@needs_avx2
@pytest.mark.parametrize("hw,channels,k,stride,flat", [
    (7, 64, 1, 1, 51), (14, 48, 1, 1, 198), (56, 16, 1, 1, 0), (7, 64, 3, 1, 51), (14, 32, 3, 2, 51),
    (14, 32, 3, 1, 0)])
def test_small_convs_compute_their_pixels_as_one_row(hw, channels, k, stride, flat, direct_convs):
    """A conv to 7x7 or 14x14 pixels (ResNet's last stages) is computed over its pixels as one row
    (``passes.conv_columns``): 4 x 3 and 3 x 3 tiles of pixels (51 and 198 of them) where rows of 7
    or 14 columns take emptier tiles or 2 columns in 9 of padding; its residual epilogue reads and
    writes by pixel too. A 3x3 conv's window reads each pixel's row and column of the padded input
    (strided too); at 14x14 its rows of 15 columns are near enough (``FLAT_WINDOW_GAIN``). At 56x56
    the rows already split into full tiles."""
    from neo_local.backends.cpu_schedule.passes import FLAT_ATTR, relax_passes

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, channels, hw, hw)).astype("float32")
    w = (rng.standard_normal((channels, channels, k, k)) / np.sqrt(channels * k * k)).astype("float32")
    b = rng.standard_normal(channels).astype("float32")
    mod = _conv_module(x.shape, w, b, stride, k // 2, True, "relu")
    (conv,) = [f for name, f in _prim_funcs(relax_passes(mod, 8, 12)).items() if "conv2d_nchwc" in name]
    text = conv.script()
    assert (FLAT_ATTR in text) == bool(flat)
    if flat:
        assert f"T.sblock_alloc_buffer((T.int64(1), T.int64({channels // 8}), T.int64(1), T.int64({flat}), T.int64(8))" in text
    ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
    assert stats["conv"] == 1 and stats["unscheduled"] == 0, stats
    with torch.no_grad():
        xt = torch.from_numpy(x)
        y = torch.nn.functional.conv2d(xt, torch.from_numpy(w), torch.from_numpy(b), stride=stride, padding=k // 2)
        want = torch.relu(y + torch.nn.functional.avg_pool2d(xt, 1, stride)).numpy()
    assert _rel(_run(ex, x), want) < 1e-5


ZNVER4 = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "znver4"}


def _znver4_1x1_conv(cin: int, cout: int, hw: int, seed: int, act: str):
    """A seeded 1x1 conv (bias, ``act``) scheduled for znver4: (x, w, b, the optimized module, the
    conv kernel's TIR)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    w = (rng.standard_normal((cout, cin, 1, 1)) / np.sqrt(cin)).astype("float32")
    b = rng.standard_normal(cout).astype("float32")
    opt, stats = cpu_schedule.optimize(_conv_module(x.shape, w, b, 1, 0, False, act), ZNVER4)
    assert stats["conv"] == 1 and stats["unscheduled"] == 0, stats
    (text,) = [f.script() for gv, f in opt.functions.items()
               if isinstance(f, tvm.tirx.PrimFunc) and "conv2d_nchwc" in gv.name_hint]
    return x, w, b, opt, text


def test_a_flat_conv_s_epilogue_is_unrolled_over_its_whole_tile():
    """A 16 -> 48 1x1 conv at 16x16 (a TFLite CNN's expand) is computed over its pixels as one row
    in tiles of 3 channel blocks x 5 pixels; its epilogue (bias, clip) is unrolled over both, so that
    LLVM keeps the tile in registers (``schedules._whole_tile_fits``): left a loop over the channel
    blocks, the tile went through the stack and the kernel took 2.04 us instead of 1.33-1.56 on
    AVX-512. Scheduled for AVX-512 here; run where the host has it."""
    from neo_local.backends.cpu_schedule.passes import FLAT_ATTR

    x, w, b, opt, text = _znver4_1x1_conv(16, 48, 16, 7, "clip")
    assert FLAT_ATTR in text
    epilogue = text[text.rindex("for ax0"):]
    assert epilogue.startswith("for ax0 in T.unroll(T.int64(3))"), epilogue[:200]
    assert "for ax1 in T.unroll(T.int64(5))" in epilogue
    if _host_has("avx512f"):
        ex = relax.build(opt, tvm.target.Target(ZNVER4))
        with torch.no_grad():
            y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
            want = torch.clamp(y, 0.0, 6.0).numpy()
        assert _rel(_run(ex, x), want) < 1e-5


def _nchw_kernels(opt) -> list[str]:
    """The kernels of ``main`` with a 4-D (NCHW) output."""
    return [b.value.args[0].name_hint for blk in opt["main"].body.blocks for b in blk.bindings
            if isinstance(b.value, relax.Call) and isinstance(b.value.args[0], tvm.ir.GlobalVar)
            and len(b.var.ty.shape) == 4]


@needs_avx2
def test_channel_split_and_shuffle_stay_blocked():
    """ShuffleNetV2 units (channel split by slicing, concat, reshape/transpose/reshape shuffle)
    run on the blocked layout; only the output is unblocked."""
    from models.zoo import ShuffleUnit, _finish

    torch.manual_seed(3)
    model = _finish(torch.nn.Sequential(torch.nn.Conv2d(16, 32, 1), ShuffleUnit(32, 32, 1), ShuffleUnit(32, 64, 2)),
                    (16, 12, 12))
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 16, 12, 12)), AVX2)
    kernels = _nchw_kernels(opt)
    assert len(kernels) == 1 and "layout_transform" in kernels[0], kernels
    assert stats["depthwise"] == 2 and stats["unscheduled"] == 0, stats  # the two stride-2 ones share a kernel
    x = np.random.default_rng(3).standard_normal((1, 16, 12, 12)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want) < 1e-5


@needs_avx2
@pytest.mark.parametrize("act, gate, squeeze", [("SiLU", "Sigmoid", 4), ("ReLU", "Hardsigmoid", 8)])
def test_squeeze_excite_gate_multiplies_in_the_blocked_layout(act, gate, squeeze):
    """MBConv with squeeze-excite (EfficientNet: SiLU/sigmoid, a squeeze of 4 channels that does
    not divide by 8; MobileNetV3: ReLU/hardsigmoid): the [1, C, 1, 1] gate broadcasts against the
    blocked activations, so no full-size tensor is unblocked."""
    from models.zoo import MBConv, _finish

    nn = torch.nn
    torch.manual_seed(4)
    model = _finish(MBConv(16, 32, 16, 5, 1, squeeze, getattr(nn, act), getattr(nn, gate)), (16, 12, 12))
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 16, 12, 12)), AVX2)
    big = [b.value.args[0].name_hint for blk in opt["main"].body.blocks for b in blk.bindings
           if isinstance(b.value, relax.Call) and isinstance(b.value.args[0], tvm.ir.GlobalVar)
           and len(b.var.ty.shape) == 4 and int(b.var.ty.shape[2]) > 1]
    assert len(big) == 1 and stats["depthwise"] == 1 and stats["unscheduled"] == 0, (big, stats)  # the output
    x = np.random.default_rng(4).standard_normal((1, 16, 12, 12)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want) < 1e-5
    # the gate's convs (on 1x1 maps) write 1x1 maps: the x * gate broadcast the region adds is not
    # their epilogue (where ConvertLayout already blocked the whole gate path, as with 8 squeeze
    # channels, TVM's fusion still makes it one; bounded by MobileNetV3's maps, at most 56x56)
    if squeeze % 8 == 0:
        return
    gate_convs = [b.var.ty.shape for blk in opt["main"].body.blocks for b in blk.bindings
                  if isinstance(b.value, relax.Call) and "conv2d" in getattr(b.value.args[0], "name_hint", "")
                  and [int(b.value.args[1].fields[0].ty.shape[i]) for i in (2, 3)] == [1, 1]]
    assert gate_convs and all([int(shape[i]) for i in (2, 3)] == [1, 1] for shape in gate_convs), gate_convs


@pytest.mark.parametrize("act,unrolled", [("relu", True), ("silu", False)])
def test_polynomial_epilogues_are_vectorized_not_unrolled(act, unrolled, direct_convs):
    """A conv tile's epilogue is unrolled over the tile, except one holding a fast_math polynomial
    (SiLU's sigmoid): dozens of ops per copy took EfficientNet's TVM build from 35 s to 200 s."""
    w = (np.random.default_rng(0).standard_normal((32, 32, 3, 3)) / 10).astype("float32")
    opt, stats = cpu_schedule.optimize(_conv_module((1, 32, 14, 14), w, np.zeros(32, "float32"), 1, 1, False, act), AVX2)
    conv = next(f for name, f in _prim_funcs(opt).items() if "conv2d" in name)
    loops = [line.strip() for line in conv.script().splitlines() if line.strip().startswith("for ")]
    # the last loop nest is the epilogue's: its vector loop, and the tile's loops above it
    assert "T.vectorized" in loops[-1] and ("T.unroll" in loops[-2]) == unrolled, loops[-3:]


@needs_avx2
def test_blocked_pools_vectorize_over_the_channel_block():
    """A max pool (ceil mode) in NCHW8c: the channel block is moved inside the window loops and
    vectorized (one vector op per window element, not one scalar per channel); so is the global
    mean after it (dlight's Reduction rule summed one channel at a time)."""
    nn = torch.nn
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
                          nn.AdaptiveAvgPool2d(1)).eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 31, 31)), AVX2)
    pools = [f.script() for name, f in _prim_funcs(opt).items() if "pool" in name or "mean" in name]
    assert len(pools) == 2 and all(p.count("T.vectorized(T.int64(8))") >= 2 for p in pools), pools
    x = np.random.default_rng(5).standard_normal((1, 3, 31, 31)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want) < 1e-5


@needs_avx2
def test_a_transform_out_of_blocks_stores_whole_rows():
    """A flatten after a conv reads the blocked map back as NCHW: the transform iterates its
    blocked input, and stored each vector of a block's channels to as many rows, a plane apart
    (GroupNorm's (1, 8, 64, 64, 16) -> NCHW took 758 us). Its loop over the output's columns is
    now the innermost, vectorized: the stores are whole rows."""
    nn = torch.nn
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten()).eval()
    opt, _ = cpu_schedule.optimize(_onnx_module(model, (1, 3, 18, 18)), AVX2)
    transforms = [f.script() for name, f in _prim_funcs(opt).items() if "layout_transform" in name]
    unblock = [t for t in transforms if "(T.int64(1), T.int64(16), T.int64(16), T.int64(16))" in t]
    assert len(unblock) == 1 and "T.vectorized(T.int64(16))" in unblock[0], transforms
    assert "T.vectorized(T.int64(8))" not in unblock[0]
    x = np.random.default_rng(6).standard_normal((1, 3, 18, 18)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want) < 1e-5


def test_a_transform_whose_stores_follow_its_innermost_loop_keeps_it():
    """NHWC -> NCHW8c reads and stores the channels contiguously already (its last index, c % 8,
    follows the innermost loop): ``_contiguous_writes`` leaves it, the channels vectorized."""
    x = relax.Var("x", relax.TensorType((1, 4, 4, 32), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.layout_transform(x, index_map=lambda n, h, w, c: (n, c // 8, h, w, c % 8)))
        bb.emit_func_output(y)
    opt, _ = cpu_schedule.optimize(bb.get(), AVX2)
    (script,) = [f.script() for name, f in _prim_funcs(opt).items() if "layout_transform" in name]
    assert "T.vectorized(T.int64(32))" in script, script


@needs_avx2
def test_a_group_norm_between_blocked_convs_moves_whole_rows():
    """torch's GroupNorm export (a reshape to groups, an instance norm) leaves the blocked layout:
    a transform out of blocks and one back in around it. Both store or read whole rows of the
    map in vectors (the out-of-block one stored each channel vector to 8 rows a plane apart),
    and the instance norm's variance reduces in vectors (``row_reductions``)."""
    nn = torch.nn
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.GroupNorm(4, 16), nn.SiLU(), nn.Conv2d(16, 16, 3)).eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 18, 18)), AVX2)
    assert stats["rows"] == 2 and stats["dlight"] == 0, stats
    transforms = [f.script() for name, f in _prim_funcs(opt).items() if "layout_transform" in name]
    out, back = (t for t in transforms if "T.int64(16), T.int64(16), T.int64(8))" in t)  # the 16 x 16 map's
    for t in (out, back):
        assert "T.vectorized(T.int64(16))" in t and "T.vectorized(T.int64(8))" not in t, t
    x = np.random.default_rng(7).standard_normal((1, 3, 18, 18)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want) < 1e-5


@needs_avx2
def test_average_pools_divide_each_output_vector_in_the_reduction_loop():
    """Inception's 3x3 average pool (padded, the window's count excluding the padding) and a
    global mean: each output vector is divided right after its window is summed, in the one
    parallel loop, not in a second pass over a buffer of every sum."""
    nn = torch.nn
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.AvgPool2d(3, 1, 1, count_include_pad=False), nn.ReLU(),
                          nn.Conv2d(16, 16, 1), nn.AdaptiveAvgPool2d(1)).eval()
    opt, stats = cpu_schedule.optimize(_onnx_module(model, (1, 3, 13, 13)), AVX2)
    pools = [f.script() for name, f in _prim_funcs(opt).items() if "pool" in name or "mean" in name]
    assert len(pools) == 2 and all(p.count("T.parallel(") == 1 for p in pools), pools
    x = np.random.default_rng(8).standard_normal((1, 3, 13, 13)).astype("float32")
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert _rel(_run(tvm.compile(opt, target=tvm.target.Target(AVX2)), x), want) < 1e-5


def test_a_conv_with_one_output_channel_group_pads_per_row():
    from neo_local.backends.cpu_schedule.schedules import default_conv_config

    densenet = [1, 2, 56, 56, 16, 8, 3, 3, 16]  # 128 -> 32 3x3: both chunks in one register tile
    assert default_conv_config(densenet, 4, 16).pad_per_row
    assert not default_conv_config(densenet, 1, 16).pad_per_row  # int8: its dot step needs the padded stage
    assert not default_conv_config([1, 16, 56, 56, 16, 16, 3, 3, 16], 4, 16).pad_per_row  # 4 groups


def test_an_epilogue_that_broadcasts_the_conv_is_not_unrolled():
    """A one-pixel conv whose epilogue multiplies a whole feature map by it (an int8 model's
    squeeze-excite gate, fused with its requantization): the epilogue loops over the map, not
    unrolled (4 x 14 x 14 copies took LLVM 14 s for one kernel); the result still matches."""
    from tvm import te

    from neo_local.backends.cpu_schedule.passes import conv2d_nchwc_compute
    from neo_local.backends.cpu_schedule.schedules import schedule_conv

    data = te.placeholder((1, 2, 1, 1, 16), "float32", name="data")
    kernel = te.placeholder((8, 2, 1, 1, 16, 16), "float32", name="kernel")
    fmap = te.placeholder((1, 8, 14, 14, 16), "float32", name="fmap")
    conv = conv2d_nchwc_compute(data, kernel, (1, 1), (0, 0, 0, 0), (1, 1))
    out = te.compute(fmap.shape, lambda b, c, y, x, k: fmap[b, c, y, x, k] * tvm.tirx.round(conv[b, c, 0, 0, k]),
                     name="gate")
    func = schedule_conv(te.create_prim_func([data, kernel, fmap, out]), 16, 16)
    assert func is not None and "T.unroll(14)" not in func.script() and "T.vectorized(16)" in func.script()
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal([int(d) for d in t.shape]).astype("float32") for t in (data, kernel, fmap)]
    got = _run_prim_func(func, [*arrays, np.zeros((1, 8, 14, 14, 16), "float32")], target="llvm")
    gate = np.round(np.einsum("bcyxi,ocyxij->boj", arrays[0], arrays[1]))
    np.testing.assert_allclose(got, arrays[2] * gate[:, :, None, None, :], rtol=1e-5, atol=1e-5)


@needs_avx2
@pytest.mark.parametrize("shape, parallel", [((1, 6, 28, 28, 8), 168), ((1, 1, 2, 28, 8), 56)])
def test_elementwise_kernels_keep_their_columns_serial(shape, parallel):
    """A QDQ requantization of a blocked tensor (per-channel scales) on the generic schedule: the
    channel blocks and rows are the parallel loop and the columns a serial loop inside it, unless
    that leaves fewer than ``SERIAL_ROW_TASKS`` tasks. With one vector per parallel step, LLVM
    vectorized the parallel loop again, gathering the scales (28x28x48 on znver5: 17 -> 2.2 us)."""
    from tvm import te, tirx

    from neo_local.backends.cpu_schedule.schedules import schedule_generic

    x = te.placeholder(shape, "float32", name="x")
    scale = te.placeholder((1, shape[1], 1, 1, 8), "float32", name="scale")

    def requantize(n, c, h, w, k):
        q = tirx.nearbyint(x[n, c, h, w, k] / scale[0, c, 0, 0, k])
        return te.min(te.max(q, tirx.const(0.0)), tirx.const(255.0)) * scale[0, c, 0, 0, k]

    out = te.compute(shape, requantize, name="requantize")
    func = schedule_generic(te.create_prim_func([x, scale, out]))
    sch = tvm.s_tir.Schedule(func)
    kinds = [(int(sch.get(loop).extent), sch.get(loop).kind) for loop in sch.get_loops(sch.get_sblock("requantize"))]
    assert kinds[0] == (parallel, tirx.ForKind.PARALLEL) and kinds[-1] == (8, tirx.ForKind.VECTORIZED), kinds
    assert len(kinds) == (3 if parallel == 168 else 2), kinds

    rng = np.random.default_rng(0)
    a = rng.uniform(0, 6, shape).astype("float32")
    s = rng.uniform(0.01, 0.05, (1, shape[1], 1, 1, 8)).astype("float32")
    got = _run_prim_func(func, [a, s, np.zeros(shape, "float32")])
    want = np.clip(np.round(a / s), 0, 255) * s
    assert np.allclose(got, want, rtol=1e-6, atol=0)


def _unblock_nc(n, c, b):
    return [n, c * 16 + b]


def _unblock_nchw(n, c, h, w, b):
    return [n, c * 16 + b, h, w]


def _block_nchw(n, c, h, w):
    return [n, c // 16, h, w, c % 16]


@pytest.mark.parametrize("shape,index_map,free", [
    ((1, 2, 16), _unblock_nc, True),  # a pooled vector, squeezed, back to NC for a dense layer
    ((2, 2, 16), _unblock_nc, True),
    ((1, 2, 1, 1, 16), _unblock_nchw, True),  # a kept-dims global mean
    ((1, 2, 3, 3, 16), _unblock_nchw, False),  # a feature map: every element moves
    ((1, 32, 1, 1), _block_nchw, True),
    ((1, 32, 2, 1), _block_nchw, False),
])
def test_layout_transforms_that_move_nothing(shape, index_map, free):
    """Found by their index map (``passes.moves_nothing``), they become reshapes (views of the
    same memory in the VM) instead of copy kernels."""
    from neo_local.backends.cpu_schedule.passes import layout_reshapes, moves_nothing

    x = relax.Var("x", relax.TensorType(shape, "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.layout_transform(x, index_map))
        bb.emit_func_output(out)
    mod = bb.get()
    assert moves_nothing(mod["main"].body.blocks[0].bindings[0].value) == free
    rewritten = layout_reshapes(mod)
    ops = [b.value.op.name for b in rewritten["main"].body.blocks[0].bindings]
    assert ops == (["relax.reshape"] if free else ["relax.layout_transform"]), ops
    data = np.random.default_rng(0).standard_normal(shape).astype("float32")
    want = _run(tvm.compile(mod, target="llvm"), data)
    assert np.array_equal(_run(tvm.compile(rewritten, target="llvm"), data), want)
