"""What a channel answers for one send: an outcome the dispatcher maps onto delivery states."""

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    DELIVERED = "delivered"
    PERMANENT = "permanent"  # retrying cannot help: permanent_failure now
    TEMPORARY = "temporary"  # the recipient's side said "later": retry, then temporary_failure
    TECHNICAL = "technical"  # our side or the provider is down: retry, then technical_failure


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    reason: str
    detail: str | None = None
    provider: str | None = None
    provider_ref: str | None = None
