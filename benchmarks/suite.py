"""What the harness benchmarks: one entry per model, with how to build its archive and which
engines (the framework's own runtime, or the nearest one that runs here) it is compared with.

Every framework family has an entry built in code with seeded weights by the builders in
``models/``: the ONNX CNNs of ``models.EXAMPLES`` (against onnxruntime and torch), a TorchScript
archive (``torch.jit.load`` of that file), a TensorFlow SavedModel (its loaded signature), a
Keras model (``model(x, training=False)``, eager and in a ``tf.function``), TFLite float and
int8 (the TFLite interpreter), XGBoost (``Booster.inplace_predict``) and scikit-learn
(``predict_proba``).
MXNet and DarkNet cannot be installed here: their entries compare with onnxruntime running
neo-local's own ONNX translation of the model (the one its verification runs), labelled so.

Builds and engines run in the harness's child processes, so everything here is a module-level
function of plain arguments; entries are looked up by name in the child.
"""

from __future__ import annotations

import json
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks import measure
from models.tf_models import _outputs as _as_list  # results as arrays; a dict's by key, as TensorFlow orders them
from neo_local.benchmark import Plan, open_source, time_runs

Built = dict[str, Any]  # what a build step returns (crosses a process boundary: plain data)


@dataclass(frozen=True)
class Session:
    """An engine, loaded: ``run()`` is the timed call; ``outputs`` turns its result into arrays
    (outside the timing)."""

    run: Callable[[], Any]
    outputs: Callable[[Any], list[np.ndarray]]
    threads: int | None


@dataclass(frozen=True)
class Engine:
    key: str  # results key: latency[key], ratio["tvm_over_" + key]
    label: str  # what ran, in words, for the results file and the table
    open: Callable[[Built, int], Session]


@dataclass(frozen=True)
class Entry:
    name: str
    framework: str  # InputConfig.Framework
    build: Callable[[str, str, int], Built]  # (name, out_dir, seed)
    compare: tuple[Engine, ...]


# --------------------------------------------------------------------------- helpers


def _feeds(built: Built) -> dict[str, np.ndarray]:
    with np.load(built["inputs_npz"]) as z:
        return {k: z[k] for k in z.files}


