"""Relax rewrites for quantized (int8 QDQ / TFLite int8) models, run before the float rewrites of ``passes``."""

from __future__ import annotations

import tvm


def rewrite(mod: tvm.IRModule, lanes: int) -> tvm.IRModule:
    """The module with its quantized patterns rewritten for the blocked CPU schedules (none yet)."""
    return mod
