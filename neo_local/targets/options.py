"""CompilerOptions: the JSON (or single-quoted) string of OutputConfig, as typed values."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from neo_local.api.errors import client_error
from neo_local.api.jsonish import parse_jsonish

#: every option Neo documents, and the spellings seen in the wild, to one canonical key
_ALIASES = {
    "mcpu": "mcpu",
    "mattr": "mattr",
    "dtype": "dtype",
    "DTYPE": "dtype",
    "gpu-code": "gpu_code",
    "gpu_code": "gpu_code",
    "trt-ver": "trt_ver",
    "cuda-ver": "cuda_ver",
    "ANDROID_PLATFORM": "android_platform",
    "class_labels": "class_labels",
    "signature_def_key": "signature_def_key",
    "output_names": "output_names",
    "JETPACK_VERSION": "jetpack_version",
    "tuning": "tuning",
    "precision": "precision",
}

ANDROID_API_LEVELS = range(21, 30)

#: the NVIDIA options' forms (the API reference's: sm_XX, TensorRT x.y.z, CUDA x.y), with an example
_FORMS = {
    "gpu_code": ("gpu-code", re.compile(r"sm_\d{2,3}"), "'sm_72'"),
    "trt_ver": ("trt-ver", re.compile(r"\d+\.\d+\.\d+"), "'6.0.1' (x.y.z)"),
    "cuda_ver": ("cuda-ver", re.compile(r"\d+\.\d+"), "'10.2' (x.y)"),
}

_DTYPES = {"float32": "float32", "float": "float32", "int64": "int64", "long": "int64"}

#: the arithmetic of a CPU build's convs and dense layers: float32 (the default), or bfloat16 inputs and weights
#: summed in float32 (opt-in: AVX512_BF16 CPUs; outputs agree to about 1e-2, not 1e-5)
FLOAT32, BFLOAT16 = "float32", "bfloat16"
_PRECISIONS = {"float32": FLOAT32, "fp32": FLOAT32, "bfloat16": BFLOAT16, "bf16": BFLOAT16}

#: the keys of the tuning object and what each must be
_TUNING_KEYS = {
    "trials": "a whole number of trials >= 1",
    "minutes": "a number of minutes > 0",
    "records": "a path to the records file (JSON lines)",
    "rpc": "HOST:PORT of a neo-local rpc-server on the target device",
}


@dataclass(frozen=True)
class TuningOptions:
    """CompilerOptions ``tuning``: search the CPU schedules' knobs within a budget (trials and/or
    minutes, whichever ends first), timing on this machine or on the ``rpc`` device; ``records``
    names the database every compile reads (tuning or not). ``enabled`` is False when only
    ``records`` was given."""

    trials: int | None = None
    minutes: float | None = None
    records: str | None = None
    rpc: str | None = None

    @property
    def enabled(self) -> bool:
        return self.trials is not None or self.minutes is not None


@dataclass(frozen=True)
class CompilerOptions:
    mcpu: str | None = None
    mattr: tuple[str, ...] = ()
    dtype: str = "float32"
    values: Mapping[str, Any] = field(default_factory=dict)  # every option, canonical keys
    #: the JSON-string form Neo takes for ml_inf1/ml_inf2/ml_trn1: flags for the Neuron compiler
    neuron_flags: str | None = None
    #: ANDROID_PLATFORM: the Android API level, 21..29
    android_platform: int | None = None
    #: NVIDIA: gpu-code as "sm_XX", and the device's TensorRT / CUDA versions (recorded, form checked)
    gpu_code: str | None = None
    trt_ver: str | None = None
    cuda_ver: str | None = None
    #: tuning: the budget, the records database and where to time (None: no tuning key given)
    tuning: TuningOptions | None = None
    #: precision: FLOAT32 or BFLOAT16 (the targets that can take it: ``registry``)
    precision: str = FLOAT32

    @classmethod
    def parse(cls, text: str | None) -> "CompilerOptions":
        """Parse and check the option names and the forms of mcpu, mattr and dtype, or of a
        Neuron flag string (request validation lets that form through for Neuron devices only)."""
        raw = _load(text)
        if isinstance(raw, str):
            return cls(neuron_flags=_neuron_flags(raw))
        values: dict[str, Any] = {}
        for key, value in raw.items():
            canonical = _ALIASES.get(key)
            if canonical is None:
                known = ", ".join(sorted(_ALIASES))
                raise client_error("OutputConfiguration", f"Unknown CompilerOptions key '{key}'. Known keys: {known}")
            values[canonical] = value
        return cls(
            mcpu=_mcpu(values.get("mcpu")),
            mattr=_mattr(values.get("mattr")),
            dtype=_choice("DTYPE", _DTYPES, values.get("dtype"), "float32"),
            precision=_choice("precision", _PRECISIONS, values.get("precision"), FLOAT32),
            values=values,
            android_platform=_android_platform(values.get("android_platform")),
            tuning=parse_tuning(values.get("tuning")),
            **{key: _version_form(key, values.get(key)) for key in _FORMS},
        )

    def nvidia(self) -> dict[str, str]:
        """The NVIDIA options given, by their API names (gpu-code, trt-ver, cuda-ver)."""
        given = {"gpu-code": self.gpu_code, "trt-ver": self.trt_ver, "cuda-ver": self.cuda_ver}
        return {k: v for k, v in given.items() if v is not None}


def _load(text: str | None) -> dict[str, Any] | str:
    if text is None or not text.strip():
        return {}
    try:
        value = parse_jsonish(text, "CompilerOptions")
    except ValueError as exc:
        raise client_error("OutputConfiguration", str(exc)) from None
    if not isinstance(value, (dict, str)):
        raise client_error("OutputConfiguration", f"CompilerOptions must be a JSON object, got {text!r}")
    return value


def _neuron_flags(text: str) -> str:
    """Neuron compiler flags, e.g. ``--verbose 1 --num-neuroncores 2 -O2``: shell words, the first a flag."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise client_error("OutputConfiguration", f"CompilerOptions Neuron flags {text!r} cannot be split: {exc}") from None
    if not words or not words[0].startswith("-"):
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions as a string must be Neuron compiler flags such as \"--verbose 1 -O2\", got {text!r}",
        )
    return " ".join(shlex.quote(w) for w in words)