def _extract(archive: str, into: Path) -> Path:
    """Unpack the very archive neo-local compiles, for the framework to read the same files."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(into, filter="data")
    return into


def _built(name: str, framework: str, seed: int, archive: str, inputs_npz: str, model_path: Path,
           data_input_config: str | None, compiler_options: str | None = None,
           outputs_npz: str | None = None) -> Built:
    """``outputs_npz``: the outputs the builder recorded from the framework (or the torch module
    a file was written from), where it records them."""
    with np.load(inputs_npz) as z:
        inputs = [{"name": k, "shape": list(z[k].shape), "dtype": str(z[k].dtype)} for k in z.files]
    return {
        "name": name, "framework": framework, "seed": seed, "archive": str(archive),
        "archive_bytes": Path(archive).stat().st_size, "inputs_npz": str(inputs_npz), "inputs": inputs,
        "model_path": str(model_path), "data_input_config": data_input_config,
        "compiler_options": json.loads(compiler_options) if compiler_options else {},
        "outputs_npz": outputs_npz,
    }


# --------------------------------------------------------------------------- builds


def build_torch_example(name: str, out_dir: str, seed: int, fmt: str) -> Built:
    """models.EXAMPLES as an ONNX or TorchScript archive; ``model_path``: the file inside it."""
    from models.build import build_example

    r = build_example(name, fmt, out_dir, seed=seed)
    model_path = _extract(r.archive, Path(out_dir) / "extracted") / r.model_file
    return _built(name, r.framework, seed, r.archive, r.inputs_npz, model_path, r.data_input_config,
                  outputs_npz=r.outputs_npz)


def build_onnx(name: str, out_dir: str, seed: int) -> Built:
    return build_torch_example(name, out_dir, seed, "onnx")


def build_torchscript(name: str, out_dir: str, seed: int) -> Built:
    return build_torch_example(name.removesuffix("_pt"), out_dir, seed, "torchscript")


def build_tf(name: str, out_dir: str, seed: int) -> Built:
    """models.tf_models: ``model_path`` is the .h5/.keras/.tflite file, or the SavedModel folder."""
    from models.tf_models import build_tf_example

    b = build_tf_example(name, out_dir, seed)
    root = _extract(b.archive, Path(out_dir) / "extracted" / name)
    files = [p for p in root.rglob("*") if p.is_file()]
    saved = [p.parent for p in files if p.name == "saved_model.pb"]
    model_path = saved[0] if saved else files[0]
    return _built(name, b.framework, seed, b.archive, b.inputs_npz, model_path, b.data_input_config,
                  b.compiler_options, b.outputs_npz)


def build_translated(name: str, out_dir: str, seed: int) -> Built:
    """An MXNet or DarkNet archive (models.mxnet_writer / darknet_writer); ``model_path``: the ONNX
    translation neo-local's frontend makes of it, which onnxruntime runs for comparison."""
    from models.darknet_writer import EXAMPLES as DARKNET, build_darknet_example
    from models.mxnet_writer import build_mxnet_example

    r = (build_darknet_example if name in DARKNET else build_mxnet_example)(name, out_dir, seed)
    model_dir = _extract(r.archive, Path(out_dir) / "extracted" / name)
    model_path = Path(out_dir) / f"{name}.translated.onnx"
    model_path.write_bytes(translated_onnx(r.framework, model_dir, r.data_input_config))
    return _built(name, r.framework, seed, r.archive, r.inputs_npz, model_path, r.data_input_config,
                  outputs_npz=r.outputs_npz)


def translated_onnx(framework: str, model_dir: Path, data_input_config: str | None) -> bytes:
    """The ONNX model neo-local's ``framework`` frontend translates ``model_dir`` into: captured
    where the frontend hands it to onnxruntime for its verification reference, so the benchmark
    compares with exactly what the job's verification runs, not a second translation."""
    from unittest import mock

    from neo_local.frontends import get_frontend
    from neo_local.frontends.base import ImportOptions

    frontend = get_frontend(framework)
    module = sys.modules[type(frontend).__module__]
    real = module.translation_reference
    captured: list[bytes] = []

    def capture(model: Any, name: str) -> Any:
        captured.append(model.SerializeToString())
        return real(model, name)

    with mock.patch.object(module, "translation_reference", capture):
        frontend.load(model_dir, ImportOptions(data_input_config=data_input_config))
    if len(captured) != 1:
        raise RuntimeError(f"the {framework} frontend made {len(captured)} ONNX translations, expected one")
    return captured[0]


def build_quantized(name: str, out_dir: str, seed: int) -> Built:
    """models.quantized (onnxruntime's QDQ int8 model of a float example); ``float_model_path``: the
    float .onnx it was quantized from, for onnxruntime's float speed beside its int8 one."""
    from models.quantized import build_quantized_example

    b = build_quantized_example(name, out_dir, seed)
    model_path = _extract(b.archive, Path(out_dir) / "extracted" / name) / b.model_file
    float_path = _extract(b.float_archive, Path(out_dir) / "extracted" / f"{name}.float") / b.float_model_file
    built = _built(name, b.framework, seed, b.archive, b.inputs_npz, model_path, b.data_input_config,
                   outputs_npz=b.outputs_npz)
    return {**built, "float_model_path": str(float_path)}


