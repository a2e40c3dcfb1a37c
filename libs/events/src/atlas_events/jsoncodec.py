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


_LEAVES = frozenset({str, int, bool, type(None)})


def _has_non_finite(value: Any) -> bool:
    """Whether a float in `value` is NaN or infinite (walked without recursion: an event's data
    holds hundreds of values, nearly all strings, and this ran for every event)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _LEAVES:
            continue
        if kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
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
