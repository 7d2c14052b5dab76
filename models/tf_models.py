"""TensorFlow, Keras and TFLite example models, built in code with seeded weights, and the
archives a Neo user would upload for them.

    python -m models.tf_models NAME [NAME ...] --out DIR [--seed N] [--force]

Each example writes, under DIR:

    <name>.tar.gz        the archive (a .h5/.keras/.tflite/.pb file, or a SavedModel directory)
    <name>.inputs.npz    seeded inputs, by input name, in the layout the compiled model takes
                         (NCHW for Keras image inputs, as Neo's DataInputConfig says)
    <name>.outputs.npz   the framework's own outputs on those inputs (output0..N), computed with
                         the model as built (before saving), so a save/load problem shows too
    <name>.build.json    Framework, DataInputConfig, CompilerOptions, cache key

A build whose files are present and whose key (name, seed, this file, TensorFlow/Keras
versions) matches is reused. TensorFlow is imported when a model is built, not on import.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

import numpy as np

from models.cache import BuildFiles, example_main

__all__ = ["EXAMPLES", "TFBuild", "build_tf_example"]


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def _fresh(seed: int) -> Any:
    """tensorflow, with Keras' layer-name counters reset (so auto names such as "input_layer"
    do not depend on what was built before) and every generator seeded."""
    tf = _tf()
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)
    return tf


# --- networks --------------------------------------------------------------------------------


def calibrate_batch_norm(model: Any, shape: tuple[int, ...], seed: int = 0) -> None:
    """Give every BatchNormalization layer the statistics of seeded data (plus seeded gamma and
    beta), as training would: with the default (0, 1) statistics a deep random network's output
    barely depends on its input, which would hide compiler errors in the early layers."""
    import keras

    rng = np.random.default_rng(seed + 1000)
    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([
            rng.uniform(0.8, 1.2, gamma.shape).astype("float32"),
            rng.normal(0.0, 0.2, beta.shape).astype("float32"),
            mean, var,
        ])
        layer.momentum = 0.0  # the moving statistics become the batch's
    model(rng.standard_normal((16, *shape[1:])).astype("float32"), training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(_all_layers(layer))
    return out


def mobilenet_v2(seed: int = 0, size: int = 96, classes: int = 10) -> Any:
    """keras.applications.MobileNetV2 (alpha 0.35, softmax head), seeded, BN calibrated."""
    tf = _fresh(seed)
    model = tf.keras.applications.MobileNetV2(
        weights=None, input_shape=(size, size, 3), alpha=0.35, classes=classes
    )
    calibrate_batch_norm(model, (1, size, size, 3), seed)
    return model


def bert_encoder(
    seed: int = 0, seq_len: int = 16, vocab: int = 200, dim: int = 32, heads: int = 4, layers: int = 2, classes: int = 3
) -> Any:
    """A small BERT-like encoder: token, position and segment embeddings, post-LN transformer
    blocks (MultiHeadAttention, exact GELU feed-forward), a tanh pooler on the first token.
    Inputs input_ids and token_type_ids (int32, [batch, seq_len]); outputs the class logits and
    the sequence output."""
    _fresh(seed)
    import keras
    from keras import layers as L, ops

    ids = keras.Input((seq_len,), dtype="int32", name="input_ids")
    segments = keras.Input((seq_len,), dtype="int32", name="token_type_ids")
    positions = ops.cumsum(ops.ones_like(ids), axis=1) - 1
    x = L.Embedding(vocab, dim)(ids) + L.Embedding(seq_len, dim)(positions) + L.Embedding(2, dim)(segments)
    x = L.LayerNormalization(epsilon=1e-12)(x)
    for _ in range(layers):
        attention = L.MultiHeadAttention(heads, dim // heads)(x, x)
        x = L.LayerNormalization(epsilon=1e-12)(x + attention)
        hidden = L.Dense(dim * 4, activation="gelu")(x)
        x = L.LayerNormalization(epsilon=1e-12)(x + L.Dense(dim)(hidden))
    sequence = L.Identity(name="sequence_output")(x)
    pooled = L.Dense(dim, activation="tanh", name="pooler")(x[:, 0, :])
    logits = L.Dense(classes, name="logits")(pooled)
    return keras.Model([ids, segments], [logits, sequence], name="bert_like")


def sequential_cnn(seed: int = 0, size: int = 32, classes: int = 10) -> Any:
    """A Keras Sequential CNN (conv, BN, pooling, dropout, dense), BN calibrated."""
    _fresh(seed)
    import keras
    from keras import layers as L

    model = keras.Sequential([
        keras.Input((size, size, 3), name="input_1"),
        L.Conv2D(16, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
        L.MaxPooling2D(),
        L.Conv2D(32, 3, padding="same", activation="relu"), L.BatchNormalization(),
        L.AveragePooling2D(2),
        L.Flatten(), L.Dropout(0.3),
        L.Dense(64, activation="relu"), L.Dense(classes, activation="softmax"),
    ], name="sequential_cnn")
    calibrate_batch_norm(model, (1, size, size, 3), seed)
    return model


def mobile_cnn(seed: int = 0, size: int = 32, classes: int = 10) -> Any:
    """A small mobile-style CNN: strided conv + BN + ReLU6, one inverted residual block
    (1x1 expand, 3x3 depthwise, 1x1 project, add), global pooling, dense softmax head.
    Functional, input "image" [?, size, size, 3]; BN calibrated. Quick to compile."""
    _fresh(seed)
    import keras
    from keras import layers as L

    image = keras.Input((size, size, 3), name="image")
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(image)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(48, 1, use_bias=False)(x)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(y)))
    y = L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y))
    x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(x)
    out = L.Dense(classes, activation="softmax", name="probabilities")(x)
    model = keras.Model(image, out, name="mobile_cnn")
    calibrate_batch_norm(model, (1, size, size, 3), seed)
    return model


def two_input_functional(seed: int = 0, size: int = 24) -> Any:
    """A functional model with an image input (NHWC) and a feature vector, two outputs."""
    _fresh(seed)
    import keras
    from keras import layers as L

    image = keras.Input((size, size, 3), name="image")
    features = keras.Input((6,), name="features")
    x = L.Conv2D(8, 3, strides=2, activation="relu")(image)
    x = L.DepthwiseConv2D(3, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    merged = L.Concatenate()([x, L.Dense(8, activation="sigmoid")(features)])
    score = L.Dense(1, name="score")(merged)
    classes = L.Dense(4, activation="softmax", name="classes")(merged)
    return keras.Model([image, features], [score, classes], name="two_input")


def custom_signature_module(seed: int = 0) -> Any:
    """A tf.Module whose only signature is 'serving_custom': images [?,32,32,3] and a bias
    [?,5] in; 'logits' and 'probabilities' out (a conv net written in plain TensorFlow)."""
    tf = _tf()
    tf.random.set_seed(seed)

    class Classifier(tf.Module):
        def __init__(self):
            super().__init__()
            init = tf.random.stateless_normal
            self.w1 = tf.Variable(init((3, 3, 3, 16), seed=(seed, 1)) * 0.3)
            self.b1 = tf.Variable(init((16,), seed=(seed, 2)) * 0.1)
            self.w2 = tf.Variable(init((3, 3, 16, 32), seed=(seed, 3)) * 0.1)
            self.dense = tf.Variable(init((32, 5), seed=(seed, 4)) * 0.2)

        @tf.function(input_signature=[
            tf.TensorSpec((None, 32, 32, 3), tf.float32, name="images"),
            tf.TensorSpec((None, 5), tf.float32, name="bias"),
        ])
        def serve(self, images, bias):
            x = tf.nn.relu(tf.nn.conv2d(images, self.w1, 2, "SAME") + self.b1)
            x = tf.nn.max_pool2d(x, 2, 2, "VALID")
            x = tf.nn.leaky_relu(tf.nn.conv2d(x, self.w2, 1, "SAME"), 0.1)
            logits = tf.reduce_mean(x, axis=[1, 2]) @ self.dense + bias
            return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    return Classifier()


def frozen_cnn(seed: int = 0, size: int = 32) -> tuple[Any, Callable]:
    """A frozen GraphDef of a small Keras CNN: input tensor 'input:0' [1,size,size,3] (NHWC),
    output 'output_tensor:0'. Returns (graph_def, the function it was frozen from)."""
    tf = _tf()
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    model = sequential_cnn(seed, size)

    @tf.function(input_signature=[tf.TensorSpec((1, size, size, 3), tf.float32, name="input")])
    def serve(x):
        return tf.identity(model(x, training=False), name="output_tensor")

    frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
    return frozen.graph.as_graph_def(), serve


def to_tflite(model: Any, quantize: str | None = None, seed: int = 0, samples: int = 16) -> bytes:
    """TFLite flatbuffer of a Keras model. ``quantize``: None (float32), "int8" (full integer,
    float input and output), "int8-io" or "uint8-io" (full integer, integer input and output).
    The representative dataset is seeded standard-normal data."""
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantize:
        shape = (1, *model.inputs[0].shape[1:])
        rng = np.random.default_rng(seed + 2000)

        def representative():
            for _ in range(samples):
                yield [rng.standard_normal(shape).astype("float32")]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if quantize in ("int8-io", "uint8-io"):
            io_type = tf.int8 if quantize == "int8-io" else tf.uint8
            converter.inference_input_type = io_type
            converter.inference_output_type = io_type
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the exported signature
        return converter.convert()


def tflite_run(buffer: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The TFLite interpreter on ``feeds`` (by input tensor name)."""
    import warnings

    tf = _tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(
            model_content=buffer,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], feeds[detail["name"]])
    interpreter.invoke()
    return [np.array(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()]


def tflite_io(buffer: bytes) -> tuple[list[dict], list[dict]]:
    """Input and output details (name, shape, dtype, quantization) of a TFLite model."""
    import warnings

    tf = _tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=buffer)
    return interpreter.get_input_details(), interpreter.get_output_details()


