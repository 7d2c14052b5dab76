"""Compile time per target: one model compiled for every TargetDevice of the API on this host.

    .venv/bin/python -m benchmarks.targets [--model resnet_like] [--devices ml_c5,rasp3b] [--no-save]

The model (a ``models.EXAMPLES`` network as TorchScript, which the TVM targets and coreml both
take) goes through ``neo_local.compile`` once per device, in this process, one after the other.
Per device: wall time of the whole job (import, build, link, verification; an emulated run for
aarch64 rows), artifact size, and the verification the job recorded, or the FailureReason of a
refusal. A record is appended to ``benchmarks/results/targets-<cpu>-<N>c.json`` and a table is
printed. Times include verification, so rows checked under qemu take longer than their build.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import RESULTS, WORK, append_record, git_info, host_info, results_path, versions


def _verification(artifact: Path) -> dict[str, Any]:
    with tarfile.open(artifact) as tar:
        meta = json.load(tar.extractfile("compiled.meta"))
    verification = meta.get("Verification", {})
    return {"verification": verification.get("status"), "pipeline": meta.get("Build", {}).get("Pipeline")}


def compile_for(device: str, example: Any, out: Path) -> dict[str, Any]:
    """One job for ``device``: seconds, artifact bytes and verification, or the refusal."""
    import neo_local
    from neo_local.api.errors import JobFailure

    started = time.perf_counter()
    try:
        uri = neo_local.compile(
            InputConfig={"S3Uri": example.archive, "Framework": example.framework,
                         "DataInputConfig": example.data_input_config},
            OutputConfig={"S3OutputLocation": str(out / device), "TargetDevice": device},
        )
    except JobFailure as failure:
        return {"device": device, "outcome": "failed", "seconds": round(time.perf_counter() - started, 1),
                "reason": str(failure)}
    artifact = Path(uri)
    return {"device": device, "outcome": "artifact", "seconds": round(time.perf_counter() - started, 1),
            "artifact_bytes": artifact.stat().st_size, **_verification(artifact)}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'device':<16} {'outcome':<9} {'s':>6} {'artifact KB':>11}  verification / reason", "-" * 100]
    for r in rows:
        size = f"{r['artifact_bytes'] / 1024:.0f}" if "artifact_bytes" in r else ""
        detail = r.get("verification") or r.get("reason", "")
        lines.append(f"{r['device']:<16} {r['outcome']:<9} {r['seconds']:>6.1f} {size:>11}  {detail[:60]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from models.build import build_example
    from neo_local.api.service_model import shape_named

    parser = argparse.ArgumentParser(prog="python -m benchmarks.targets", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet_like")
    parser.add_argument("--devices", help="comma-separated TargetDevice values (default: all of the API's)")
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    devices = args.devices.split(",") if args.devices else list(shape_named("TargetDevice").enum)
    example = build_example(args.model, "torchscript", WORK / "targets")
    rows = []
    with tempfile.TemporaryDirectory(prefix="neo-local-targets-") as tmp:
        for device in devices:
            rows.append(compile_for(device, example, Path(tmp)))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    if not args.no_save:
        host = host_info(None)
        path = RESULTS / f"targets-{results_path(host).name}"
        append_record(path, {
            "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "model": f"{args.model} (TorchScript)", "host": host, "git": git_info(), "versions": versions(),
            "targets": rows,
        })
        print(f"appended to {path.relative_to(RESULTS.parents[1])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
