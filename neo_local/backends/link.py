"""The link step of a compiled library: the ``fcompile`` TVM's ``export_library`` calls.

It links with the target's cc (the host's where the target has no cross linker), the platform's
options and import libraries, and for Linux (glibc) libraries:

- neo-local's thread pool (``thread_pool``), CPU libraries only, compiled to an object first;
- every glibc function named at a version no newer than ``targets.glibc.FLOOR`` (so the library
  loads wherever TVM's runtime does), libpthread.so.0 and libdl.so.2 needed for the pool's
  functions on glibcs before 2.34, and libm, which the kernels' ``logf``/``powf``/``atanf`` come
  from (a cross cc does not add it by itself: the library would need functions nothing provides).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from neo_local.api.errors import internal_error
from neo_local.backends import thread_pool
from neo_local.targets import glibc


def fcompile(
    tvm_target: Mapping[str, Any],
    linker: str | None = None,
    *,
    gpu: bool = False,
    options: Sequence[str] = (),
    files: Sequence[str] = (),
) -> Callable | None:
    """``export_library``'s link step for a library whose host code is for ``tvm_target``: linked by
    ``linker`` (None: the host's cc) with ``options`` before the objects and ``files`` after them;
    None where TVM's default link does the same. ``gpu``: a GPU library (no thread pool)."""
    use_glibc = glibc.links_glibc(tvm_target)
    pool = not gpu and thread_pool.links_pool(tvm_target)
    if linker is None and not (use_glibc or options or files):
        return None
    from tvm.support import cc

    compiler = linker or cc.get_cc()

    def link(output: str, objects: Sequence[str], options_: Sequence[str] | None = None) -> None:
        with tempfile.TemporaryDirectory(prefix="neo-link-") as tmp:
            inputs = list(objects)
            if pool:
                inputs.append(_pool_object(compiler, Path(tmp)))
            libraries: list[str] = []
            if use_glibc:
                inputs = glibc.pin_objects(inputs, compiler, Path(tmp))
                libraries = [*(glibc.SPLIT_LIBRARIES if pool else ()), "-lm"]
            cc.create_shared(output, [*inputs, *files, *libraries], options=[*options, *(options_ or ())], cc=compiler)

    link.output_format = "so"
    link.get_target_triple = None if linker else getattr(cc.create_shared, "get_target_triple", None)
    return link


def _pool_object(compiler: str, workdir: Path) -> str:
    out = workdir / "thread_pool.o"
    cmd = [compiler, "-c", "-fPIC", *thread_pool.COMPILE_OPTIONS, str(thread_pool.SOURCE), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise internal_error(f"{compiler} cannot compile the thread pool: {proc.stderr.strip()[:300]}")
    return str(out)
