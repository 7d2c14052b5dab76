"""packing: the artifact's tarball is written while verification runs, compiled.meta last."""

import hashlib
import shutil
import subprocess
import tarfile

import pytest

from neo_local.packaging import META, packing, read_meta, write_meta


def _folder(tmp_path):
    folder = tmp_path / "artifact"
    folder.mkdir()
    (folder / "compiled.so").write_bytes(bytes(range(256)) * 4096)
    (folder / "extra").mkdir()
    (folder / "extra" / "table.bin").write_bytes(b"\x01" * 100)
    write_meta(folder, {"Verification": "pending"})
    return folder


def test_meta_written_during_packing_goes_in_last(tmp_path):
    folder = _folder(tmp_path)
    tarball = tmp_path / "a.tar.gz"
    with packing(folder, tarball) as finish:
        write_meta(folder, {"Verification": {"status": "passed"}})
        digest = finish()
    assert digest == hashlib.sha256(tarball.read_bytes()).hexdigest()
    with tarfile.open(tarball) as tar:
        assert tar.getnames() == ["compiled.so", "extra", "extra/table.bin", META]
        tar.extractall(tmp_path / "out", filter="data")
    assert read_meta(tmp_path / "out") == {"Verification": {"status": "passed"}}
    assert (tmp_path / "out" / "compiled.so").read_bytes() == (folder / "compiled.so").read_bytes()
    if shutil.which("tar"):  # what a user unpacks it with
        listed = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True)
        assert listed.stdout.split() == ["compiled.so", "extra/", "extra/table.bin", META]


def test_a_failed_verification_leaves_no_tarball(tmp_path):
    folder = _folder(tmp_path)
    tarball = tmp_path / "a.tar.gz"
    with pytest.raises(RuntimeError, match="outputs differ"):
        with packing(folder, tarball):
            raise RuntimeError("outputs differ")
    assert not tarball.exists()


def test_a_packing_failure_reaches_the_caller(tmp_path):
    folder = _folder(tmp_path)
    tarball = tmp_path / "a.tar.gz"
    (folder / META).unlink()  # finish() cannot add what is not there
    with pytest.raises(FileNotFoundError):
        with packing(folder, tarball) as finish:
            finish()
    assert not tarball.exists()
