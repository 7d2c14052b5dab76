"""Shared fixtures: a private NEO_LOCAL_HOME per test, and a real S3 server (moto) on loopback."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def neo_home(tmp_path_factory, monkeypatch):
    """Each test gets its own job store and job directories (never ~/.neo-local)."""
    home = tmp_path_factory.mktemp("neo-home")
    monkeypatch.setenv("NEO_LOCAL_HOME", str(home))
    monkeypatch.setenv("NEO_LOCAL_TUNING_RECORDS", str(home / "tuning-records.jsonl"))  # never the user's
    return home


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def _moto_server():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(_moto_server, monkeypatch):
    """The moto S3 endpoint, with this test's environment pointing boto3 (and job processes) at it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", _moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return _moto_server
