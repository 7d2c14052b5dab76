"""Run the ONNX backend node-test suite through neo-local's ONNX import and TVM (llvm, host CPU).

    .venv/bin/python -m tests.onnx_node_suite.run [--jobs N] [--timeout S] [--only SUBSTR]
                                                   [--write-doc] [--no-cache]

Each case is imported with ``import_onnx`` as TVM alone would (no pre-pass, TVM's converters
only) and as the ONNX frontend does (the pre-pass ``neo_local/frontends/onnx_prepass.py`` and
neo-local's converters ``neo_local/frontends/onnx_converters/``), also with attribute-like inputs
frozen, compiled with ``tvm.compile(target="llvm")``, run on
the Relax VM and compared with the stored outputs (rtol 1e-3, atol 1e-5). onnxruntime runs each
original model too, as the yardstick. Cases run in worker processes that are replaced when one
crashes or passes the per-case timeout, so a segfault costs one case, not the run.

Outcomes: pass, unsupported (the clean "operators the compiler does not support" ClientError),
import-error, build-error, run-error, wrong-answer, crash (the worker died), timeout, and
not-fed (inputs the runner cannot hand to the VM: sequences, optionals).

Results are cached in ``.cache/onnx_node_suite/<onnx version>/results.json``, keyed by the
model bytes each mode imports and a hash of the neo-local code that case depends on
(``code_hash``: editing one converter reruns only the cases using its operators), so a rerun
only redoes what changed. ``--write-doc`` regenerates ``docs/onnx-node-suite.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from tests.onnx_node_suite.cases import ROOT, Case, all_cases, cache_dir

RTOL, ATOL = 1e-3, 1e-5
MODES = ("as_is", "prepass", "frozen")
#: formal input names (ONNX schemas) that carry attribute-like operands
ATTRIBUTE_LIKE = {"axes", "shape", "pads", "sizes", "scales", "split", "K", "starts", "ends", "steps",
                  "repeats", "roi", "depth", "constant_value", "output_shape", "k", "axis", "perm",
                  "image_shape", "block_shape", "size", "ratio", "training_mode"}
PASS = "pass"
DOC = ROOT / "docs" / "onnx-node-suite.md"


# --------------------------------------------------------------------------- one case (worker side)


def _arrays(values: list[Any]) -> list[Any] | None:
    import numpy as np
    from onnx import TensorProto, numpy_helper

    out = []
    for v in values:
        if isinstance(v, TensorProto):
            v = numpy_helper.to_array(v)
        if isinstance(v, np.generic):  # a numpy scalar (e.g. QLinearConv's scales) is a 0-d tensor
            v = np.asarray(v)
        if not isinstance(v, np.ndarray):
            return None
        out.append(v)
    return out


def compare(got: list[Any], expected: list[Any]) -> str | None:
    """None when ``got`` matches ``expected``; else what differs."""
    import numpy as np

    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        g, e = np.asarray(g), np.asarray(e)
        if g.shape != e.shape:
            return f"output {i}: shape {list(g.shape)}, expected {list(e.shape)}"
        if e.dtype.kind in "fc" or g.dtype.kind in "fc":
            try:
                ok = np.allclose(g.astype(np.float64), e.astype(np.float64), rtol=RTOL, atol=ATOL, equal_nan=True)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                return f"output {i}: values differ beyond rtol {RTOL}/atol {ATOL}"
        elif not np.array_equal(g, e):
            return f"output {i}: values differ"
    return None


def onnxruntime_outcome(case: Case) -> tuple[str, str]:
    import onnxruntime as ort

    feeds_list = _arrays(case.inputs)
    expected = _arrays(case.outputs)
    if feeds_list is None or expected is None:
        return "not-fed", "sequence/optional inputs or outputs"
    try:
        import onnx

        model = onnx.load_from_string(case.model)
        names = [i.name for i in model.graph.input][: len(feeds_list)]
        options = ort.SessionOptions()
        options.log_severity_level = 4
        session = ort.InferenceSession(case.model, options, providers=["CPUExecutionProvider"])
        got = session.run(None, dict(zip(names, feeds_list)))
    except Exception as exc:  # noqa: BLE001
        return "error", _line(exc)
    diff = compare(got, expected)
    return (PASS, "") if diff is None else ("wrong-answer", diff)


def freeze_attribute_inputs(case: Case) -> Case:
    """The case with its attribute-like graph inputs (schema names in ATTRIBUTE_LIKE, e.g. axes,
    shape, pads, sizes/scales, split, K, starts/ends, as the formal name of the node input they
    feed or as their own name) turned into initializers holding the test's values: the form real
    models have them in. The first input is never frozen."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(case.model)
    formal: dict[str, str] = {}
    for node in model.graph.node:
        try:
            schema = onnx.defs.get_schema(node.op_type, max_inclusive_version=_opset(model, node.domain), domain=node.domain)
        except Exception:  # noqa: BLE001
            continue
        params = [p.name for p in schema.inputs]
        for i, name in enumerate(node.input):
            if name and i < len(params) and name not in formal:
                formal[name] = params[-1] if i >= len(params) else params[i]
    inputs, frozen = [], []
    keep = []
    for i, (value, array) in enumerate(zip(model.graph.input, case.inputs)):
        arr = _arrays([array])
        # the input's own name counts too: an ``_expanded`` case keeps the function operator's
        # input names (CenterCropPad's ``shape``) while its body's nodes call them data_0, B, ...
        named = formal.get(value.name) in ATTRIBUTE_LIKE or value.name in ATTRIBUTE_LIKE
        if i > 0 and arr is not None and named and arr[0].ndim <= 1:
            frozen.append(numpy_helper.from_array(arr[0], value.name))
        else:
            keep.append(value)
            inputs.append(array)
    if not frozen:
        return case
    del model.graph.input[:]
    model.graph.input.extend(keep)
    model.graph.initializer.extend(frozen)
    return Case(case.name, model.SerializeToString(), inputs, case.outputs)