def _mcpu(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise client_error("OutputConfiguration", f"CompilerOptions mcpu must be a CPU name string, got {value!r}")
    return value


def _mattr(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise client_error("OutputConfiguration", f"CompilerOptions mattr must be a list like ['+neon'], got {value!r}")
    flags = tuple(i.strip() for i in items if i.strip())
    bad = [f for f in flags if f[0] not in "+-"]
    if bad:
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions mattr entries must start with + or - (e.g. '+avx2'), got {', '.join(bad)}",
        )
    return flags


def _choice(name: str, table: Mapping[str, str], value: Any, default: str) -> str:
    """``table``'s canonical value for ``value`` (``default`` when not given), else a clear error."""
    if value is None:
        return default
    chosen = table.get(str(value))
    if chosen is None:
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions {name} {value!r} is not supported; use one of {', '.join(table)}",
        )
    return chosen


def _android_platform(value: Any) -> int | None:
    if value is None:
        return None
    level = int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None
    if isinstance(value, bool) or level not in ANDROID_API_LEVELS:
        raise client_error(
            "OutputConfiguration",
            f"CompilerOptions ANDROID_PLATFORM must be an Android API level from {ANDROID_API_LEVELS.start} to "
            f"{ANDROID_API_LEVELS.stop - 1}, got {value!r}",
        )
    return level


def _version_form(key: str, value: Any) -> str | None:
    if value is None:
        return None
    name, form, example = _FORMS[key]
    if not isinstance(value, str) or not form.fullmatch(value):
        raise client_error("OutputConfiguration", f"CompilerOptions {name} must be like {example}, got {value!r}")
    return value


def parse_tuning(value: Any) -> TuningOptions | None:
    """The ``tuning`` object, e.g. ``{"trials": 200}``, ``{"minutes": 5, "records": "/path"}``."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise client_error("OutputConfiguration", f"CompilerOptions tuning must be an object such as "
                                                  f"{{\"trials\": 200}} or {{\"minutes\": 5}}, got {value!r}")
    unknown = sorted(set(value) - set(_TUNING_KEYS))
    if unknown:
        raise client_error("OutputConfiguration", f"Unknown CompilerOptions tuning key(s) {', '.join(unknown)}. "
                                                  f"Known keys: {', '.join(_TUNING_KEYS)}")
    trials, minutes = value.get("trials"), value.get("minutes")
    if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int) or trials < 1):
        _bad_tuning("trials", trials)
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes > 0
                                or minutes == float("inf")):
        _bad_tuning("minutes", minutes)
    for key in ("records", "rpc"):
        if key in value and (not isinstance(value[key], str) or not value[key].strip()):
            _bad_tuning(key, value[key])
    rpc = value.get("rpc")
    if rpc is not None:
        from neo_local.rpc import parse_endpoint

        try:
            parse_endpoint(rpc)
        except ValueError:
            _bad_tuning("rpc", rpc)
    if rpc is not None and trials is None and minutes is None:
        raise client_error("OutputConfiguration", "CompilerOptions tuning rpc names where to time candidates; "
                                                  "give a budget too (trials or minutes)")
    return TuningOptions(trials=trials, minutes=None if minutes is None else float(minutes),
                         records=value.get("records"), rpc=rpc)


def _bad_tuning(key: str, value: Any) -> None:
    raise client_error("OutputConfiguration", f"CompilerOptions tuning {key} must be {_TUNING_KEYS[key]}, got {value!r}")
