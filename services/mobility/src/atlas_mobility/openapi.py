"""The HR ingestion endpoint's body in the published OpenAPI: a CloudEvent of an HR mutation type.

The endpoint reads its body itself (it checks the media type and the size before parsing), so
FastAPI has no model to document it from; this says what it takes, from the registry's data
models: a structured CloudEvent whose `type` is one of the three mutation types and whose `data`
follows that type's contract.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from atlas_events.registry import REGISTRY
from atlas_events.service import Runtime
from atlas_mobility.ingestion.endpoints import HR_TYPES, MEDIA_TYPES

INGESTION_PATH = "/v1/hr/mutation-events"
_REF = "#/components/schemas/{model}"


def _envelope(ce_type: str, data_ref: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "title": ce_type,
        "required": ["specversion", "id", "source", "type", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": {"type": "string", "minLength": 1},
            "source": {"type": "string", "minLength": 1},
            "type": {"const": ce_type},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"const": "application/json"},
            "data": data_ref,
        },
        # Extension attributes: lower-case ASCII letters and digits, scalar values.
        "propertyNames": {"pattern": "^[a-z0-9]{1,20}$"},
        "additionalProperties": {"type": ["string", "integer", "boolean"]},
    }


def refine_openapi(document: dict[str, Any], runtime: Runtime) -> None:
    """Document the ingestion body (required) as one of the HR mutation CloudEvents."""
    events = [REGISTRY.event_type(ce_type) for ce_type in HR_TYPES]
    refs, definitions = models_json_schema(
        [(event.data, "validation") for event in events], ref_template=_REF
    )
    document["components"]["schemas"].update(definitions.get("$defs", {}))
    variants = [_envelope(event.type, refs[(event.data, "validation")]) for event in events]
    body = {"oneOf": variants}
    operation = document["paths"][INGESTION_PATH]["post"]
    operation["requestBody"] = {
        "required": True,
        "content": {media_type: {"schema": body} for media_type in MEDIA_TYPES},
    }
