"""Build tree and linear models (IR kind ``tree-c``) to a native shared library.

Tree ensembles: treelite model -> ``tl2cgen.generate_c_code`` (portable C99: one
``predict(union Entry*, int, <leaf type>*)`` per row). Linear models: C written here.
Around either, a generated ``neo_predict.c`` gives the library one entry point over a batch,
so the runtime needs neither treelite nor tl2cgen, only ctypes:

    int32_t neo_abi_version(void);            /* ABI_VERSION */
    int32_t neo_num_feature(void);
    int32_t neo_num_output(void);
    int32_t neo_predict(const float* data, int64_t rows, float* out);
            /* data [rows, num_feature] row-major float32, NaN = missing;
               out [rows, num_output] float32; returns 0, or -1 if out of memory */

It applies the StandardScaler steps, marks NaN features missing for the trees, and finishes
the outputs (binary probabilities -> [1 - p, p], softmax -> class index) so the library gives
what the framework's own predict / predict_proba gives.

The sources are built with a C compiler for the target (``cc``: the host's ``cc`` by default,
or the target's ``linker``; a cross compiler drops in there), ``-O3 -fPIC -shared`` plus
``-march``/``-mtune`` from the target's mcpu.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from neo_local.api.errors import client_error, exception_line, internal_error
from neo_local.backends.base import BuiltModel
from neo_local.frontends.base import ImportedModel
from neo_local.frontends.tree_common import LinearModel, NativeModel, TreeEnsemble
from neo_local.targets import glibc
from neo_local.targets.cpu_features import x86_level
from neo_local.targets.spec import TargetSpec

LIBRARY = "compiled.so"
RUNTIME = "tree-c"
ABI_VERSION = 1
BASE_FLAGS = ("-O3", "-fPIC", "-std=gnu99", "-ffp-contract=off")

#: LLVM CPU names that gcc spells differently (gcc also takes most LLVM x86 names as they are)
_GCC_MARCH = {
    "core-avx2": "haswell",
    "core-avx-i": "ivybridge",
    "corei7-avx": "sandybridge",
    "corei7": "nehalem",
}
#: -march values that are ISA levels, not CPUs: gcc refuses them as -mtune
_ISA_LEVELS = {"x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4"}
#: trees per generated C file above which tl2cgen splits the model (compiled in parallel)
_TREES_PER_FILE = 64


def build(
    model: ImportedModel, target: TargetSpec, out_dir: Path, cc: str | Sequence[str] | None = None
) -> BuiltModel:
    """Write ``compiled.so`` into ``out_dir``; ``cc`` overrides the C compiler (a cross compiler)."""
    ir = model.ir
    if not isinstance(ir, NativeModel):
        raise internal_error(f"the tree-c backend got {type(ir).__name__}, not a NativeModel")
    compiler = _compiler(cc, target)
    flags = _usable_flags(compiler, target)
    out_dir.mkdir(parents=True, exist_ok=True)
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="neo-local-treec-") as tmp:
        src = Path(tmp)
        sources = []
        if isinstance(ir.model, TreeEnsemble):
            sources += _tree_sources(ir, src)
            import tl2cgen
            import treelite

            versions.update({"treelite": treelite.__version__, "tl2cgen": tl2cgen.__version__})
        (src / "neo_predict.c").write_text(entry_source(ir, src / "header.h"))
        sources.append(src / "neo_predict.c")
        _compile(compiler, flags, sources, out_dir / LIBRARY, glibc.links_glibc(target.tvm_target))
        c_files = len(sources)
    versions["cc"] = _compiler_version(compiler)
    versions["cc-flags"] = " ".join([*flags, "-shared"])
    return BuiltModel(
        library=LIBRARY,
        runtime=RUNTIME,
        compiler_versions=versions,
        details={"abi_version": ABI_VERSION, "num_feature": ir.num_feature, "num_output": ir.num_output,
                 "c_files": c_files},
    )


# ---- target flags -------------------------------------------------------------------------


def cpu_flags(target: TargetSpec) -> list[str]:
    """gcc/clang flags for the target's mcpu and mattr (x86_64 today)."""
    mcpu = str(target.tvm_target.get("mcpu") or "")
    mattr = list(target.tvm_target.get("mattr") or ())
    if target.gpu_target is not None:  # never CPU code in an artifact that says it runs on the GPU
        raise client_error(
            "OutputConfiguration",
            f"tree and linear models are built as C code for CPUs only, not for {target.name}'s {target.gpu}; for its "
            f"CPU give TargetPlatform Os={target.os}, Arch={target.arch} with CompilerOptions {{\"mcpu\": \"{mcpu}\"}}",
        )
    if target.arch not in ("X86_64", "X86") or target.os != "LINUX":
        raise client_error(
            "OutputConfiguration",
            f"tree and linear models are built for x86 Linux targets only so far; {target.name} is {target.os} "
            f"{target.arch}",
        )
    flags = []
    if mcpu:
        march = _GCC_MARCH.get(mcpu, mcpu)
        flags += [f"-march={march}", f"-mtune={'generic' if march in _ISA_LEVELS else march}"]
    for attr in mattr:
        flags.append(("-m" if attr.startswith("+") else "-mno-") + attr[1:])
    return flags