def build_tree(name: str, out_dir: str, seed: int) -> Built:
    """``xgboost_<kind>`` (JSON) or ``sklearn_<kind>`` (joblib) from models.tree_models, one row."""
    from models.tree_models import N_FEATURES, synthetic_data, tree_archive

    library, kind = name.split("_", 1)
    fmt = "json" if library == "xgboost" else "joblib"
    made = tree_archive(library, kind, fmt, Path(out_dir) / name, seed)
    x, _ = synthetic_data("regression", seed + 11, rows=1)  # rows the model was not fitted on
    inputs_npz = Path(out_dir) / f"{name}.inputs.npz"
    np.savez(inputs_npz, data=x)
    return _built(name, library.upper(), seed, str(made.archive), str(inputs_npz),
                  Path(out_dir) / name / "files" / made.model_file, json.dumps({"data": [1, N_FEATURES]}))


# --------------------------------------------------------------------------- engines


def open_neo_local(built: Built, threads: int, artifact: str = "artifact") -> Session:
    """The compiled artifact (``built[artifact]``) through neo-local's runtime."""
    from neo_local.runtime import DLRModel

    feeds = _feeds(built)
    model = DLRModel(built[artifact])
    return Session(lambda: model.run(feeds), list, threads)


def open_neo_local_default(built: Built, threads: int) -> Session:
    """The default compile of a variant's model (``built["default_artifact"]``), for the variant's
    ratio to it."""
    return open_neo_local(built, threads, "default_artifact")


def open_onnxruntime(built: Built, threads: int) -> Session:
    """onnxruntime, CPU provider, all graph optimisations, on ``model_path``."""
    return Session(open_source("onnxruntime", Path(built["model_path"]), _feeds(built), threads), list, threads)


def open_onnxruntime_float(built: Built, threads: int) -> Session:
    """onnxruntime on the float model a quantized entry was made from (``float_model_path``)."""
    return Session(open_source("onnxruntime", Path(built["float_model_path"]), _feeds(built), threads), list, threads)


def open_torch(built: Built, threads: int) -> Session:
    """The same torch module, eager, inference mode. Its load time and peak RSS include building
    the module (weights are created and calibrated in this process)."""
    import torch

    from models import get

    torch.set_num_threads(threads)
    example = get(built["name"])
    feeds = _feeds(built)
    module = example.build(built["seed"])
    args = [torch.from_numpy(feeds[n]) for n in example.input_names]

    def call() -> Any:
        with torch.inference_mode():
            return module(*args)

    return Session(call, lambda out: [o.numpy() for o in (out if isinstance(out, (tuple, list)) else (out,))],
                   torch.get_num_threads())


def open_torchscript(built: Built, threads: int) -> Session:
    """The TorchScript file in the archive (``torch.jit.load``), inference mode."""
    return Session(open_source("torch", Path(built["model_path"]), _feeds(built), threads), list, threads)


def _tensorflow(threads: int) -> Any:
    from models.tf_models import _tf

    tf = _tf()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already ran in this process (a test that built the model here)
        pass
    return tf


def open_tf_signature(built: Built, threads: int) -> Session:
    """``tf.saved_model.load`` and the signature neo-local compiled (a graph function)."""
    tf = _tensorflow(threads)
    loaded = tf.saved_model.load(built["model_path"])
    fn = loaded.signatures[built["compiler_options"].get("signature_def_key", "serving_default")]
    feeds = {k: tf.constant(v) for k, v in _feeds(built).items()}
    return Session(lambda: fn(**feeds), lambda out, _owner=loaded: _as_list(out), threads)


def _keras(built: Built, threads: int, graph: bool) -> Session:
    """``keras.models.load_model`` and ``model(x, training=False)`` on channels-last copies of
    the inputs (neo-local takes NCHW, as Neo's DataInputConfig says; Keras its own NHWC);
    ``graph``: that call traced once by ``tf.function``, as a serving path would run it."""
    tf = _tensorflow(threads)
    model = tf.keras.models.load_model(built["model_path"], compile=False)
    feeds = _feeds(built)
    xs = [tf.constant(np.transpose(x, (0, 2, 3, 1)) if x.ndim == 4 else x) for x in feeds.values()]
    args = xs if len(xs) > 1 else xs[0]
    call = tf.function(lambda x: model(x, training=False)) if graph else (lambda x: model(x, training=False))
    return Session(lambda: call(args), _as_list, threads)


