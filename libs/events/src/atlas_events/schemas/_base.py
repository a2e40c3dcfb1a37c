"""Base class and shared field types of the event data models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints

# Unknown fields are accepted and kept so that an older consumer survives an additive change.
_FORWARD_COMPATIBLE = ConfigDict(extra="allow")


class EventData(BaseModel):
    """Base of every event data model: known fields validated, unknown fields kept."""

    model_config = _FORWARD_COMPATIBLE


def example(payload: dict[str, Any]) -> ConfigDict:
    """Model config carrying one example payload, published in the generated JSON Schema."""
    return ConfigDict(extra="allow", json_schema_extra={"examples": [payload]})


AgentId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{10}$"),
    Field(description="The agent's 10-digit defence identifier.", examples=["2019123456"]),
]
MutationId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$"),
    Field(description="Issuer-unique reference of the mutation order, 1 to 64 of [A-Za-z0-9._/-]."),
]
Revision = Annotated[
    int,
    Field(
        ge=1,
        le=2**31 - 1,  # what the services' integer columns hold
        strict=True,
        description="Revision of the mutation, strictly increasing from 1.",
    ),
]
# Mainland départements 01-95 (Corsica as 2A/2B), then overseas 971-978 and 986-988.
InseeCode = Annotated[
    str,
    StringConstraints(
        pattern=r"^(?:(?:0[1-9]|1[0-9]|2[1-9AB]|[3-8][0-9]|9[0-5])[0-9]{3}|97[1-8][0-9]{2}|98[6-8][0-9]{2})$"
    ),
    Field(description="5-character INSEE commune code (2A/2B for Corsica, 97xxx/98xxx overseas)."),
]
# What HR may send as a commune: any code of the INSEE shape, known or not. A code no commune has
# (an HR typo such as 99999) is still a valid mutation: its dossier opens `a_orienter` for the
# national cell, it is not dead-lettered. The reference lists decide what a code means.
CommuneCode = Annotated[
    str,
    StringConstraints(pattern=r"^(?:[0-9]{5}|2[AB][0-9]{3})$"),
    Field(description="5-character INSEE commune code as sent by HR; unknown codes are kept."),
]
AtlasId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"),
    Field(description="Identifier of an ATLAS space."),
]
PrestationCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$"),
    Field(description="Stable code of a prestation (support service) in the catalog."),
]
EntityId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$"),
    Field(description="Identifier issued by the owning service (a UUID or a readable code)."),
]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
CaseKind = Annotated[
    Literal["logement", "scolarite", "demenagement"],
    Field(description="Kind of mobility handler case."),
]


# Pydantic's lax mode takes 0, 1 and "yes" for a boolean and a number (of seconds since 1970) for
# a date-time; an API input documented as a JSON boolean or an ISO 8601 date-time takes only that.
Flag = Annotated[bool, Strict()]
"""A boolean of a request body: JSON `true` or `false`, nothing else."""

_NUMBER = re.compile(r"^\s*[+-]?[0-9]+(?:\.[0-9]*)?\s*$")


def _iso_only(value: Any) -> Any:
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.match(value)):
        raise ValueError("an ISO 8601 date-time is expected, e.g. 2026-09-01T08:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A date-time input (query or body) in ISO 8601 only, never a bare number."""

INT32_MAX = 2**31 - 1
"""The largest value of an `integer` column: a bound for numbers an API input passes to one."""

# Not a space nor a control character, spelled out: `\s` means different sets in Python's re,
# pydantic's Rust regex and the ECMA regex of JSON Schema (NEL, U+001C-U+001F...), so a pattern
# using it would accept or refuse different addresses depending on who checks it.
_ADDRESS_CHAR = (
    r"[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
EMAIL_PATTERN = rf"^{_ADDRESS_CHAR}+@{_ADDRESS_CHAR}+\.{_ADDRESS_CHAR}+$"
"""An e-mail address as the platform accepts it: something@domain.tld without spaces."""
