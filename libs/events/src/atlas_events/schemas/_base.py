"""Base class and shared field types of the event data models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

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
    Field(ge=1, strict=True, description="Revision of the mutation, strictly increasing from 1."),
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