def open_keras(built: Built, threads: int) -> Session:
    return _keras(built, threads, graph=False)


def open_keras_graph(built: Built, threads: int) -> Session:
    return _keras(built, threads, graph=True)


def open_tflite(built: Built, threads: int) -> Session:
    """The TFLite interpreter with its default delegates (XNNPACK for float), ``num_threads``;
    a run is set inputs, invoke, read outputs."""
    return Session(open_source("tflite", Path(built["model_path"]), _feeds(built), threads), list, threads)


def open_xgboost(built: Built, threads: int) -> Session:
    """``Booster.inplace_predict`` on the numpy rows (no DMatrix built per call)."""
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(built["model_path"])
    booster.set_param({"nthread": threads})
    x = _feeds(built)["data"]
    return Session(lambda: booster.inplace_predict(x), _as_list, threads)


def open_sklearn(built: Built, threads: int) -> Session:
    """``joblib.load`` and ``predict_proba`` (classifiers) or ``predict``; scikit-learn's own
    thread settings (a forest's n_jobs=None predicts on one thread)."""
    import joblib

    estimator = joblib.load(built["model_path"])
    predict = getattr(estimator, "predict_proba", None) or estimator.predict
    x = _feeds(built)["data"]
    return Session(lambda: predict(x), _as_list, getattr(estimator, "n_jobs", None) or 1)


NEO_LOCAL = Engine("neo_local_tvm", "neo-local (compiled artifact, neo_local.runtime.DLRModel)", open_neo_local)
NEO_LOCAL_DEFAULT = Engine("neo_local_default", "neo-local, the default compile (no tuning records, float32)",
                           open_neo_local_default)
ONNXRUNTIME = Engine("onnxruntime", "onnxruntime (the same .onnx file)", open_onnxruntime)
ONNXRUNTIME_FLOAT = Engine("onnxruntime_float", "onnxruntime (the float .onnx the int8 model was quantized from)",
                           open_onnxruntime_float)
TORCH = Engine("torch", "torch (eager, inference_mode)", open_torch)
TORCHSCRIPT = Engine("torchscript", "torch (the archive's TorchScript file, torch.jit.load)", open_torchscript)
TRANSLATION = Engine("onnxruntime_translation",
                     "onnxruntime (neo-local's ONNX translation; the framework cannot be installed here)",
                     open_onnxruntime)
TENSORFLOW = Engine("tensorflow", "TensorFlow (tf.saved_model.load, the signature)", open_tf_signature)
KERAS = Engine("keras", "Keras eager (load_model, model(x, training=False), NHWC)", open_keras)
KERAS_GRAPH = Engine("keras_tf_function", "Keras in tf.function (model(x, training=False), NHWC)",
                     open_keras_graph)
TFLITE = Engine("tflite", "TFLite interpreter (default delegates)", open_tflite)
XGBOOST = Engine("xgboost", "xgboost (Booster.inplace_predict)", open_xgboost)
SKLEARN = Engine("sklearn", "scikit-learn (predict_proba / predict)", open_sklearn)


