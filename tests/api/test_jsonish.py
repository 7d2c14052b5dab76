"""parse_jsonish: JSON, or the single-quoted form SageMaker's documentation shows."""

from __future__ import annotations

import pytest

from neo_local.api.jsonish import parse_jsonish


@pytest.mark.parametrize("text, expected", [
    ('{"data": [1, 3, 224, 224]}', {"data": [1, 3, 224, 224]}),
    ("[[1,3,224,224]]", [[1, 3, 224, 224]]),
    ("{'mattr': ['+neon']}", {"mattr": ["+neon"]}),
    ("{'ANDROID_PLATFORM': 25, 'flag': True, 'x': None}", {"ANDROID_PLATFORM": 25, "flag": True, "x": None}),
    ("{'shape': (1, 3)}", {"shape": [1, 3]}),
    ('"--verbose 1"', "--verbose 1"),
])
def test_parses(text, expected):
    assert parse_jsonish(text, "CompilerOptions") == expected


@pytest.mark.parametrize("text, fragment", [
    ("{mcpu: skylake}", "CompilerOptions is not valid JSON (Expecting property name enclosed in double quotes"),
    ("", "CompilerOptions is empty"),
    ("{1: 'a'}", "CompilerOptions has a non-string key 1"),
    ("{'a', 'b'}", "CompilerOptions holds a set"),
    ("__import__('os')", "CompilerOptions is not valid JSON"),
])
def test_rejects(text, fragment):
    with pytest.raises(ValueError) as info:
        parse_jsonish(text, "CompilerOptions")
    assert fragment in str(info.value)


def test_rejects_non_strings():
    with pytest.raises(ValueError, match="DataInputConfig must be a string holding JSON, got dict"):
        parse_jsonish({"data": [1]}, "DataInputConfig")  # type: ignore[arg-type]