def _opset(model: Any, domain: str) -> int:
    for o in model.opset_import:
        if (o.domain or "") == (domain or ""):
            return o.version
    return 1


def tvm_outcome(case: Case, prepass: bool) -> tuple[str, str]:
    import numpy as np
    import onnx
    import tvm
    from tvm import relax

    from neo_local.api.errors import JobFailure
    from neo_local.frontends.base import TensorSpec
    from neo_local.frontends.onnx_import import import_onnx

    feeds = _arrays(case.inputs)
    expected = _arrays(case.outputs)
    if feeds is None or expected is None:
        return "not-fed", "sequence/optional inputs or outputs"
    model = onnx.load_from_string(case.model)
    initializers = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers][: len(feeds)]
    specs = tuple(TensorSpec(n, tuple(int(d) for d in a.shape), str(a.dtype)) for n, a in zip(names, feeds))
    try:
        mod, _ = import_onnx(model, specs, "model.onnx", prepass=prepass, converters=prepass)
    except JobFailure as exc:
        if "does not support" in exc.reason:
            return "unsupported", exc.reason.split("does not support: ", 1)[-1]
        return "import-error", exc.reason.split(" could not be imported: ", 1)[-1]
    except Exception as exc:  # noqa: BLE001
        return "import-error", _line(exc)
    try:
        executable = tvm.compile(mod, target="llvm")
    except Exception as exc:  # noqa: BLE001
        return "build-error", _line(exc)
    try:
        vm = relax.VirtualMachine(executable, tvm.cpu())
        # np.asarray keeps 0-d inputs 0-d (np.ascontiguousarray makes them 1-d)
        result = vm["main"](*[tvm.runtime.tensor(np.asarray(a, order="C")) for a in feeds])
        got = [r.numpy() for r in _flatten(result)]
    except Exception as exc:  # noqa: BLE001
        return "run-error", _line(exc)
    diff = compare(got, expected)
    return (PASS, "") if diff is None else ("wrong-answer", diff)


def _flatten(value: Any) -> list[Any]:
    if hasattr(value, "numpy"):
        return [value]
    out = []
    for v in value:
        out.extend(_flatten(v))
    return out


def _line(exc: BaseException) -> str:
    from neo_local.api.errors import exception_line

    return f"{type(exc).__name__}: {exception_line(exc)}"[:300]


def run_one(case: Case, mode: str) -> tuple[str, str]:
    try:
        if mode == "onnxruntime":
            return onnxruntime_outcome(case)
        if mode == "frozen":
            return tvm_outcome(freeze_attribute_inputs(case), prepass=True)
        return tvm_outcome(case, prepass=mode == "prepass")
    except Exception as exc:  # noqa: BLE001
        return "harness-error", _line(exc) + " | " + traceback.format_exc().splitlines()[-1][:200]


