"""The vault's OpenAPI describes a deposit's `labels` as what they are: a JSON object of strings.

The query parameter carries JSON text, which FastAPI can only document as a string; the document
gives it as a parameter with JSON content and the limits the endpoint enforces (400 beyond them).
"""

from __future__ import annotations

from typing import Any

from atlas_events.service import Runtime
from atlas_vault.documents.endpoints import MAX_LABELS

DEPOSIT = "/v1/documents"


def refine_openapi(document: dict[str, Any], runtime: Runtime) -> None:
    """Replace the `labels` parameter's string schema with its JSON content."""
    for parameter in document["paths"][DEPOSIT]["post"]["parameters"]:
        if parameter["name"] == "labels" and parameter["in"] == "query":
            parameter.pop("schema", None)
            parameter["content"] = {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "maxProperties": MAX_LABELS,
                        "propertyNames": {"maxLength": 50},
                        "additionalProperties": {"type": "string", "maxLength": 200},
                    }
                }
            }