# --- the examples: files, request fields, inputs and the framework's outputs ----------------


@dataclass(frozen=True)
class TFBuild:
    name: str
    framework: str
    archive: str
    data_input_config: str | None
    compiler_options: str | None
    inputs_npz: str
    outputs_npz: str
    output_quantization: list = field(default_factory=list)  # (scale, zero point) per output
    key: str = ""
    cached: bool = False

    def load_inputs(self) -> dict[str, np.ndarray]:
        with np.load(self.inputs_npz) as z:
            return {k: z[k] for k in z.files}

    def load_outputs(self) -> list[np.ndarray]:
        with np.load(self.outputs_npz) as z:
            return [z[k] for k in sorted(z.files, key=lambda k: int(k.removeprefix("output")))]


def _nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def _outputs(result: Any) -> list[np.ndarray]:
    if isinstance(result, dict):
        return [np.asarray(result[k]) for k in sorted(result)]
    if isinstance(result, (list, tuple)):
        return [np.asarray(r) for r in result]
    return [np.asarray(result)]


def _keras_mobilenet(work: Path, seed: int) -> dict:
    model = mobilenet_v2(seed)
    x = np.random.default_rng(seed).standard_normal((1, 3, 96, 96)).astype("float32")
    path = work / "mobilenet_v2.h5"
    model.save(path)
    return dict(framework="KERAS", files=[path], config=json.dumps({"input_layer": [1, 3, 96, 96]}),
                inputs={"input_layer": x}, outputs=_outputs(model(_nhwc(x), training=False)))