def _worker(conn) -> None:
    import logging

    logging.disable(logging.WARNING)
    while True:
        job = conn.recv()
        if job is None:
            return
        case, mode = job
        conn.send(run_one(case, mode))


# --------------------------------------------------------------------------- pool with crash/timeout recovery


class _Slot:
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.start()

    def start(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        child.close()
        self.job = None
        self.since = 0.0

    def restart(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.start()


def run_many(jobs: list[tuple[str, Case, str]], workers: int, timeout: float, done) -> None:
    """Run (key, case, mode) jobs; ``done(key, status, detail)`` for each."""
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    slots = [_Slot(ctx) for _ in range(max(1, min(workers, len(jobs))))]
    pending = list(reversed(jobs))
    try:
        while pending or any(s.job for s in slots):
            for s in slots:
                if s.job is None and pending:
                    s.job = pending.pop()
                    s.since = time.monotonic()
                    s.conn.send((s.job[1], s.job[2]))
            busy = [s for s in slots if s.job]
            ready = wait([s.conn for s in busy] + [s.proc.sentinel for s in busy], timeout=1.0)
            for s in busy:
                if s.conn in ready:
                    try:
                        status, detail = s.conn.recv()
                    except (EOFError, OSError):
                        status, detail = "crash", f"worker died (exit code {s.proc.exitcode})"
                        s.restart()
                elif s.proc.sentinel in ready or not s.proc.is_alive():
                    s.proc.join()
                    status, detail = "crash", f"worker died (exit code {s.proc.exitcode})"
                    s.restart()
                elif time.monotonic() - s.since > timeout:
                    status, detail = "timeout", f"over {timeout:.0f} s"
                    s.restart()
                else:
                    continue
                key = s.job[0]
                s.job = None
                done(key, status, detail)
    finally:
        for s in slots:
            try:
                s.conn.send(None)
            except OSError:
                pass
            s.proc.join(timeout=5)
            if s.proc.is_alive():
                s.proc.kill()


# --------------------------------------------------------------------------- cache and the suite


#: bump when the runner's feeding or comparing changes (invalidates every cached outcome)
RUNNER_VERSION = b"runner-2"
FRONTENDS = ROOT / "neo_local" / "frontends"
#: the import machinery every TVM mode with our converters depends on (semantics.py holds
#: ``tvm_converter``, through which converters hand nodes back to TVM's)
_CONVERTER_CORE = ("__init__.py", "tvm_hook.py", "relax_util.py", "semantics.py")


def code_hash(mode: str, model: bytes) -> str:
    """A hash of the neo-local code a TVM mode's outcome on ``model`` depends on besides the
    model bytes (the pre-pass shows in the bytes each mode imports): onnx_import.py, and for the
    modes with our converters their core plus the converter modules of the operators the model
    uses, so that editing one converter reruns only the cases that use it."""
    import onnx
    import tvm

    from neo_local.frontends.onnx_converters import registered
    from neo_local.frontends.onnx_functions import all_nodes

    h = hashlib.sha256(RUNNER_VERSION + tvm.__version__.encode())
    paths = [FRONTENDS / "onnx_import.py"]
    if mode != "as_is":
        proto = onnx.load_from_string(model.removeprefix(b"frozen"))
        ops = {n.op_type for n in all_nodes(proto.graph)} & set(registered())
        modules = {c.convert.__module__.rsplit(".", 1)[-1] for op in ops for c in registered()[op]}
        paths += [FRONTENDS / "onnx_converters" / name for name in _CONVERTER_CORE]
        paths += [FRONTENDS / "onnx_converters" / f"{name}.py" for name in sorted(modules)]
    for path in paths:
        h.update(_without_module_list(path.read_bytes()))
    return h.hexdigest()[:16]


def _without_module_list(source: bytes) -> bytes:
    """The registry's source less the list of converter modules it imports: adding a module
    changes the outcome only of cases using its operators, whose keys include that module."""
    import re

    return re.sub(rb"from neo_local\.frontends\.onnx_converters import \([^)]*\)", b"", source)


def mode_model(case: Case, mode: str) -> bytes:
    """The bytes the mode hands to TVM's importer (for the cache key)."""
    if mode == "frozen":
        frozen = freeze_attribute_inputs(case)
        if frozen is case:
            return mode_model(case, "prepass")
        return b"frozen" + mode_model(frozen, "prepass")
    if mode != "prepass":
        return case.model
    import onnx

    from neo_local.frontends.onnx_prepass import prepass

    arrays = _arrays(case.inputs) or []
    model = onnx.load_from_string(case.model)
    initializers = {t.name for t in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in initializers]
    try:
        return prepass(model, {n: a.shape for n, a in zip(names, arrays)}).SerializeToString()
    except Exception:  # noqa: BLE001 (import_onnx then imports the original)
        return case.model


def run_suite(cases: list[Case], modes=("onnxruntime", *MODES), workers: int = 2, timeout: float = 120,
              use_cache: bool = True, verbose: bool = True) -> dict[str, dict[str, dict[str, str]]]:
    """{mode: {case: {"status", "detail"}}}; cached results are reused."""
    path = cache_dir() / "results.json"
    cache = json.loads(path.read_text()) if (use_cache and path.exists()) else {}
    results: dict[str, dict[str, dict[str, str]]] = {m: {} for m in modes}
    jobs = []
    keys = {}
    for case in cases:
        for mode in modes:
            model = mode_model(case, mode)
            salt = RUNNER_VERSION + b"ort" if mode == "onnxruntime" else code_hash(mode, model).encode()
            key = hashlib.sha256(model + salt).hexdigest()[:24]
            keys[(mode, case.name)] = key
            if key in cache:
                results[mode][case.name] = cache[key]
            elif mode == "frozen" and key == keys.get(("prepass", case.name)):
                continue  # nothing to freeze: same answer as prepass
            else:
                jobs.append((key, case, mode))
    seen = set()
    jobs = [j for j in jobs if not (j[0] in seen or seen.add(j[0]))]
    started = time.monotonic()

    def done(key: str, status: str, detail: str) -> None:
        cache[key] = {"status": status, "detail": detail}
        n = len(cache)
        if verbose:
            print(f"[{time.monotonic() - started:6.0f}s] {status:13s} {detail[:100]}", file=sys.stderr, flush=True)
        if n % 25 == 0:
            _save(path, cache)

    if jobs:
        if verbose:
            print(f"{len(jobs)} runs to do ({workers} workers)", file=sys.stderr)
        run_many(jobs, workers, timeout, done)
        _save(path, cache)
    for (mode, name), key in keys.items():
        results[mode][name] = cache[key]
    return results


def _save(path: Path, cache: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=0, sort_keys=True))
    tmp.replace(path)


# --------------------------------------------------------------------------- report


def cause(status: str, detail: str) -> str:
    """A short failure cause for grouping."""
    import re

    if status == "unsupported":
        return "no converter: " + re.sub(r" \(\d+ nodes?\)", "", detail)
    d = re.sub(r"0x[0-9a-f]+", "0x…", detail)
    d = re.sub(r"\d+", "N", d)
    return f"{status}: {d[:110]}"


def summary(results: dict[str, dict[str, dict[str, str]]]) -> str:
    import onnx
    import onnxruntime
    import tvm

    names = sorted(results["as_is"])
    total = len(names)
    lines = [
        "# ONNX backend node suite through neo-local",
        "",
        "Generated by `.venv/bin/python -m tests.onnx_node_suite.run --write-doc` (cases generated from the",
        f"installed onnx {onnx.__version__} package's own case generators; onnxruntime {onnxruntime.__version__},",
        f"TVM {tvm.__version__}, target llvm on the host CPU; compared with rtol {RTOL} / atol {ATOL}).",
        "`tests/onnx_node_suite/test_node_suite.py` runs a fixed sample of these cases in the default test run.",
        "",
        "Modes: **as is**: `import_onnx(..., prepass=False, converters=False)`, i.e. TVM's `from_onnx`",
        "on the model as given, TVM's converters only; **pre-pass**: `import_onnx` as the ONNX frontend",
        "runs it: `onnx_prepass` first (function operators the importer lacks inlined, constants folded),",
        "then TVM's importer with neo-local's own converters (`neo_local/frontends/onnx_converters/`)",
        "joined to TVM's. The node cases pass attribute-like operands (axes, shape, pads, ...) as graph",
        "*inputs*; the pre-pass never folds graph inputs, so those cases stay failures in both modes",
        "(real models carry them as constants or constant subgraphs, which is what the pre-pass makes",
        "visible to the importer).",
        "",
        "**frozen**: as the pre-pass mode, after the runner turned the case's attribute-like graph inputs",
        "(ONNX schema input names axes, shape, pads, sizes, scales, split, K, starts, ends, steps, repeats,",
        "roi, depth, ...; rank <= 1; never the first input) into initializers holding the test's values:",
        "the form real models carry them in.",
        "",
        "onnxruntime's count is lower than its real coverage: this runner feeds it numpy arrays, which its",
        "Python API refuses for bfloat16/float8/int4 (`error`), and neither onnxruntime nor TVM is fed the",
        "sequence/optional cases (`not-fed`). Percentages below are over the cases onnxruntime passes here.",
        "",
        "| outcome | onnxruntime | TVM as is | TVM with pre-pass | pre-pass, operands frozen |",
        "|---|---|---|---|---|",
    ]
    statuses = ["pass", "unsupported", "import-error", "build-error", "run-error", "wrong-answer", "crash",
                "timeout", "not-fed", "error", "harness-error"]
    for st in statuses:
        counts = [sum(1 for n in names if results[m].get(n, {}).get("status") == st)
                  for m in ("onnxruntime", *MODES)]
        if any(counts):
            lines.append(f"| {st} | " + " | ".join(str(c) for c in counts) + " |")
    lines.append(f"| **total** | {total} | {total} | {total} | {total} |")
    ort_pass = {n for n in names if results["onnxruntime"][n]["status"] == PASS}
    for m, label in (("as_is", "as is"), ("prepass", "with pre-pass"), ("frozen", "with pre-pass, operands frozen")):
        both = sum(1 for n in ort_pass if results[m][n]["status"] == PASS)
        lines.append("")
        lines.append(f"TVM {label}: {both} of the {len(ort_pass)} cases onnxruntime passes ({100 * both / max(1, len(ort_pass)):.1f}%).")
    gained = sorted(n for n in names if results["prepass"][n]["status"] == PASS and results["as_is"][n]["status"] != PASS)
    lost = sorted(n for n in names if results["as_is"][n]["status"] == PASS and results["prepass"][n]["status"] != PASS)
    lines += ["", f"## What the pre-pass changes: {len(gained)} cases gained, {len(lost)} lost", ""]
    if gained:
        lines.append("Gained: " + ", ".join(f"`{n}`" for n in gained))
    if lost:
        lines.append("")
        lines.append("Lost: " + ", ".join(f"`{n}` ({results['prepass'][n]['status']})" for n in lost))
    gained_f = sorted(n for n in names if results["frozen"][n]["status"] == PASS and results["prepass"][n]["status"] != PASS)
    lines += ["", f"Freezing the attribute-like inputs gains {len(gained_f)} more cases."]
    causes: Counter = Counter()
    examples: dict[str, str] = {}
    for n in names:
        r = results["frozen"][n]
        if r["status"] != PASS and results["onnxruntime"][n]["status"] == PASS:
            c = cause(r["status"], r["detail"])
            causes[c] += 1
            examples.setdefault(c, n)
    ops: Counter = Counter()
    for n in names:
        r = results["frozen"][n]
        if r["status"] == "unsupported":
            for op in r["detail"].split(", "):
                ops[op.split(" (")[0]] += 1
    lines += ["", "## Top failure causes (operands frozen; cases onnxruntime passes)", "", "| cases | cause | e.g. |", "|---|---|---|"]
    for c, k in causes.most_common(40):
        lines.append(f"| {k} | {c.replace('|', '/')} | `{examples[c]}` |")
    wrong = sorted(n for n in names
                   if results["frozen"][n]["status"] == "wrong-answer" and results["onnxruntime"][n]["status"] == PASS)
    lines += ["", f"## Wrong answers (operands frozen; cases onnxruntime passes): {len(wrong)}", "",
              "Each is a case where the compiled code computes a different result from the stored one; "
              "an `_expanded` twin failing the same way shows the primitive ops TVM imports are the cause.", "",
              ", ".join(f"`{n}`" for n in wrong)]
    lines += ["", "## Operators without a converter (cases, operands frozen)", "",
              ", ".join(f"{op} ({k})" for op, k in ops.most_common())]
    lines += ["", *_converters_section()]
    return "\n".join(lines) + "\n"


def _converters_section() -> list[str]:
    from neo_local.frontends.onnx_converters import registered
    from neo_local.frontends.onnx_converters.tvm_hook import TESTED_TVM_VERSIONS

    rows = [f"| {op} | {c.first_opset}{'..' + str(c.last_opset) if c.last_opset else '+'} | "
            f"`{c.convert.__module__.rsplit('.', 1)[-1]}.{c.convert.__name__}` |"
            for op, entries in registered().items() for c in entries]
    return [
        "## neo-local's own converters",
        "",
        "Registered in `neo_local/frontends/onnx_converters/` (one function per operator, with the opsets",
        "it covers) and handed to TVM's importer by `onnx_converters/tvm_hook.py`, written against TVM",
        f"{', '.join(TESTED_TVM_VERSIONS)}: `from_onnx` takes no converters, so the hook swaps the module's",
        "`_get_convert_map` for the duration of one import. Function operators (Swish, Celu, SwiGLU, the",
        "opset-23 Attention, RotaryEmbedding, SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss,",
        "CenterCropPad, ...) need no converter: `onnx_functions.py` inlines their ONNX function bodies",
        "with onnx's own inliner when the importer lacks them.",
        "",
        "| operator | opsets | converter |",
        "|---|---|---|",
        *rows,
        "",
        "## Fixes that belong upstream in TVM",
        "",
        "- `from_onnx` should take extra converters (the Relay importer had `custom_convert_map`), keyed",
        "  by (domain, op_type): the convert map ignores node domains, so the default-domain opset-23",
        "  `Attention` reaches the com.microsoft `Attention` converter and fails with `'num_heads'`.",
        "- No RNN/GRU/LSTM, QLinearConv/QLinearMatMul/ConvInteger, LpNormalization converters in Relax.",
        "- LayerNormalization's converter returns Y only (Mean and InvStdDev outputs are dropped).",
        "- RMSNormalization over all axes (axis 0) fails to build: `Tensor dimension mismatch in read ndim`.",
        "- NonMaxSuppression reads `max_output_boxes_per_class` and the thresholds only as constants (graph",
        "  inputs silently become 0: nothing selected); TopK and NMS's sort lower to `tvm.contrib.sort`, which",
        "  the runtime alone lacks (neo-local's kernels select by repeated arg-max in plain TIR).",
        "- Resize derives its coordinate scale from the output size where ONNX uses the given `scales`",
        "  (downsampling by 0.6 differs), and lacks antialias, `axes`, `keep_aspect_ratio_policy`,",
        "  `half_pixel_symmetric`.",
        "- Max/min reductions start from the lowest/highest finite float, not -inf/+inf: a row of -inf",
        "  reduces to -FLT_MAX (fully masked attention rows became NaN), an empty axis to garbage.",
        "- float16 matmul/conv/softmax sum in float16 (5% off on a 1024-long dot product); numpy and",
        "  onnxruntime sum in float32.",
        "- Edges: IsInf ignores detect_positive/negative; BitShift by >= width or < 0 is LLVM-undefined;",
        "  float Mod by ±inf gives NaN; SpaceToDepth ignores CRD; ConvTranspose ignores output_shape;",
        "  BatchNormalization (training) weights the running statistics with 1 - momentum.",
        "- `topi.full` fails to legalize with a PrimType dtype; FoldConstant leaves a call to a",
        "  `shape_func` it does not add to the module (dynamic_strided_slice).",
        "- Function operators could be inlined generically from their ONNX schema bodies.",
        "- `relax.Constant` became `tvm.ir.GenericConst` in 0.27 (constant data now under `.value`).",
        "",
        "Upstream in onnx: its inliner asks for the type of an absent optional input (`\"\"`) when it",
        "builds a context-dependent body (Attention with `nonpad_kv_seqlen` but no `past_key`).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--write-doc", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    cases = all_cases()
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    results = run_suite(cases, workers=args.jobs, timeout=args.timeout, use_cache=not args.no_cache,
                        verbose=not args.quiet)
    text = summary(results)
    if args.write_doc and not args.only:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
