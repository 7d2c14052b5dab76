"""TENSORFLOW: a SavedModel directory anywhere in the archive, or one frozen GraphDef.

SavedModel: the signature ``serving_default``, or ``signature_def_key`` from CompilerOptions;
DataInputConfig names the signature's inputs. Frozen graph (exactly one ``.pb``/``.pbtxt``):
DataInputConfig names input tensors (``input:0``; a bare op name means its first output) and
CompilerOptions ``output_names`` lists the output tensors. Shapes are NHWC, as given. Either
way, DataInputConfig may be left out when the inputs' shapes are fully known; the derived
shapes are reported as DerivedDataInputConfig.

Route: TF -> ONNX with tf2onnx (``from_function`` on the signature, ``from_graph_def`` on the
frozen graph) -> ``onnx_import.import_onnx`` -> Relax. The reference is TensorFlow running the
same signature function or graph.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from neo_local.api.errors import client_error, exception_line
from neo_local.frontends import register
from neo_local.frontends.archive_rules import archive_files
from neo_local.frontends.base import Frontend, ImportedModel, ImportOptions, Reference, TensorSpec
from neo_local.frontends.data_input import format_data_input_config, parse_data_input_config
from neo_local.frontends.onnx import resolve_inputs
from neo_local.frontends.tf_convert import (
    as_numpy_list,
    function_to_onnx,
    graph_def_to_onnx,
    import_tensorflow,
    onnx_to_relax,
    tf_dtype_name,
)

DEFAULT_SIGNATURE = "serving_default"
_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_GRAPH_SUFFIXES = (".pb", ".pbtxt")
_VARIABLE_OPS = ("VariableV2", "VarHandleOp", "Variable")


@register
class TensorFlowFrontend(Frontend):
    framework = "TENSORFLOW"
    suffixes = ("saved_model.pb", *_GRAPH_SUFFIXES)  # saved_model.pb marks a SavedModel directory
    requires = ("tensorflow-cpu", "tf2onnx", "onnx")
    framework_versions = ("1.15", "2.9")  # Neo's cloud table: TensorFlow 1.15.3 or 2.9

    def load(self, model_dir: Path, options: ImportOptions) -> ImportedModel:
        saved_model, graph = find_tensorflow_model(model_dir)
        if saved_model is not None:
            return _load_saved_model(model_dir, saved_model, options)
        return _load_frozen_graph(model_dir, graph, options)


def find_tensorflow_model(model_dir: Path) -> tuple[Path | None, Path | None]:
    """(SavedModel directory, None) or (None, frozen graph file); ClientErrors name what was found."""
    files = archive_files(model_dir)
    saved = sorted({p.parent for p in files if p.name in _SAVED_MODEL_FILES})
    rel = lambda p: str(p.relative_to(model_dir)) or "."  # noqa: E731
    graphs = [
        p for p in files
        if p.name.lower().endswith(_GRAPH_SUFFIXES) and not any(d == p.parent or d in p.parents for d in saved)
    ]
    if len(saved) > 1:
        raise client_error(
            "InputConfiguration",
            f"Exactly one SavedModel directory is allowed for TensorFlow models, found {len(saved)}: "
            f"{', '.join(rel(d) for d in saved)}",
        )
    if saved:
        if graphs:
            raise client_error(
                "InputConfiguration",
                f"The archive holds a SavedModel ({rel(saved[0])}) and frozen graph file(s) "
                f"({', '.join(rel(p) for p in graphs)}); keep one model",
            )
        return saved[0], None
    if len(graphs) == 1:
        return None, graphs[0]
    if not graphs:
        listing = ", ".join(rel(p) for p in files[:20]) or "nothing"
        raise client_error(
            "InputConfiguration",
            "No SavedModel (saved_model.pb) or frozen graph (.pb or .pbtxt file) found in the archive for "
            f"TensorFlow models. The archive contains: {listing}",
        )
    raise client_error(
        "InputConfiguration",
        f"Exactly one .pb or .pbtxt file is allowed for TensorFlow models, found {len(graphs)}: "
        f"{', '.join(rel(p) for p in graphs)}",
    )


# --- SavedModel ----------------------------------------------------------------------------


def _load_saved_model(model_dir: Path, directory: Path, options: ImportOptions) -> ImportedModel:
    tf = import_tensorflow()
    source, loaded, key, fn = load_signature(model_dir, directory, options)
    _, kwargs = fn.structured_input_signature
    # by name, as TensorFlow orders a signature's inputs and outputs (its map order is not stable)
    model_inputs = [
        (name, _dims(spec.shape), tf_dtype_name(spec.dtype)) for name, spec in sorted(kwargs.items())
    ]
    inputs, derived = resolve_inputs(model_inputs, options.data_input_config)
    output_names = sorted(fn.structured_outputs)
    names = [s.name for s in inputs]

    signature = [tf.TensorSpec(s.shape, s.dtype, name=f"neo_input_{i}") for i, s in enumerate(inputs)]

    @tf.function(input_signature=signature, autograph=False)
    def positional(*args):
        out = fn(**dict(zip(names, args)))
        return [out[k] for k in output_names]

    label = f"{source} (signature '{key}')"
    mod, inputs, outputs = onnx_to_relax(function_to_onnx(positional, signature, label), inputs, output_names, label)

    def reference(feeds, _owner=loaded):  # the loaded object owns the variables ``fn`` reads
        out = fn(**{s.name: tf.constant(feeds[s.name], dtype=s.dtype) for s in inputs})
        return as_numpy_list([out[k] for k in output_names])

    return ImportedModel(
        ir=mod,
        inputs=inputs,
        outputs=outputs,
        reference=reference,
        derived={"DerivedDataInputConfig": derived} if derived else {},
        source_file=source,
    )


def load_signature(model_dir: Path, directory: Path, options: ImportOptions) -> tuple[str, Any, str, Any]:
    """(source name, the loaded SavedModel, signature key, signature function): the signature
    ``serving_default`` or CompilerOptions ``signature_def_key``; ClientErrors list the choices.
    Keep the loaded object alive while the function is used: it owns the variables."""
    tf = import_tensorflow()
    source = str(directory.relative_to(model_dir)) if directory != model_dir else "saved_model.pb"
    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as exc:  # TensorFlow raises several kinds for unreadable or incompatible models
        raise client_error(
            "InputConfiguration", f"The SavedModel {source} could not be loaded: {exception_line(exc, last=False)}"
        ) from exc
    key = options.compiler_options.get("signature_def_key") or DEFAULT_SIGNATURE
    signatures = dict(loaded.signatures)
    if key not in signatures:
        available = ", ".join(sorted(signatures)) or "none"
        hint = "; set signature_def_key in CompilerOptions to one of them" if signatures else \
            "; save the model with tf.saved_model.save(obj, path, signatures=...)"
        raise client_error(
            "InputConfiguration",
            f"The SavedModel {source} has no signature '{key}'. Its signatures are: {available}{hint}",
        )
    return source, loaded, key, signatures[key]


# --- frozen GraphDef -----------------------------------------------------------------------


def _load_frozen_graph(model_dir: Path, path: Path, options: ImportOptions) -> ImportedModel:
    tf = import_tensorflow()
    source = str(path.relative_to(model_dir))
    graph_def = _read_graph_def(tf, path, source)
    variables = sorted({n.op for n in graph_def.node if n.op in _VARIABLE_OPS})
    if variables:
        raise client_error(
            "InputConfiguration",
            f"{source} is not a frozen graph: it holds variables ({', '.join(variables)}). Freeze it "
            "(convert_variables_to_constants_v2) or upload a SavedModel directory instead",
        )
    outputs_given = _output_names(options.compiler_options.get("output_names"), source)
    nodes = {n.name: n for n in graph_def.node}
    for name in outputs_given:
        if name.split(":")[0] not in nodes:
            raise client_error(
                "InputConfiguration",
                f"output_names: '{name}' is not a tensor of {source}. Tensors nothing else consumes: "
                f"{', '.join(_graph_ends(graph_def)) or 'none'}",
            )
    placeholders = _reachable_placeholders(graph_def, outputs_given)
    model_inputs = [
        (f"{n.name}:0", _attr_dims(n), tf_dtype_name(tf.dtypes.as_dtype(n.attr["dtype"].type)))
        for n in placeholders
    ]
    config, aliases = _tensor_name_config(options.data_input_config, {name for name, _, _ in model_inputs})
    tensor_inputs, derived = resolve_inputs(model_inputs, config)
    # the compiled model keeps the names the user wrote ("input" stays "input", not "input:0")
    inputs = tuple(TensorSpec(aliases.get(s.name, s.name), s.shape, s.dtype) for s in tensor_inputs)

    static = _with_static_shapes(tf, graph_def, tensor_inputs)
    reference = _graph_reference(tf, static, tensor_inputs, inputs, outputs_given)  # TF's word on bad names first
    onnx_model = graph_def_to_onnx(static, [s.name for s in tensor_inputs], outputs_given, source)
    mod, ordered, outputs = onnx_to_relax(
        onnx_model, inputs, outputs_given, source, graph_names=[t.name for t in tensor_inputs]
    )
    return ImportedModel(
        ir=mod,
        inputs=ordered,
        outputs=outputs,
        reference=reference,
        derived={"DerivedDataInputConfig": derived} if derived else {},
        source_file=source,
    )


def _read_graph_def(tf: Any, path: Path, source: str) -> Any:
    graph_def = tf.compat.v1.GraphDef()
    try:
        if path.name.lower().endswith(".pbtxt"):
            from google.protobuf import text_format

            text_format.Parse(path.read_text(), graph_def)
        else:
            graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError / ParseError, or bad text
        raise client_error(
            "InputConfiguration", f"{source} is not a TensorFlow GraphDef: {exception_line(exc, last=False)}"
        ) from exc
    if not graph_def.node:
        raise client_error("InputConfiguration", f"{source} is not a TensorFlow GraphDef: it has no nodes")
    return graph_def


def _output_names(value: Any, source: str) -> list[str]:
    if value is None or value == [] or value == "":
        raise client_error(
            "InputConfiguration",
            f"{source} is a frozen graph: give its output tensors in CompilerOptions, "
            'e.g. {"output_names": ["output_tensor:0"]}',
        )
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise client_error(
            "InputConfiguration",
            f'CompilerOptions output_names must be a list of tensor names, e.g. ["output_tensor:0"], got {value!r}',
        )
    return [n if ":" in n else f"{n}:0" for n in names]


def _graph_ends(graph_def: Any) -> list[str]:
    consumed = {i.lstrip("^").split(":")[0] for n in graph_def.node for i in n.input}
    return [f"{n.name}:0" for n in graph_def.node if n.name not in consumed and n.op not in ("NoOp", "Const")][:10]


def _reachable_placeholders(graph_def: Any, outputs: Sequence[str]) -> list[Any]:
    """The Placeholder nodes the outputs depend on, in graph order."""
    nodes = {n.name: n for n in graph_def.node}
    seen: set[str] = set()
    stack = [o.split(":")[0] for o in outputs]
    while stack:
        name = stack.pop()
        if name in seen or name not in nodes:
            continue
        seen.add(name)
        stack.extend(i.lstrip("^").split(":")[0] for i in nodes[name].input)
    return [n for n in graph_def.node if n.op == "Placeholder" and n.name in seen]


def _attr_dims(node: Any) -> tuple[int | None, ...]:
    shape = node.attr["shape"].shape if "shape" in node.attr else None
    if shape is None or shape.unknown_rank:
        return ()
    return tuple(d.size if d.size >= 0 else None for d in shape.dim)


def _dims(shape: Any) -> tuple[int | None, ...]:
    return tuple(shape.as_list()) if shape.rank is not None else ()


def _tensor_name_config(text: str | None, tensors: set[str]) -> tuple[str | None, dict[str, str]]:
    """DataInputConfig with bare op names ("input") turned into tensor names ("input:0"), and
    the map back to the names as given."""
    given = parse_data_input_config(text)
    if given is None or all(name is None for name, _ in given):
        return text, {}
    aliases: dict[str, str] = {}
    normalized = []
    for name, shape in given:
        if name not in tensors and f"{name}:0" in tensors:
            aliases[f"{name}:0"] = name
            name = f"{name}:0"
        normalized.append((name, shape))
    return format_data_input_config(normalized), aliases


def _with_static_shapes(tf: Any, graph_def: Any, inputs: Sequence[TensorSpec]) -> Any:
    """A copy of the graph whose input placeholders have the resolved shapes (lets tf2onnx fold)."""
    static = tf.compat.v1.GraphDef()
    static.CopyFrom(graph_def)
    shapes = {s.name.split(":")[0]: s.shape for s in inputs}
    for node in static.node:
        if node.op == "Placeholder" and node.name in shapes:
            node.attr["shape"].shape.CopyFrom(tf.TensorShape(shapes[node.name]).as_proto())
    return static


def _graph_reference(
    tf: Any, graph_def: Any, tensor_inputs: Sequence[TensorSpec], inputs: Sequence[TensorSpec], outputs: Sequence[str]
) -> Reference:
    """TensorFlow running the frozen graph (pruned to the given inputs and outputs)."""

    def _import():
        tf.compat.v1.import_graph_def(graph_def, name="")

    try:
        wrapped = tf.compat.v1.wrap_function(_import, [])
        pruned = wrapped.prune(
            feeds=[wrapped.graph.get_tensor_by_name(t.name) for t in tensor_inputs],
            fetches=[wrapped.graph.get_tensor_by_name(o) for o in outputs],
        )
    except (KeyError, ValueError) as exc:  # a tensor index past an op's outputs, an unknown op
        raise client_error(
            "InputConfiguration", f"TensorFlow cannot run the frozen graph: {exception_line(exc, last=False)}"
        ) from exc
    alias = {s.name: t.name for s, t in zip(inputs, tensor_inputs)}
    feed_order = [t.name for t in tensor_inputs]

    def run(feeds):
        by_tensor = {alias.get(name, name): value for name, value in feeds.items()}
        return as_numpy_list(pruned(*(tf.constant(by_tensor[n]) for n in feed_order)))

    return run
