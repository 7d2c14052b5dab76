"""The README's first command: example model -> neo-local CLI job for ml_c5 -> run -> compare.

Everything a user would do by hand, in order, with the commands printed as they run.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "demo"
NEO = [str(Path(sys.executable).with_name("neo-local"))]


def sh(args: list[str]) -> str:
    print("$ " + " ".join(shlex.quote(a) for a in args), flush=True)
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout


def compile_job(archive: Path, data_input_config: str, output_config: str) -> Path:
    name = f"demo-{int(time.time())}"
    sh([*NEO, "create-compilation-job",
        "--compilation-job-name", name,
        "--role-arn", "arn:aws:iam::123456789012:role/neo",
        "--input-config", f"S3Uri=file://{archive},Framework=ONNX,DataInputConfig={data_input_config}",
        "--output-config", output_config,
        "--stopping-condition", "MaxRuntimeInSeconds=900",
        "--wait"])
    job = json.loads(sh([*NEO, "describe-compilation-job", "--compilation-job-name", name]))
    print(f"  status {job['CompilationJobStatus']}, artifact {job['ModelArtifacts']['S3ModelArtifacts']}")
    return Path(job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("file://"))


def show(name: str, ours: np.ndarray, theirs: np.ndarray) -> None:
    print(f"\n{name}: first outputs, compiled vs torch (max abs error {np.max(np.abs(ours - theirs)):.2e})")
    for i in range(min(5, ours.size)):
        print(f"  [{i}] {ours.flat[i]: .6f}  {theirs.flat[i]: .6f}")


def main() -> int:
    from models.build import build_example
    from neo_local.runtime import ArtifactError, DLRModel

    example = build_example("resnet_like", "onnx", WORK)
    print(f"Example model: {example.archive} (inputs {example.data_input_config})")
    out = f"S3OutputLocation=file://{WORK / 'out'}"
    artifact = compile_job(Path(example.archive), example.data_input_config, f"{out},TargetDevice=ml_c5")
    feeds = example.load_inputs()
    torch_out = example.load_outputs()[0]
    try:
        show("ml_c5", DLRModel(artifact).run(feeds)[0], torch_out)
        return 0
    except ArtifactError as exc:
        print(f"\nThe ml_c5 artifact cannot run on this machine: {exc}")
    from neo_local.targets.cpu_features import host_cpu_name

    cpu = host_cpu_name()
    print(f"Compiling the same model for this machine instead (TargetPlatform LINUX/X86_64, mcpu {cpu}):")
    artifact = compile_job(
        Path(example.archive), example.data_input_config,
        f"{out},TargetPlatform={{Os=LINUX,Arch=X86_64}},CompilerOptions={{\"mcpu\":\"{cpu}\"}}",
    )
    show(f"LINUX_X86_64 ({cpu})", DLRModel(artifact).run(feeds)[0], torch_out)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
