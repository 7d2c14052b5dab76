"""Untrusted archives: gzip tar only, nothing escapes the folder, bounded size."""

import io
import tarfile

import pytest

from neo_local.api.errors import JobFailure
from neo_local.archive import UnpackLimits, unpack_model_archive


def _tar(path, entries, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, data=b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_unpacks_files_and_folders(tmp_path):
    archive = _tar(tmp_path / "m.tar.gz", [_file("model.onnx", b"abc"), _file("sub/labels.txt", b"a\nb")])
    out = unpack_model_archive(archive, tmp_path / "out")
    assert (out / "model.onnx").read_bytes() == b"abc"
    assert (out / "sub" / "labels.txt").read_text() == "a\nb"


def test_not_gzip(tmp_path):
    archive = _tar(tmp_path / "m.tar.gz", [_file("model.onnx")], mode="w")
    with pytest.raises(JobFailure) as err:
        unpack_model_archive(archive, tmp_path / "out")
    assert err.value.reason.startswith(
        "ClientError: InputConfiguration: m.tar.gz is not a gzip-compressed tar archive. "
        "S3Uri must point to a single .tar.gz file"
    )


def test_gzip_but_not_tar(tmp_path):
    import gzip

    archive = tmp_path / "m.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar at all" * 100))
    with pytest.raises(JobFailure, match="m.tar.gz could not be unpacked"):
        unpack_model_archive(archive, tmp_path / "out")


@pytest.mark.parametrize("name", ["../evil.onnx", "/etc/evil.onnx", "a/../../evil.onnx"])
def test_path_escape(tmp_path, name):
    archive = _tar(tmp_path / "m.tar.gz", [_file(name)])
    with pytest.raises(JobFailure, match="points outside the archive"):
        unpack_model_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.onnx").exists()


def test_links_are_refused(tmp_path):
    link = tarfile.TarInfo("model.onnx")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _tar(tmp_path / "m.tar.gz", [(link, None)])
    with pytest.raises(JobFailure, match="The archive entry 'model.onnx' is a link; links are not allowed"):
        unpack_model_archive(archive, tmp_path / "out")


def test_size_limit(tmp_path):
    archive = _tar(tmp_path / "m.tar.gz", [_file("a.bin", b"0" * 600), _file("b.bin", b"0" * 600)])
    with pytest.raises(JobFailure, match="The archive unpacks to more than 1000 bytes"):
        unpack_model_archive(archive, tmp_path / "out", UnpackLimits(max_bytes=1000))


def test_member_limit(tmp_path):
    archive = _tar(tmp_path / "m.tar.gz", [_file(f"{i}.txt") for i in range(5)])
    with pytest.raises(JobFailure, match="The archive has more than 3 entries"):
        unpack_model_archive(archive, tmp_path / "out", UnpackLimits(max_members=3))
