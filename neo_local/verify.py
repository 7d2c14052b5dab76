"""Check a built artifact against the source framework: same seeded inputs, the artifact run
in a fresh process, outputs compared. Where this host cannot run the artifact, say why."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neo_local.api.errors import internal_error
from neo_local.frontends.base import ImportedModel, TensorSpec
from neo_local.targets import emulation
from neo_local.targets.binaries import kernel_check, structural_check
from neo_local.targets.cpu_features import host_os, missing_on_host
from neo_local.targets.gpus import GPU_CODES
from neo_local.targets.options import BFLOAT16
from neo_local.targets.spec import TargetSpec

#: outputs must agree to this fraction of the reference's largest magnitude
TOLERANCE = 1e-3
#: ... in a bfloat16 build (CompilerOptions precision): each conv rounds its input and weights to
#: 8 significant bits (relative error up to 2^-8 each), and deep models carry that on. Measured
#: against onnxruntime's float32 (seeded inputs, 2 threads, Zen 5): ResNet-50-style 0.046,
#: MobileNetV2-style 0.031, DenseNet-style 0.007; the top class the same in each
BF16_TOLERANCE = 0.1
TIMEOUT_S = 600


@dataclass(frozen=True)
class Verification:
    status: str                 # "passed" | "structural" (not run; library checked) | "skipped"
    detail: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None

    def as_meta(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def sample_inputs(specs: tuple[TensorSpec, ...], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs: normal floats; small non-negative integers (valid as indices)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(spec.shape).astype(dtype)
        else:
            feeds[spec.name] = rng.integers(0, 2, spec.shape).astype(dtype)
    return feeds


def run_artifact(
    artifact: Path, feeds: dict[str, np.ndarray], workdir: Path, runner: emulation.Runner | None = None
) -> list[np.ndarray]:
    """Run the artifact with ``feeds`` in a new process: by default this interpreter with the TVM
    runtime alone; else ``runner`` (qemu-user, wine: see neo_local.targets.emulation)."""
    runner = runner or emulation.HostPython(sys.executable)
    workdir.mkdir(parents=True, exist_ok=True)
    call = runner.invocation(artifact, feeds, workdir)
    where = runner.describe()
    proc = subprocess.Popen(call.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(call.env),
                            cwd=call.cwd, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: wine and qemu start helpers
        proc.communicate()
        raise internal_error(f"the compiled artifact did not finish within {TIMEOUT_S} s {where}") from None
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise internal_error(f"the compiled artifact failed to run {where}: {tail}")
    return call.read_outputs()


def compare(expected: list[np.ndarray], actual: list[np.ndarray]) -> tuple[float, float]:
    """Largest absolute error and largest error relative to each output's magnitude."""
    if len(expected) != len(actual):
        raise internal_error(f"the artifact returned {len(actual)} outputs, the framework {len(expected)}")
    max_abs = max_rel = 0.0
    for i, (e, a) in enumerate(zip(expected, actual)):
        e = np.asarray(e)
        if e.shape != a.shape:
            raise internal_error(f"output {i} has shape {list(a.shape)}, the framework's {list(e.shape)}")
        diff = float(np.max(np.abs(e.astype(np.float64) - a.astype(np.float64)))) if e.size else 0.0
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(scale, 1e-6))
    return max_abs, max_rel


def verify(artifact: Path, model: ImportedModel, target: TargetSpec, workdir: Path) -> Verification:
    """Run and compare where possible; raises JobFailure when outputs disagree."""
    if model.ir_kind == "coreml":  # Core ML runs only on Apple's systems: the saved spec is checked
        from neo_local.backends.coreml_check import check_saved_model

        return Verification("structural", check_saved_model(artifact, model.ir))
    if target.gpu_target is not None:
        return _check_gpu_artifact(artifact, target)
    if model.reference is None:
        return Verification("skipped", "the framework gave no reference to compare with")
    runner, how = None, "ran in a fresh process on this host"
    if not emulation.host_runs(target.os, target.arch):
        structure = structural_check(artifact / _library_name(artifact), target.os, target.arch)
        found = emulation.find_emulator(target.os, target.arch, str(target.tvm_target.get("mcpu", "")))
        if isinstance(found, str):
            return Verification(
                "structural",
                f"not run: this host is {host_os()} {platform.machine()}, the artifact is for {target.os} "
                f"{target.arch}, and {found}. "
                f"Structural check passed: {structure}",
            )
        runner, how = found, f"ran {found.describe()} ({structure})"
    elif target.os == "LINUX":  # this host loads it; a device with an older glibc might not
        structural_check(artifact / _library_name(artifact), target.os, target.arch)
    missing = () if runner else missing_on_host(target.cpu_features)
    if missing:
        return Verification(
            "skipped",
            f"this host's CPU lacks {', '.join(missing)} needed by {target.tvm_target.get('mcpu')} code; "
            "the artifact was not run here",
        )
    feeds = sample_inputs(model.inputs)
    expected = model.reference(feeds)
    actual = run_artifact(artifact, feeds, workdir, runner)
    max_abs, max_rel = compare(expected, actual)
    if target.precision == BFLOAT16:
        failed, limit = max_rel > BF16_TOLERANCE, f"bfloat16 tolerance {BF16_TOLERANCE}"
    elif model.tolerance is None:
        failed, limit = max_rel > TOLERANCE, f"tolerance {TOLERANCE}"
    else:  # the frontend's own bound, absolute (quantized models: quantization steps)
        failed, limit = max_abs > model.tolerance, f"absolute tolerance {model.tolerance:.3g} for this model"
    if failed:
        raise internal_error(
            f"the compiled model's outputs differ from those of {model.reference_label}: max abs error {max_abs:.3g}, "
            f"relative {max_rel:.3g} ({limit})"
        )
    return Verification(
        "passed", f"{how} and matched {model.reference_label} ({limit})", max_abs, max_rel
    )


def _check_gpu_artifact(artifact: Path, target: TargetSpec) -> Verification:
    """GPU kernels cannot run here: check the host code and that the kernels are in the library."""
    import tvm

    code = GPU_CODES[str(target.accelerator)]
    library = artifact / _library_name(artifact)
    host = structural_check(library, target.os, target.arch)
    kernels = kernel_check(library, code.kind, str((target.gpu_target or {}).get("arch", "")))
    runtime = "has" if tvm.runtime.enabled(code.kind) else "has no"
    return Verification(
        "structural",
        f"not run: its kernels need the {target.gpu} through {code.api}, which this host does not have (its TVM "
        f"runtime {runtime} {code.api} support). Structural check passed: {host}; {kernels}",
    )


def _library_name(folder: Path) -> str:
    import json

    try:
        return json.loads((folder / "compiled.meta").read_text())["Runtime"]["Library"]
    except (OSError, ValueError, KeyError):
        return "compiled.so"
