"""Tuning of the CPU schedules (cpu_schedule.tuning) and its records database (cpu_schedule.records):
real kernels built and timed, outputs checked against torch/onnxruntime; timings never asserted."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
import tvm_ffi  # noqa: E402
from tvm import s_tir  # noqa: E402

from neo_local.api.errors import JobFailure  # noqa: E402
from neo_local.backends import cpu_schedule  # noqa: E402
from neo_local.backends.cpu_schedule import records as rec  # noqa: E402
from neo_local.backends.cpu_schedule import schedules as sch  # noqa: E402
from neo_local.backends.cpu_schedule.passes import relax_passes  # noqa: E402
from neo_local.backends.cpu_schedule.tuning import _plan, workloads  # noqa: E402
from neo_local.targets.options import CompilerOptions, TuningOptions  # noqa: E402
from test_cpu_schedule import AVX2, _conv_module, _rel, _run, needs_avx2  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _conv_inputs(cin=16, cout=16, hw=14, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, cin, hw, hw)).astype("float32")
    w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype("float32")
    return x, w, rng.standard_normal(cout).astype("float32")


def _torch_conv_relu(x, w, b, pad):
    with torch.no_grad():
        y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=pad)
        return torch.relu(y).numpy()


# --------------------------------------------------------------------------- config spaces


def _blocked(mod):
    return relax_passes(mod, 8)


def _only(mod, kind):
    found = [w for w in workloads(_blocked(mod), 8, 12) if w.kind == kind]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("hw", [13, 7])  # 13: the passes compute it 15 wide (and crop); 7 stays prime
def test_conv_space_starts_with_the_default_and_tiles_divide_the_width(hw):
    x, w, b = _conv_inputs(hw=hw)
    work = _only(_conv_module(x.shape, w, b, 1, 1, False, "relu"), "conv")
    schedule = s_tir.Schedule(work.func)
    out_w = sch.conv_shape(schedule, schedule.get_sblock("conv2d_nchwc")).ext[3]
    # one output-channel group (2 chunks in one tile): the input is padded per row
    assert work.space[0] == sch.ConvConfig(*sch.choose_tile(out_w, 2, 12), pad_per_row=True)
    assert len(set(work.space)) == len(work.space)
    assert all(c.tile_c * c.tile_w <= 16 and 2 % c.tile_c == 0 and out_w % c.tile_w == 0 for c in work.space)
    blocked = [c for c in work.space if c.k_block]  # 2 input-channel chunks: blocks of 1
    assert blocked and all(c.k_block == 1 and c.reduce_order == "ck" and not c.pad_per_row for c in blocked)


def test_a_1x1_conv_s_space_holds_no_configs_that_schedule_alike():
    """No kernel window: no reduction order or unrolling to choose; no padding: no padding knob."""
    x, w, b = _conv_inputs(cin=32, cout=32, hw=8, k=1)
    work = _only(_conv_module(x.shape, w, b, 1, 0, False, "relu"), "conv")
    rest = work.space[1:]
    assert rest and all(c.reduce_order == "ck" and not c.unroll_kernel and not c.pad_per_row for c in rest)
    tiles = {(c.tile_c, c.tile_w) for c in rest if not c.k_block}
    assert len([c for c in rest if not c.k_block]) == len(tiles) * len(sch.PARALLEL_MODES)


@pytest.mark.parametrize("stride,default", [(1, sch.DwConfig(14)), (2, sch.DwConfig(4, tile_h=2))])
def test_a_strided_depthwise_conv_s_default_reads_its_stride_from_the_kernel(stride, default):
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 32, 28 * stride, 28 * stride), "float32"))
    w = np.random.default_rng(0).standard_normal((32, 1, 5, 5)).astype("float32")
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.nn.conv2d(x, relax.const(w), strides=stride, padding=2, groups=32))
        bb.emit_func_output(out)
    found = [w for w in workloads(relax_passes(bb.get(), 16), 16, 16) if w.kind == "depthwise"]
    assert len(found) == 1 and found[0].space[0] == default


@pytest.mark.parametrize("prime", [7, 13, 109])
def test_tiles_of_a_prime_width_are_one_column_or_all_of_it(prime):
    assert {w for _, w in sch._tiles(4, prime, 12)} == {w for w in (1, prime) if w <= 16}


def test_depthwise_and_matmul_spaces_keep_the_defaults_first():
    assert sch.choose_dw_tile(7, 12) == 7
    from test_cpu_schedule import _matmul_module

    rng = np.random.default_rng(0)
    work = _only(_matmul_module((13, 32), rng.standard_normal((32, 24)).astype("float32"), None, False), "matmul")
    # 13 rows (a prime) are computed 15 deep (dot_matmul.computed_rows), in tiles of 3 or 5 rows
    assert work.space[0] == sch.default_matmul_config(15, 3, 12, 32)
    assert {c.tile_m for c in work.space} == {1, 3, 5, 15}
    assert all(32 % c.k_unroll == 0 for c in work.space)


@needs_avx2
def test_every_knob_value_computes_what_torch_does():
    """Configs covering each value of each knob (tiles past the register budget included),
    taken through schedule_module's record lookup as a later compile would."""
    x, w, b = _conv_inputs(hw=12)
    want = _torch_conv_relu(x, w, b, 1)
    mod = _conv_module(x.shape, w, b, 1, 1, False, "relu")
    configs = [
        sch.ConvConfig(2, 6, "kc", True, "rows", True),
        sch.ConvConfig(1, 12, "ck", False, "none", True),
        sch.ConvConfig(2, 4, "kc", False, "fused", True),
        sch.ConvConfig(1, 1, "ck", True, "none", False),
        sch.ConvConfig(2, 4, k_block=1),
        sch.ConvConfig(1, 6, unroll_kernel=True, parallel="none", k_block=1),
    ]
    for config in configs:
        opt = _blocked(mod)
        lowered, stats = sch.schedule_module(opt, tvm.target.Target(AVX2), 8, 12, lambda f: ("conv", config)
                                             if sch.conv_space(f, 8, 12) else None)
        assert stats["tuned"] == 1 and stats["unscheduled"] == 0, stats
        got = _run(tvm.compile(lowered, target=tvm.target.Target(AVX2)), x)
        assert _rel(got, want) < 1e-5, config


