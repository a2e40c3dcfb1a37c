"""Notify's OpenAPI says that a direct send needs its Idempotency-Key.

The header is read as optional so that its absence is answered with the named 400
`IdempotencyKeyRequired` rather than a generic validation error; the document still says it is
required, which is what a client must do.
"""

from __future__ import annotations

from typing import Any

from atlas_events.service import Runtime


def refine_openapi(document: dict[str, Any], runtime: Runtime) -> None:
    """Mark the Idempotency-Key header of POST /v1/notifications required (a non-blank string)."""
    for parameter in document["paths"]["/v1/notifications"]["post"]["parameters"]:
        if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
            parameter["required"] = True
            parameter["schema"] = {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "pattern": r"\S",
            }
