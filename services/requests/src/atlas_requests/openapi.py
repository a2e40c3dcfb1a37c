"""The requests service's OpenAPI states its configured message limits.

A message's length and attachment count are settings (`max_message_chars`, `max_attachments`)
answered with 413 `MessageTooLarge` beyond them; the document gives the same limits as
`maxLength` and `maxItems`, so a client knows them before it is refused.
"""

from __future__ import annotations

from typing import Any

from atlas_events.service import Runtime
from atlas_requests.config import RequestsSettings

MESSAGE_BODY = "MessageIn"


def refine_openapi(document: dict[str, Any], runtime: Runtime) -> None:
    """Put the configured limits on the message body's schema."""
    settings = runtime.settings
    if not isinstance(settings, RequestsSettings):
        settings = RequestsSettings.model_validate(settings.model_dump())
    properties = document["components"]["schemas"][MESSAGE_BODY]["properties"]
    properties["body"]["maxLength"] = settings.max_message_chars
    properties["attachments"]["maxItems"] = settings.max_attachments