# --------------------------------------------------------------------------- budget and records


def test_trials_go_to_kernels_in_proportion_to_their_default_time():
    assert _plan([3.0, 1.0], [100, 100], 8) == [6, 2]
    assert _plan([3.0, 1.0], [2, 100], 8) == [2, 6]  # a small space gives its trials back
    assert _plan([1.0, 1.0], [5, 5], 0) == [0, 0]


def test_keys_ignore_names_and_weights_but_not_shapes():
    one = _only(_conv_module((1, 16, 14, 14), *_conv_inputs(seed=1)[1:], 1, 1, False, "relu"), "conv")
    two = _only(_conv_module((1, 16, 14, 14), *_conv_inputs(seed=2)[1:], 1, 1, False, "relu"), "conv")
    other = _only(_conv_module((1, 16, 12, 12), *_conv_inputs(hw=12)[1:], 1, 1, False, "relu"), "conv")
    assert one.key == two.key != other.key
    assert rec.workload_key(one.func.with_attr("global_symbol", "renamed")) == one.key
    assert rec.target_key(AVX2, 8) == "x86_64-linux-gnu/core-avx2//8"


def _append(path: str, worker: int) -> None:
    records = rec.Records(Path(path), "t")
    records.add([rec.make_record(f"{worker}-{i}", "t", "depthwise", sch.DwConfig(i + 1), 1.0 + i, 2.0)
                 for i in range(40)])


