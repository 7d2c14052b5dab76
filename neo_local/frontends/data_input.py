"""DataInputConfig: the JSON string naming input shapes, in its dict and list forms."""

from __future__ import annotations

import json
from typing import Any

from neo_local.api.errors import client_error
from neo_local.api.jsonish import parse_jsonish

Shapes = list[tuple[str | None, tuple[int, ...]]]

_EXAMPLE = 'e.g. {"data": [1, 3, 224, 224]} or [[1, 3, 224, 224]]'


def parse_data_input_config(text: str | None) -> Shapes | None:
    """Ordered (name, shape) pairs; names are None in the list form. None when not given."""
    if text is None or not text.strip():
        return None
    value = _load(text)
    if isinstance(value, dict):
        if not value:
            raise client_error("InputConfiguration", f"DataInputConfig is an empty object; {_EXAMPLE}")
        return [(str(name), _shape(name, shape)) for name, shape in value.items()]
    if isinstance(value, list) and value and all(isinstance(s, list) for s in value):
        return [(None, _shape(f"input{i}", shape)) for i, shape in enumerate(value)]
    raise client_error("InputConfiguration", f"DataInputConfig must be an object of input shapes or a list of shapes, {_EXAMPLE}; got {text!r}")


def _load(text: str) -> Any:
    try:
        return parse_jsonish(text, "DataInputConfig")
    except ValueError as exc:
        raise client_error("InputConfiguration", f"{exc}; {_EXAMPLE}") from None


def _shape(name: object, shape: Any) -> tuple[int, ...]:
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
    ):
        raise client_error(
            "InputConfiguration",
            f"DataInputConfig shape for '{name}' must be a list of positive integers, got {shape!r}",
        )
    return tuple(shape)


def format_data_input_config(inputs: list[tuple[str, tuple[int, ...]]]) -> str:
    """The dict form, as DerivedInformation.DerivedDataInputConfig reports it."""
    return json.dumps({name: list(shape) for name, shape in inputs})


def shapes_by_name(given: Shapes, names: list[str], whose: str, listing: str, inputs_sentence: str) -> dict[str, tuple[int, ...]]:
    """Shapes keyed by input name: the list form is matched by position, and a name that is not
    one of ``names`` is refused. ``whose`` names the model in messages ("the model", a file),
    ``listing`` lists its inputs, ``inputs_sentence`` introduces them to a user who got one wrong."""
    if all(name is None for name, _ in given):
        if len(given) != len(names):
            raise client_error(
                "InputConfiguration",
                f"DataInputConfig lists {len(given)} shapes but {whose} has {len(names)} inputs: {listing}",
            )
        given = [(names[i], shape) for i, (_, shape) in enumerate(given)]
    shapes = dict(given)
    for name in shapes:
        if name not in names:
            raise client_error(
                "InputConfiguration",
                f"Input '{name}' in DataInputConfig is not an input of {whose}. {inputs_sentence}",
            )
    return shapes