def _compiler(cc: str | Sequence[str] | None, target: TargetSpec) -> list[str]:
    if cc is None:
        cc = target.linker or os.environ.get("CC") or "cc"
    command = shlex.split(cc) if isinstance(cc, str) else list(cc)
    if not command or shutil.which(command[0]) is None:
        raise internal_error(
            f"no C compiler {command[0] if command else cc!r} on this machine to build tree models for {target.name}; "
            "install gcc (or set CC)"
        )
    return command


def _usable_flags(compiler: list[str], target: TargetSpec) -> list[str]:
    """The target's flags; where the compiler does not know its CPU yet (gcc 12 and znver5, a CPU LLVM
    knows), the x86-64 level the CPU's features reach, tuned generically: the same code but for the
    extensions newer than the level (recorded as the artifact's ``cc-flags``). A CPU the compiler
    refuses either way is the user's mcpu, said clearly."""
    flags = [*BASE_FLAGS, *cpu_flags(target)]
    error = _flags_error(compiler, flags)
    if error is None:
        return flags
    mcpu = target.tvm_target.get("mcpu")
    if mcpu and target.arch == "X86_64":
        mattr = [f for f in flags[len(BASE_FLAGS):] if not f.startswith(("-march=", "-mtune="))]
        level = x86_level(dict(target.tvm_target))
        fallback = [*BASE_FLAGS, f"-march={level}", "-mtune=generic", *mattr]
        if level is not None and _flags_error(compiler, fallback) is None:
            return fallback
    raise client_error(
        "OutputConfiguration",
        f"the C compiler {' '.join(compiler)} that builds tree and linear models cannot build for {target.name} "
        f"with {' '.join(flags[len(BASE_FLAGS):])} (mcpu {mcpu}): {error}",
    )


def _flags_error(compiler: list[str], flags: list[str]) -> str | None:
    """The compiler's complaint about ``flags`` (its last line), None when it takes them."""
    with tempfile.TemporaryDirectory(prefix="neo-local-cc-") as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text("int neo_probe(void) { return 0; }\n")
        proc = subprocess.run(
            [*compiler, *flags, "-c", str(probe), "-o", str(Path(tmp) / "probe.o")],
            capture_output=True, text=True,
        )
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]


def _compile(compiler: list[str], flags: list[str], sources: list[Path], library: Path, floor: bool) -> None:
    """Each source to an object (in parallel: big ensembles are split over files), then link;
    ``floor``: a glibc library, its calls into glibc named at versions at or below ``glibc.FLOOR``."""

    def one(source: Path) -> Path:
        obj = source.with_suffix(".o")
        _run([*compiler, *flags, "-c", str(source), "-o", str(obj)], f"compile {source.name}")
        return obj

    with ThreadPoolExecutor(max_workers=max(1, min(len(sources), os.cpu_count() or 1))) as pool:
        objects = list(pool.map(one, sources))
    if floor:
        objects = [Path(o) for o in glibc.pin_objects(map(str, objects), compiler, sources[0].parent)]
    _run([*compiler, *flags, "-shared", "-o", str(library), *map(str, objects), "-lm"], f"link {library.name}")


def _run(command: list[str], what: str) -> None:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise internal_error(f"the C compiler failed to {what}: {tail}")