def test_concurrent_writers_leave_every_line_whole(tmp_path):
    path = tmp_path / "records.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append, args=(str(path), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    lines = path.read_text().splitlines()
    assert len(lines) == 160 and all(json.loads(line)["target"] == "t" for line in lines)
    assert len(rec.Records(path, "t").best) == 160


def test_the_fastest_record_wins_and_bad_lines_are_skipped(tmp_path):
    path = tmp_path / "r.jsonl"
    records = rec.Records(path, "t")
    records.add([rec.make_record("k", "t", "depthwise", sch.DwConfig(2), 5.0, 9.0),
                 rec.make_record("k", "t", "depthwise", sch.DwConfig(4), 3.0, 9.0),
                 rec.make_record("k", "other", "depthwise", sch.DwConfig(7), 1.0, 9.0)])
    with open(path, "a") as f:
        f.write("{not json\n" + json.dumps({"schema": 0, "kind": "conv"}) + "\n")
    assert rec.Records(path, "t").best["k"].as_config() == sch.DwConfig(4)


def test_records_path_from_option_env_and_default(monkeypatch, tmp_path):
    monkeypatch.setenv(rec.RECORDS_ENV, str(tmp_path / "env.jsonl"))
    assert rec.records_path("/x/given.jsonl") == Path("/x/given.jsonl")
    assert rec.records_path() == tmp_path / "env.jsonl"
    monkeypatch.delenv(rec.RECORDS_ENV)
    assert rec.records_path() == Path.home() / ".cache" / "neo-local" / "tuning" / "records.jsonl"


# --------------------------------------------------------------------------- tuning end to end

_SECOND_COMPILE = """
import json, sys
import numpy as np
sys.path[:0] = ["tests", "tests/backends"]
from test_cpu_schedule import AVX2, _run
from test_cpu_schedule_tuning import _two_conv_module
from neo_local.backends import cpu_schedule
mod, x = _two_conv_module()
ex, stats = cpu_schedule.compile_cpu(mod, AVX2)
np.save(sys.argv[1], _run(ex, x))
print(json.dumps(stats))
"""


def _two_conv_module():
    """The tuned layer (3x3 conv + bias + relu, 16 channels, 14x14) followed by a 1x1 conv: another model."""
    from tvm import relax

    x, w, b = _conv_inputs()
    w2 = _conv_inputs(cout=32, k=1, seed=3)[1]
    bb = relax.BlockBuilder()
    xv = relax.Var("x", relax.TensorType(x.shape, "float32"))
    with bb.function("main", [xv]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(xv, relax.const(w), padding=1))
            y = bb.emit(relax.op.nn.relu(relax.op.add(y, relax.const(b.reshape(1, -1, 1, 1)))))
            out = bb.emit_output(bb.emit(relax.op.nn.conv2d(y, relax.const(w2))))
        bb.emit_func_output(out)
    return bb.get(), x


