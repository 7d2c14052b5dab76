"""The package's top level: the API functions load on first use, and importing the runtime does
not load the API layer."""

import subprocess
import sys

import pytest

import neo_local


def test_api_functions_are_exported():
    from neo_local import create_compilation_job
    from neo_local.api import service

    assert create_compilation_job is service.create_compilation_job
    assert neo_local.compile.__module__ == "neo_local.inprocess"
    assert all(callable(getattr(neo_local, name)) for name in neo_local.__all__)
    with pytest.raises(AttributeError, match="no attribute 'create_job'"):
        neo_local.create_job  # noqa: B018


def test_runtime_loads_without_the_api_layer():
    code = "import sys, neo_local.runtime; print(sorted(m for m in ('botocore', 'neo_local.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