def _compiler_version(compiler: list[str]) -> str:
    proc = subprocess.run([*compiler, "--version"], capture_output=True, text=True)
    first = (proc.stdout.strip().splitlines() or ["unknown"])[0]
    return f"{' '.join(compiler)}: {first}"


# ---- sources ------------------------------------------------------------------------------


def _tree_sources(ir: NativeModel, src: Path) -> list[Path]:
    import tl2cgen
    import treelite

    assert isinstance(ir.model, TreeEnsemble)
    try:
        tl_model = treelite.Model.deserialize_bytes(ir.model.treelite)
        params = {}
        if tl_model.num_tree > _TREES_PER_FILE:
            params["parallel_comp"] = math.ceil(tl_model.num_tree / _TREES_PER_FILE)
        tl2cgen.generate_c_code(tl_model, str(src), params=params)
    except Exception as exc:  # treelite and tl2cgen raise their own error types from C++
        raise internal_error(f"tl2cgen could not generate C for the tree model: {exception_line(exc)}") from exc
    header = (src / "header.h").read_text()
    n_target = int(_define(header, "N_TARGET"))
    n_class = int(_define(header, "MAX_N_CLASS"))
    if n_target * n_class != ir.model.outputs:
        raise internal_error(
            f"the generated tree code writes {n_target} x {n_class} values per row, the frontend expected "
            f"{ir.model.outputs}"
        )
    return sorted(src.glob("*.c"))


def _define(header: str, name: str) -> str:
    found = re.search(rf"^#define {name} (\S+)", header, re.M)
    if not found:
        raise internal_error(f"tl2cgen's header.h has no {name}")
    return found.group(1)


def _leaf_type(header: str) -> str:
    found = re.search(r"void predict\(union Entry\* data, int pred_margin, (\w+)\* result\);", header)
    if not found:
        raise internal_error("tl2cgen's header.h has no predict(union Entry*, int, T*) declaration")
    return found.group(1)


def c_double(value: float) -> str:
    """An exact C99 literal for a float64 (hex float), INFINITY/NAN where needed."""
    value = float(value)
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    return value.hex()


def _c_array(name: str, values: np.ndarray) -> str:
    flat = np.asarray(values, dtype=np.float64).ravel()
    body = ",\n  ".join(", ".join(c_double(v) for v in flat[i:i + 4]) for i in range(0, len(flat), 4))
    return f"static const double {name}[{max(len(flat), 1)}] = {{\n  {body or '0'}\n}};\n"


def entry_source(ir: NativeModel, header: Path | None) -> str:
    """The C of the library's entry points for ``ir`` (see the module docstring); ``header``
    is tl2cgen's header.h for a tree ensemble (it says the leaf type)."""
    tree = isinstance(ir.model, TreeEnsemble)
    parts = [
        "/* neo-local: batch entry points around the model; generated, do not edit */\n",
        "#include <math.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n",
        '#include "header.h"\n' if tree else "",
        f"\n#define NEO_F {ir.num_feature}\n#define NEO_K {ir.num_output}\n\n",
    ]
    for i, scaler in enumerate(ir.scalers):
        parts.append(_c_array(f"neo_mean_{i}", scaler.mean))
        parts.append(_c_array(f"neo_scale_{i}", scaler.scale))
    if not tree:
        assert isinstance(ir.model, LinearModel)
        parts.append(_c_array("neo_coef", ir.model.coef))
        parts.append(_c_array("neo_intercept", ir.model.intercept))
    parts.append(
        f"int32_t neo_abi_version(void) {{ return {ABI_VERSION}; }}\n"
        "int32_t neo_num_feature(void) { return NEO_F; }\n"
        "int32_t neo_num_output(void) { return NEO_K; }\n\n"
    )
    # StandardScaler on float32 data: each step in float64, rounded to float32 (as numpy does)
    scale = "".join(
        f"    v[j] = (float)((double)v[j] - neo_mean_{i}[j]);\n"
        f"    v[j] = (float)((double)v[j] / neo_scale_{i}[j]);\n"
        for i in range(len(ir.scalers))
    )
    if tree:
        if header is None:
            raise internal_error("a tree ensemble's entry points need tl2cgen's header.h")
        body = _tree_row(ir, _leaf_type(header.read_text()))
    else:
        body = _linear_row(ir.model)
    # one row: x [F] -> v [F] (scaled copy) -> out [K]; e: the Entry array tl2cgen's predict reads
    entries = "union Entry* e, " if tree else ""
    parts.append(
        f"static void neo_row(const float* x, float* v, {entries}float* out) {{\n"
        "  memcpy(v, x, sizeof(float) * NEO_F);\n"
        + (f"  for (int32_t j = 0; j < NEO_F; ++j) {{\n{scale}  }}\n" if scale else "")
        + body
        + "}\n\n"
    )
    alloc = "  union Entry* e = (union Entry*)malloc(sizeof(union Entry) * NEO_F);\n" if tree else ""
    parts.append(
        "int32_t neo_predict(const float* data, int64_t rows, float* out) {\n"
        "  float* v = (float*)malloc(sizeof(float) * NEO_F);\n"
        + alloc
        + ("  if (v == NULL || e == NULL) { free(v); free(e); return -1; }\n" if tree
           else "  if (v == NULL) return -1;\n")
        + "  for (int64_t i = 0; i < rows; ++i) {\n"
        f"    neo_row(data + i * NEO_F, v, {'e, ' if tree else ''}out + i * NEO_K);\n"
        "  }\n"
        "  free(v);\n"
        + ("  free(e);\n" if tree else "")
        + "  return 0;\n}\n"
    )
    return "".join(parts)