@needs_avx2
def test_tuned_records_serve_another_model_in_a_fresh_process(tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    monkeypatch.setenv(rec.RECORDS_ENV, str(path))
    x, w, b = _conv_inputs()
    lines = []
    ex, stats = cpu_schedule.compile_cpu(_conv_module(x.shape, w, b, 1, 1, False, "relu"), AVX2,
                                         TuningOptions(trials=4), progress=lines.append)
    assert _rel(_run(ex, x), _torch_conv_relu(x, w, b, 1)) < 1e-5
    assert stats["tuning_trials"] == 4 and stats["tuned_now"] == 1 and stats["tuned"] == 1, stats
    assert any("default" in line and "us" in line for line in lines), lines
    (record,) = [json.loads(line) for line in path.read_text().splitlines()]
    conv = _only(_conv_module(x.shape, w, b, 1, 1, False, "relu"), "conv")
    assert (record["workload"], record["target"], record["kind"]) == (conv.key, "x86_64-linux-gnu/core-avx2//8", "conv")
    assert record["time_us"] <= record["default_us"]

    out = tmp_path / "second.npy"
    done = subprocess.run([sys.executable, "-c", _SECOND_COMPILE, str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    second = json.loads(done.stdout.splitlines()[-1])
    assert second["tuned"] == 1 and second["conv"] == 2, second  # the shared layer took the record
    w2 = _conv_inputs(cout=32, k=1, seed=3)[1]
    with torch.no_grad():
        want = torch.nn.functional.conv2d(torch.from_numpy(_torch_conv_relu(x, w, b, 1)), torch.from_numpy(w2))
    assert _rel(np.load(out), want.numpy()) < 1e-5


def _spec(tuning, **target):
    from neo_local.targets.spec import TargetSpec

    return TargetSpec(name="test", os="LINUX", arch="X86_64", tvm_target={**AVX2, **target}, tuning=tuning)


def test_cross_targets_are_never_timed_here(tmp_path):
    """An aarch64 target without an RPC device, or with one nobody answers at: the job fails with
    the request's error (never an untuned artifact that was asked to be tuned); nothing recorded."""
    from neo_local.api.errors import JobFailure
    from neo_local.backends import tvm_relax

    from test_cpu_schedule import A72

    x, w, b = _conv_inputs()
    mod = _conv_module(x.shape, w, b, 1, 1, False, "relu")
    spec = _spec(TuningOptions(trials=3, records=str(tmp_path / "r.jsonl")), **A72)
    with pytest.raises(JobFailure, match=r"ClientError: OutputConfiguration: CompilerOptions tuning: test code "
                                         r"\(aarch64-linux-gnu\) cannot run on this x86_64 machine; give tuning rpc"):
        tvm_relax._compile(mod, dict(spec.tvm_target), spec)
    spec = _spec(TuningOptions(trials=3, records=str(tmp_path / "r.jsonl"), rpc="127.0.0.1:9"), **A72)
    with pytest.raises(JobFailure, match=r"ClientError: OutputConfiguration: CompilerOptions tuning rpc 127.0.0.1:9: "):
        tvm_relax._compile(mod, dict(spec.tvm_target), spec)
    assert not (tmp_path / "r.jsonl").exists()


@needs_avx2
def test_tuning_over_rpc_loopback(tmp_path, capfd):
    from neo_local.backends import tvm_relax

    from cli.test_cli_rpc import start_server, stop

    proc, where = start_server(tmp_path / "server.log")
    try:
        x, w, b = _conv_inputs()
        spec = _spec(TuningOptions(trials=3, records=str(tmp_path / "r.jsonl"), rpc=where))
        ex, pipeline = tvm_relax._compile(_conv_module(x.shape, w, b, 1, 1, False, "relu"), dict(spec.tvm_target),
                                          spec)
    finally:
        stop(proc)
    assert "'tuning_trials': 3" in pipeline and "'tuned': 1" in pipeline, pipeline
    assert f"on the device at {where}" in capfd.readouterr().err
    assert _rel(_run(ex, x), _torch_conv_relu(x, w, b, 1)) < 1e-5
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 1


# --------------------------------------------------------------------------- CompilerOptions


def test_tuning_options_parse():
    options = CompilerOptions.parse('{"mcpu": "znver3", "tuning": {"trials": 200, "records": "/r.jsonl"}}')
    assert options.tuning == TuningOptions(trials=200, records="/r.jsonl") and options.tuning.enabled
    assert CompilerOptions.parse('{"tuning": {"minutes": 5}}').tuning == TuningOptions(minutes=5.0)
    assert not CompilerOptions.parse('{"tuning": {"records": "/r"}}').tuning.enabled
    assert CompilerOptions.parse('{"mcpu": "znver3"}').tuning is None


@pytest.mark.parametrize("value,message", [
    ('3', "tuning must be an object"),
    ('{"trials": 0}', "tuning trials must be a whole number of trials >= 1, got 0"),
    ('{"trials": 2.5}', "tuning trials must be a whole number"),
    ('{"trials": true}', "tuning trials must be a whole number"),
    ('{"minutes": -1}', "tuning minutes must be a number of minutes > 0, got -1"),
    ('{"minutes": "5"}', "tuning minutes must be a number"),
    ('{"trails": 5}', "Unknown CompilerOptions tuning key(s) trails. Known keys: trials, minutes, records, rpc"),
    ('{"trials": 5, "records": ""}', "tuning records must be a path"),
    ('{"trials": 5, "rpc": "nohost"}', "tuning rpc must be HOST:PORT"),
    ('{"rpc": "127.0.0.1:9090"}', "give a budget too"),
])
def test_bad_tuning_options_are_client_errors(value, message):
    with pytest.raises(JobFailure) as err:
        CompilerOptions.parse(f'{{"tuning": {value}}}')
    assert err.value.reason.startswith("ClientError: OutputConfiguration: ")
    assert message in err.value.reason


@needs_avx2
def test_compilation_job_tunes_with_compiler_options(tmp_path):
    """CompilerOptions tuning through the whole job (options -> target -> backend): the job's
    verification against onnxruntime passes and compiled.meta's pipeline counts the tuned kernels."""
    import tarfile

    from models import make_archive
    from onnx_graphs import save

    from neo_local import compile as neo_compile

    x, w, b = _conv_inputs()
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
        "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    archive = make_archive([save(model, tmp_path / "conv.onnx")], tmp_path / "conv.tar.gz")
    records = tmp_path / "records.jsonl"
    uri = neo_compile(
        InputConfig={"S3Uri": str(archive), "Framework": "ONNX", "DataInputConfig": '{"x": [1, 16, 14, 14]}'},
        OutputConfig={"S3OutputLocation": str(tmp_path / "out"), "TargetDevice": "ml_c4",
                      "CompilerOptions": json.dumps({"tuning": {"trials": 3, "records": str(records)}})},
    )
    with tarfile.open(uri) as tar:
        meta = json.load(tar.extractfile("compiled.meta"))
    assert meta["Verification"]["status"] == "passed", meta["Verification"]
    assert "'tuned': 1" in json.dumps(meta) and "'tuning_trials': 3" in json.dumps(meta)
    assert json.loads(records.read_text())["target"] == "x86_64-linux-gnu/core-avx2//8"


def test_an_unusable_records_file_never_fails_a_compile(tmp_path):
    folder = tmp_path / "a-directory"
    folder.mkdir()
    records = rec.Records(folder, "t")  # not readable as a file: no records
    records.add([rec.make_record("k", "t", "depthwise", sch.DwConfig(2), 1.0, 2.0)])  # not writable: kept here
    assert records.best["k"].as_config() == sch.DwConfig(2)


def test_candidates_are_checked_against_the_default_relative_to_the_largest_value():
    from neo_local.backends.cpu_schedule.tuning import _close

    want = np.array([100.0, 1e-7], "float32")
    assert _close(want + np.array([0, 1e-4], "float32"), want)  # rounding near zero: accepted
    assert not _close(want + np.array([0.5, 0], "float32"), want)  # a wrong element: dropped


def test_a_build_past_its_time_is_killed_and_the_next_one_starts_afresh(monkeypatch):
    from neo_local.backends.cpu_schedule import builder

    x, w, b = _conv_inputs(hw=7)
    work = _only(_conv_module(x.shape, w, b, 1, 1, False, "relu"), "conv")
    build = builder.Builder(AVX2, timeout_s=0.01)
    try:
        monkeypatch.setattr(builder, "START_ALLOWANCE_S", 0.0)  # the child cannot even import TVM in time
        with pytest.raises(builder.BuildFailed, match="not built within 0.01 s"):
            build.build(work.scheduled(work.space[0]))
        monkeypatch.setattr(builder, "START_ALLOWANCE_S", 120.0)
        assert build.build(work.scheduled(work.space[0])).stat().st_size > 0
    finally:
        build.close()
    assert not build.folder.exists()


def test_single_threaded_configs_are_tried_on_tiny_kernels_only():
    from neo_local.backends.cpu_schedule.tuning import _candidates

    x, w, b = _conv_inputs(hw=7)
    work = _only(_conv_module(x.shape, w, b, 1, 1, False, "relu"), "conv")
    assert any(c.parallel == "none" for c in _candidates(work, 5e-6))
    big = _candidates(work, 500e-6)
    assert big and all(c.parallel != "none" for c in big) and work.space[0] not in big


@needs_avx2
def test_a_tuning_fault_costs_the_tuning_only(tmp_path, monkeypatch):
    """The tuner raising (a bug, a device gone mid-run) leaves the model on the scheduled pipeline
    with the default configs, said in the log, instead of TVM's unscheduled fallback."""
    from neo_local.backends import cpu_schedule
    from neo_local.backends.cpu_schedule import tuning

    def broken(*_args, **_kwargs):
        raise RuntimeError("device went away")

    monkeypatch.setattr(tuning, "tune", broken)
    said = []
    x, w, b = _conv_inputs()
    _, stats = cpu_schedule.optimize(_conv_module(x.shape, w, b, 1, 1, False, "relu"), AVX2,
                                     TuningOptions(trials=3, records=str(tmp_path / "r.jsonl")), progress=said.append)
    assert said == ["tuning failed (device went away); building with the records' and the default configs"]
    assert stats["conv"] == 1 and "tuning_trials" not in stats


class _ScriptedMeasurer:
    """Times from a script (in cache, cold) per named config, recognised by its scheduled function;
    outputs those of the inputs unchanged."""

    where = "a script"

    def __init__(self, times: dict, scheduled: dict) -> None:
        self.times = times
        self.scheduled = scheduled

    def run(self, func, inputs):
        return self.times[self._config(func)][0], inputs

    def run_both(self, func, inputs):
        return self.times[self._config(func)]

    def _config(self, func):
        return next(name for name, f in self.scheduled.items() if tvm_ffi.structural_equal(f, func))


@pytest.mark.parametrize("candidate_cold, kept", [(40e-6, False), (25e-6, True)])
def test_a_winner_is_kept_only_if_it_is_faster_cold_too(candidate_cold, kept):
    """The search times in cache; the re-timing also times each winner and its default with the
    caches flushed (``tuning.COLD``), as a model's larger working set leaves them. A candidate
    faster only in cache keeps the default."""
    from neo_local.backends.cpu_schedule.tuning import _Search

    x, w, b = _conv_inputs(hw=7)
    work = _only(_conv_module(x.shape, w, b, 1, 1, False, "relu"), "conv")
    candidate = work.space[1]
    measurer = _ScriptedMeasurer({"default": (20e-6, 30e-6), "candidate": (15e-6, candidate_cold)},
                                 {"default": work.scheduled(work.space[0]), "candidate": work.scheduled(candidate)})
    said = []
    search = _Search([work], measurer, said.append)
    search.defaults(10, float("inf"))
    search.try_config(0, candidate)
    assert search.best[0][1] == candidate  # in cache, the candidate won the search
    search.confirm()
    assert search.best[0][1] == (candidate if kept else work.space[0])
    assert f"(cold: 30.0 and {candidate_cold * 1e6:.1f} us)" in said[-1]


@needs_avx2
def test_a_kernel_is_timed_in_cache_and_cold():
    from neo_local.backends.cpu_schedule.tuning import Measurer, random_inputs

    x, w, b = _conv_inputs(hw=7)
    work = _only(_conv_module(x.shape, w, b, 1, 1, False, "relu"), "conv")
    with Measurer(AVX2) as measurer:
        warm, cold = measurer.run_both(work.scheduled(work.space[0]), random_inputs(work.func))
    assert 0 < warm < 1 and 0 < cold < 1