def _keras_bert(work: Path, seed: int) -> dict:
    model = bert_encoder(seed)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 200, (2, 16)).astype("int32")
    segments = (np.arange(16)[None, :] >= rng.integers(4, 12, (2, 1))).astype("int32")
    path = work / "bert_like.keras"
    model.save(path)
    return dict(framework="KERAS", files=[path],
                config=json.dumps({"input_ids": [2, 16], "token_type_ids": [2, 16]}),
                inputs={"input_ids": ids, "token_type_ids": segments},
                outputs=_outputs(model([ids, segments], training=False)))


def _keras_sequential(work: Path, seed: int) -> dict:
    model = sequential_cnn(seed)
    x = np.random.default_rng(seed).standard_normal((2, 3, 32, 32)).astype("float32")
    path = work / "sequential_cnn.h5"
    model.save(path)
    return dict(framework="KERAS", files=[path], config=json.dumps({"input_1": [2, 3, 32, 32]}),
                inputs={"input_1": x}, outputs=_outputs(model(_nhwc(x), training=False)))


def _keras_two_input(work: Path, seed: int) -> dict:
    model = two_input_functional(seed)
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((1, 3, 24, 24)).astype("float32")
    features = rng.standard_normal((1, 6)).astype("float32")
    path = work / "two_input.keras"
    model.save(path)
    return dict(framework="KERAS", files=[path],
                config=json.dumps({"image": [1, 3, 24, 24], "features": [1, 6]}),
                inputs={"image": image, "features": features},
                outputs=_outputs(model([_nhwc(image), features], training=False)))


