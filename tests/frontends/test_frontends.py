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
        get_frontend("CAFFE")
    assert err.value.reason == (
        "ClientError: InputConfiguration: Framework CAFFE is not supported by neo-local yet. Supported: DARKNET, KERAS, MXNET, ONNX, PYTORCH, SKLEARN, TENSORFLOW, TFLITE, XGBOOST"
    )


def test_framework_version_rules():
    mxnet = get_frontend("MXNET")
    assert mxnet.framework_version_note(None) is None
    assert mxnet.framework_version_note("1.8.0") == (
        "FrameworkVersion 1.8.0: the model is read with neo-local's own reader of MXNet symbol and params files "
        "(the mxnet package is not used), which reads models saved by MXNET 1.8.0"
    )
    with pytest.raises(JobFailure, match="FrameworkVersion 2.0 is not one Neo supports for MXNET; use one of 1.8"):
        mxnet.framework_version_note("2.0")
    with pytest.raises(JobFailure, match="FrameworkVersion does not apply to ONNX models"):
        get_frontend("ONNX").framework_version_note("1.7")
