"""storage: plain paths, file:// and s3:// (against a real S3 server, moto, on loopback)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pytest

from neo_local import storage
from neo_local.api.errors import JobFailure


def _bucket(s3_endpoint) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "src" / "model.tar.gz"
    path.parent.mkdir()
    path.write_bytes(os.urandom(3000))
    return path


# -- locations -----------------------------------------------------------------------------

def test_absolute_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage.absolute_location("model.tar.gz") == str(tmp_path / "model.tar.gz")
    assert storage.absolute_location("./a/../out") == str(tmp_path / "out")
    assert storage.absolute_location("file://model.tar.gz") == f"file://{tmp_path}/model.tar.gz"
    assert storage.absolute_location("file:///abs/m.tar.gz") == "file:///abs/m.tar.gz"
    assert storage.absolute_location("file://localhost/abs/m.tar.gz") == "file:///abs/m.tar.gz"
    assert storage.absolute_location("/abs/out/") == "/abs/out"
    assert storage.absolute_location("s3://b/k/m.tar.gz") == "s3://b/k/m.tar.gz"
    assert storage.absolute_location("https://h/m.tar.gz") == "https://h/m.tar.gz"
    assert storage.absolute_location("~/m.tar.gz") == str(Path.home() / "m.tar.gz")


# -- local ---------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["path", "file"])
def test_local_round_trip(tmp_path, archive, style):
    src = str(archive) if style == "path" else f"file://{archive}"
    got = storage.download(src, tmp_path / "scratch")
    assert got == tmp_path / "scratch" / "model.tar.gz"
    assert got.read_bytes() == archive.read_bytes()

    out = tmp_path / "deep" / "out"
    location = str(out) if style == "path" else f"file://{out}"
    uri = storage.upload(got, location)
    assert uri == (str(out / "model.tar.gz") if style == "path" else f"file://{out}/model.tar.gz")
    assert (out / "model.tar.gz").read_bytes() == archive.read_bytes()
    assert not list(out.glob(".*partial"))


def test_download_missing_file(tmp_path):
    with pytest.raises(JobFailure) as e:
        storage.download(f"file://{tmp_path}/nope.tar.gz", tmp_path / "s")
    assert e.value.reason == (
        f"ClientError: InputConfiguration: The model archive file://{tmp_path}/nope.tar.gz does not "
        f"exist (no such file: {tmp_path}/nope.tar.gz)."
    )


def test_download_directory(tmp_path):
    with pytest.raises(JobFailure) as e:
        storage.download(str(tmp_path), tmp_path / "s")
    assert e.value.reason.startswith(f"ClientError: InputConfiguration: S3Uri {tmp_path} is a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads anything")
def test_download_permission_denied(tmp_path, archive):
    archive.chmod(0)
    with pytest.raises(JobFailure) as e:
        storage.download(str(archive), tmp_path / "s")
    assert e.value.reason.startswith(f"ClientError: InputConfiguration: Cannot read the model archive {archive}: permission denied")


def test_upload_onto_a_file(tmp_path, archive):
    with pytest.raises(JobFailure) as e:
        storage.upload(archive, str(archive))
    assert e.value.reason.startswith(f"ClientError: OutputConfiguration: S3OutputLocation {archive} is an existing file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_upload_permission_denied(tmp_path, archive):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(JobFailure) as e:
            storage.upload(archive, str(locked / "out"))
    finally:
        locked.chmod(0o700)
    assert e.value.reason.startswith(f"ClientError: OutputConfiguration: Cannot write the artifact to {locked}/out: permission denied")


def test_unsupported_scheme(tmp_path, archive):
    with pytest.raises(JobFailure, match=r"^ClientError: InputConfiguration: S3Uri ftp://h/m.tar.gz has an unsupported scheme 'ftp://'"):
        storage.download("ftp://h/m.tar.gz", tmp_path)
    with pytest.raises(JobFailure, match=r"^ClientError: OutputConfiguration: S3OutputLocation gs://b/o has an unsupported scheme"):
        storage.upload(archive, "gs://b/o")


# -- s3 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["", "compiled", "a/b/"])
def test_s3_round_trip(s3_endpoint, tmp_path, archive, prefix):
    bucket = _bucket(s3_endpoint)
    uri = storage.upload(archive, f"s3://{bucket}/{prefix}")
    key = f"{prefix.rstrip('/')}/model.tar.gz" if prefix else "model.tar.gz"
    assert uri == f"s3://{bucket}/{key}"
    got = storage.download(uri, tmp_path / "scratch")
    assert got.name == "model.tar.gz"
    assert got.read_bytes() == archive.read_bytes()


def test_s3_upload_with_kms_key(s3_endpoint, archive):
    bucket = _bucket(s3_endpoint)
    key_id = boto3.client("kms", endpoint_url=s3_endpoint).create_key()["KeyMetadata"]["KeyId"]
    uri = storage.upload(archive, f"s3://{bucket}/out", kms_key_id=key_id)
    head = boto3.client("s3").head_object(Bucket=bucket, Key="out/model.tar.gz")
    assert uri == f"s3://{bucket}/out/model.tar.gz"
    assert head["ServerSideEncryption"] == "aws:kms"
    assert key_id in head["SSEKMSKeyId"]


def test_s3_missing_object(s3_endpoint, tmp_path):
    bucket = _bucket(s3_endpoint)
    with pytest.raises(JobFailure) as e:
        storage.download(f"s3://{bucket}/models/model.tar.gz", tmp_path)
    assert e.value.reason == (
        f"ClientError: InputConfiguration: S3 object does not exist. Bucket: {bucket}, Key: models/model.tar.gz"
    )


def test_s3_missing_bucket(s3_endpoint, tmp_path, archive):
    with pytest.raises(JobFailure) as e:
        storage.download("s3://no-such-bucket-neo/model.tar.gz", tmp_path)
    assert e.value.reason == "ClientError: InputConfiguration: S3 bucket does not exist. Bucket: no-such-bucket-neo, Key: model.tar.gz"
    with pytest.raises(JobFailure) as e:
        storage.upload(archive, "s3://no-such-bucket-neo/out")
    assert e.value.reason == (
        "ClientError: OutputConfiguration: S3 bucket does not exist. Bucket: no-such-bucket-neo "
        "(S3OutputLocation s3://no-such-bucket-neo/out)"
    )


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3://bucket/models/"])
def test_s3_uri_must_name_an_object(tmp_path, uri):
    with pytest.raises(JobFailure, match=r"^ClientError: InputConfiguration: S3Uri .* names a bucket or prefix, not an object"):
        storage.download(uri, tmp_path)


def test_s3_endpoint_unreachable(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(JobFailure, match=r"^ClientError: InputConfiguration: Cannot connect to the S3 endpoint for s3://b/m.tar.gz"):
        storage.download("s3://b/m.tar.gz", tmp_path)