def _saved_model(work: Path, seed: int) -> dict:
    tf = _tf()
    module = custom_signature_module(seed)
    directory = work / "saved_model" / "1"  # TF Serving's layout: a version folder
    tf.saved_model.save(module, str(directory), signatures={"serving_custom": module.serve})
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((2, 32, 32, 3)).astype("float32")
    bias = rng.standard_normal((2, 5)).astype("float32")
    return dict(framework="TENSORFLOW", tree=work / "saved_model",
                config=json.dumps({"images": [2, 32, 32, 3], "bias": [2, 5]}),
                options=json.dumps({"signature_def_key": "serving_custom"}),
                inputs={"bias": bias, "images": images}, outputs=_outputs(module.serve(images=images, bias=bias)))


def _frozen_graph(work: Path, seed: int) -> dict:
    graph_def, serve = frozen_cnn(seed)
    path = work / "frozen_cnn.pb"
    path.write_bytes(graph_def.SerializeToString())
    x = np.random.default_rng(seed).standard_normal((1, 32, 32, 3)).astype("float32")
    return dict(framework="TENSORFLOW", files=[path], config=json.dumps({"input:0": [1, 32, 32, 3]}),
                options=json.dumps({"output_names": ["output_tensor:0"]}),
                inputs={"input:0": x}, outputs=_outputs(serve(x)))


def _tflite(builder: Callable[[int], Any], quantize: str | None, filename: str) -> Callable[[Path, int], dict]:
    def build(work: Path, seed: int) -> dict:
        buffer = to_tflite(builder(seed), quantize, seed)
        path = work / filename
        path.write_bytes(buffer)
        (detail,), outs = tflite_io(buffer)
        x = np.random.default_rng(seed).standard_normal(tuple(detail["shape"])).astype("float32")
        if detail["dtype"] != np.float32:  # integer input: the image quantized as TFLite would
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            x = np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])
        feeds = {detail["name"]: x}
        return dict(framework="TFLITE", files=[path], config=None, inputs=feeds, outputs=tflite_run(buffer, feeds),
                    quantization=[list(map(float, o["quantization"])) for o in outs])

    return build


EXAMPLES: dict[str, Callable[[Path, int], dict]] = {
    "keras_mobilenet_v2": _keras_mobilenet,
    "keras_bert_like": _keras_bert,
    "keras_sequential_cnn": _keras_sequential,
    "keras_two_input": _keras_two_input,
    "tf_saved_model": _saved_model,
    "tf_frozen_graph": _frozen_graph,
    "tflite_mobile_cnn": _tflite(mobile_cnn, None, "mobile_cnn.tflite"),
    "tflite_mobile_cnn_int8": _tflite(mobile_cnn, "int8-io", "mobile_cnn_int8.tflite"),
    "tflite_mobile_cnn_uint8": _tflite(mobile_cnn, "uint8-io", "mobile_cnn_uint8.tflite"),
    "tflite_mobile_cnn_int8_float_io": _tflite(mobile_cnn, "int8", "mobile_cnn_int8_float_io.tflite"),
    "tflite_mobilenet_v2": _tflite(mobilenet_v2, None, "mobilenet_v2.tflite"),
    "tflite_mobilenet_v2_int8": _tflite(mobilenet_v2, "int8-io", "mobilenet_v2_int8.tflite"),
}


def _key(name: str, seed: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([name, seed, version("tensorflow-cpu"), version("keras")]).encode())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def build_tf_example(name: str, out_dir: str | Path, seed: int = 0, force: bool = False) -> TFBuild:
    """Build (or reuse) example ``name`` under ``out_dir``."""
    if name not in EXAMPLES:
        raise KeyError(f"unknown example {name!r}; known: {', '.join(EXAMPLES)}")
    files = BuildFiles.under(out_dir, name)
    key = _key(name, seed)

    def make() -> TFBuild:
        from models.export import make_archive  # imports torch

        with tempfile.TemporaryDirectory(prefix="neo-local-tf-") as tmp:
            made = EXAMPLES[name](Path(tmp), seed)
            make_archive(made["files"] if "files" in made else [made["tree"]], files.archive)
        files.save_arrays(made["inputs"], made["outputs"])
        return TFBuild(
            name=name, framework=made["framework"], archive=str(files.archive), data_input_config=made["config"],
            compiler_options=made.get("options"), inputs_npz=str(files.inputs_npz), outputs_npz=str(files.outputs_npz),
            output_quantization=made.get("quantization", []), key=key,
        )

    return files.build_once(key, TFBuild, force, make)


def main(argv: list[str] | None = None) -> int:
    return example_main("python -m models.tf_models", __doc__.splitlines()[0], EXAMPLES, build_tf_example, argv)


if __name__ == "__main__":
    sys.exit(main())
