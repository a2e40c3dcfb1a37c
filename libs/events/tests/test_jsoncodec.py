"""The JSON codec writes what the standard library writes and refuses what it refuses."""

from __future__ import annotations

import json
import math

import pytest

from atlas_events import jsoncodec

SAMPLES = [
    {"mutation_id": "M-1", "revision": 3, "ratio": 0.25, "ok": True, "none": None},
    {"texte": "Espace ATLAS de Besançon — élève", "emoji": "🚚", "nested": [[1, [2]], {}]},
    [1, -2, 3.5, 1e-7, 12345678901234567, "", []],
    "chaîne",
    None,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_dumps_matches_the_standard_library(value: object) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert json.loads(jsoncodec.dumps(value)) == json.loads(expected)
    assert jsoncodec.loads(jsoncodec.dumps(value)) == value
    assert jsoncodec.dumps_str(value) == jsoncodec.dumps(value).decode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_dumps_refuses_non_finite_numbers_even_beside_a_null(bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        jsoncodec.dumps({"a": None, "deep": [{"b": bad}]})
    assert jsoncodec.dumps({"a": None, "b": 1.0}) == b'{"a":null,"b":1.0}'


def test_what_orjson_cannot_write_falls_back_to_the_standard_library() -> None:
    assert jsoncodec.dumps({1: "one"}) == b'{"1":"one"}'  # a non-string key
    assert jsoncodec.dumps(2**70) == str(2**70).encode()  # beyond 64 bits


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"a": 1', "Expecting"),
    ],
)
def test_loads_refuses_what_is_not_json_with_the_standard_librarys_reason(
    text: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        jsoncodec.loads(text)


class _Ratio(float):
    """A float subclass, as numpy-like or enum values may be."""


@pytest.mark.parametrize("bad", [math.nan, _Ratio("inf")])
def test_non_finite_numbers_are_found_deep_in_tuples_and_subclasses(bad: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        jsoncodec.dumps({"a": None, "deep": ({"b": [1, "x", (True, bad)]},)})
