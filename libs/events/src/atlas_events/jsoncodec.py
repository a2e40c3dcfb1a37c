"""Strict JSON for events and JSON columns: orjson's speed with the standard library's rules.

Every event crosses JSON several times (the outbox row, the Kafka value, the consumer), so the
encoder matters in a burst. orjson is used where it agrees with `json`; where it does not (a
non-finite float, which orjson would write as null; keys that are not strings; integers beyond
64 bits), the standard library decides, so the output and the errors stay those of `json`.
"""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn

import orjson


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON value")


def _stdlib_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(v) for v in value)
    return False


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; NaN and Infinity refused (ValueError), as `json` with allow_nan=False."""
    try:
        encoded = orjson.dumps(value)
    except TypeError:  # non-string keys, big integers, other types: the standard library's say
        return _stdlib_dumps(value).encode()
    if b"null" in encoded and _has_non_finite(value):  # orjson writes NaN as null
        raise ValueError("Out of range float values are not JSON compliant")
    return encoded


def dumps_str(value: Any) -> str:
    """`dumps` as text (what SQLAlchemy's JSON columns hand to the driver)."""
    return dumps(value).decode()


def loads(text: bytes | str) -> Any:
    """Parse strict JSON (NaN and Infinity refused), raising ValueError with the cause."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        # Let the standard library explain (and accept what it accepts, e.g. a lone surrogate).
        return json.loads(text, parse_constant=_reject_constant)