def _entries() -> dict[str, Entry]:
    from models import EXAMPLES

    out = {name: Entry(name, "ONNX", build_onnx, (ONNXRUNTIME, TORCH)) for name in EXAMPLES}
    others = [
        Entry("resnet_like_pt", "PYTORCH", build_torchscript, (TORCHSCRIPT,)),
        Entry("tf_saved_model", "TENSORFLOW", build_tf, (TENSORFLOW,)),
        Entry("keras_sequential_cnn", "KERAS", build_tf, (KERAS, KERAS_GRAPH)),
        Entry("tflite_mobile_cnn", "TFLITE", build_tf, (TFLITE,)),
        Entry("tflite_mobile_cnn_int8", "TFLITE", build_tf, (TFLITE,)),
        Entry("tflite_mobilenet_v2", "TFLITE", build_tf, (TFLITE,)),
        Entry("tflite_mobilenet_v2_int8", "TFLITE", build_tf, (TFLITE,)),
        Entry("resnet_like_qdq", "ONNX", build_quantized, (ONNXRUNTIME, ONNXRUNTIME_FLOAT)),
        Entry("resnet50_qdq", "ONNX", build_quantized, (ONNXRUNTIME, ONNXRUNTIME_FLOAT)),
        Entry("mobilenet_v3_qdq", "ONNX", build_quantized, (ONNXRUNTIME, ONNXRUNTIME_FLOAT)),
        Entry("shufflenet_qdq", "ONNX", build_quantized, (ONNXRUNTIME, ONNXRUNTIME_FLOAT)),
        Entry("resnet_like_mx", "MXNET", build_translated, (TRANSLATION,)),
        Entry("yolov3_tiny_160", "DARKNET", build_translated, (TRANSLATION,)),
        Entry("darknet_classifier", "DARKNET", build_translated, (TRANSLATION,)),
        Entry("xgboost_multiclass", "XGBOOST", build_tree, (XGBOOST,)),
        Entry("sklearn_random_forest_classifier", "SKLEARN", build_tree, (SKLEARN,)),
    ]
    return {**out, **{e.name: e for e in others}}


ENTRIES = _entries()

#: ``--frameworks``: the entries that stand for each family
FAMILIES: dict[str, tuple[str, ...]] = {
    "ONNX": ("resnet_like",),
    "PYTORCH": ("resnet_like_pt",),
    "TENSORFLOW": ("tf_saved_model",),
    "KERAS": ("keras_sequential_cnn",),
    "TFLITE": ("tflite_mobile_cnn", "tflite_mobile_cnn_int8"),
    "MXNET": ("resnet_like_mx",),
    "DARKNET": ("yolov3_tiny_160",),
    "XGBOOST": ("xgboost_multiclass",),
    "SKLEARN": ("sklearn_random_forest_classifier",),
}


# --------------------------------------------------------------------------- steps (in children)


def build_step(name: str, out_dir: str, seed: int) -> Built:
    return ENTRIES[name].build(name, out_dir, seed)


def engine_step(name: str, key: str, built: Built, plan: Plan, threads: int) -> dict[str, Any]:
    """Load engine ``key`` of entry ``name`` and time it (``neo_local.benchmark.time_runs``)."""
    return _opened(name, key, built, threads)(plan)


def engine_server(conn: Any, name: str, key: str, built: Built, threads: int) -> None:
    """``engine_step`` in a ``measure.LiveChild``: the engine loaded once, each request (a Plan)
    answered with a timing of it."""
    measure.serve_requests(conn, _opened(name, key, built, threads))


def _opened(name: str, key: str, built: Built, threads: int) -> Callable[[Plan], dict[str, Any]]:
    """Engine ``key`` of entry ``name``, loaded; the returned call times it under a plan."""
    engine = next(e for e in (NEO_LOCAL, NEO_LOCAL_DEFAULT, *ENTRIES[name].compare) if e.key == key)
    measure.set_thread_env(threads)
    t0 = time.perf_counter()
    session = engine.open(built, threads)
    load_s = time.perf_counter() - t0

    def timed(plan: Plan) -> dict[str, Any]:
        timing, first = time_runs(session.run, plan)
        return {
            **timing.as_dict(),
            "engine": engine.label,
            "load_s": load_s,
            "threads": session.threads,
            "outputs": session.outputs(first),
            "peak_rss_mb": measure.peak_rss_mb(),
            "rss_mb": measure.current_rss_mb(),
        }

    return timed
