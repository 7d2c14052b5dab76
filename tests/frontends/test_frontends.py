import botocore.session
import pytest

from neo_local.api.errors import JobFailure
from neo_local.frontends import frontends, get_frontend, register
from neo_local.frontends.onnx import OnnxFrontend


def test_registered_frameworks_are_api_values():
    enum = botocore.session.get_session().get_service_model("sagemaker").shape_for("Framework").enum
    assert set(frontends()) <= set(enum)
    assert {"ONNX", "PYTORCH"} <= set(frontends())


def test_registering_twice_is_an_error():
    with pytest.raises(ValueError, match="Framework ONNX is registered twice"):
        register(type("Again", (OnnxFrontend,), {}))


def test_unknown_framework_lists_supported():
    with pytest.raises(JobFailure) as err:
        get_frontend("MXNET")
    assert err.value.reason == (
        "ClientError: InputConfiguration: Framework MXNET is not supported by neo-local yet. Supported: ONNX, PYTORCH"
    )