def _tree_row(ir: NativeModel, leaf: str) -> str:
    assert isinstance(ir.model, TreeEnsemble)
    n = ir.model.outputs
    code = (
        "  for (int32_t j = 0; j < NEO_F; ++j) {\n"
        "    if (isnan(v[j])) { e[j].missing = -1; } else { e[j].fvalue = v[j]; }\n"
        "  }\n"
        f"  {leaf} r[{n}];\n"
        f"  for (int32_t c = 0; c < {n}; ++c) r[c] = 0;\n"
        "  predict(e, 0, r);\n"
    )
    return code + _finish(ir.finish, n, "r")


def _linear_row(model: LinearModel) -> str:
    n = model.outputs
    code = (
        f"  double z[{n}];\n"
        f"  for (int32_t c = 0; c < {n}; ++c) {{\n"
        "    double s = 0.0;\n"
        "    for (int32_t j = 0; j < NEO_F; ++j) s += neo_coef[c * NEO_F + j] * (double)v[j];\n"
        "    z[c] = s + neo_intercept[c];\n"
        "  }\n"
    )
    if model.link == "logistic":
        return code + (
            "  double p = 1.0 / (1.0 + exp(-z[0]));\n"
            "  out[0] = (float)(1.0 - p);\n"
            "  out[1] = (float)p;\n"
        )
    if model.link == "softmax":
        return code + (
            "  double m = z[0], sum = 0.0;\n"
            f"  for (int32_t c = 1; c < {n}; ++c) if (z[c] > m) m = z[c];\n"
            f"  for (int32_t c = 0; c < {n}; ++c) {{ z[c] = exp(z[c] - m); sum += z[c]; }}\n"
            f"  for (int32_t c = 0; c < {n}; ++c) out[c] = (float)(z[c] / sum);\n"
        )
    if model.link != "identity":
        raise internal_error(f"unknown linear link {model.link!r}")
    return code + f"  for (int32_t c = 0; c < {n}; ++c) out[c] = (float)z[c];\n"


def _finish(finish: str, n: int, r: str) -> str:
    if finish == "none":
        return f"  for (int32_t c = 0; c < {n}; ++c) out[c] = (float){r}[c];\n"
    if finish == "binary_proba":
        return f"  out[0] = (float)(1.0 - (double){r}[0]);\n  out[1] = (float){r}[0];\n"
    if finish == "argmax":
        return (
            "  int32_t best = 0;\n"
            f"  for (int32_t c = 1; c < {n}; ++c) if ({r}[c] > {r}[best]) best = c;\n"
            "  out[0] = (float)best;\n"
        )
    raise internal_error(f"unknown finish {finish!r}")


__all__ = ["ABI_VERSION", "LIBRARY", "RUNTIME", "build", "cpu_flags", "entry_source"]
