"""SMS through HTTP providers: failover in order of preference, a circuit breaker per provider.

Wire format every provider adapter speaks (an aggregator's simple JSON API):
`POST {url}/v1/messages` with `{"to": "+33…", "body": "…", "reference": "<delivery id>"}` and an
optional bearer token; `2xx {"id": "…", "status": "delivered"|"accepted"|"temporary_failure"|
"permanent_failure"}`; `400`/`422` for a number or text no provider will take (permanent, no
failover); `429`, `5xx`, timeouts and refused connections count against the provider's breaker
and move on to the next provider.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import structlog
from prometheus_client import Counter

from atlas_notify.channels.base import Outcome, SendResult
from atlas_notify.config import SmsProviderConfig

log = structlog.get_logger(__name__)

SMS_ATTEMPTS = Counter(
    "atlas_notify_sms_provider_attempts_total", "SMS sends per provider", ["provider", "outcome"]
)


@dataclass
class CircuitBreaker:
    """Closed → open after `threshold` failures in a row; half-open after `reset_seconds`."""

    threshold: int
    reset_seconds: float
    failures: int = 0
    opened_at: float | None = None
    _probing: bool = field(default=False, repr=False)

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.reset_seconds:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        """Whether a call may go now (one probe at a time when half-open)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self._probing = 0, None, False

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.opened_at is not None or self.failures >= self.threshold:
            self.opened_at = time.monotonic()


class SmsProvider:
    """One HTTP provider and its breaker."""

    def __init__(
        self, settings: SmsProviderConfig, client: httpx.AsyncClient, breaker: CircuitBreaker
    ) -> None:
        self.name = settings.name
        self.url = settings.url.rstrip("/")
        self.token = settings.token
        self.client = client
        self.breaker = breaker

    async def send(self, to: str, body: str, reference: str) -> SendResult | None:
        """The provider's answer, or None when it failed (the caller fails over)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = await self.client.post(
                f"{self.url}/v1/messages",
                json={"to": to, "body": body, "reference": reference},
                headers=headers,
            )
        except httpx.HTTPError as exc:
            self.breaker.failure()
            SMS_ATTEMPTS.labels(self.name, "error").inc()
            log.warning("sms_provider_error", provider=self.name, error=repr(exc))
            return None
        if response.status_code in (400, 422):
            self.breaker.success()  # the provider works; the message is what is wrong
            SMS_ATTEMPTS.labels(self.name, "rejected").inc()
            return SendResult(
                Outcome.PERMANENT, "sms_rejected", response.text[:500], provider=self.name
            )
        if response.status_code == 429 or response.status_code >= 500:
            self.breaker.failure()
            SMS_ATTEMPTS.labels(self.name, "error").inc()
            log.warning("sms_provider_failed", provider=self.name, status=response.status_code)
            return None
        if not response.is_success:
            self.breaker.failure()
            SMS_ATTEMPTS.labels(self.name, "error").inc()
            return None
        self.breaker.success()
        payload = _json(response)
        status = str(payload.get("status", "accepted"))
        ref = str(payload.get("id")) if payload.get("id") is not None else None
        SMS_ATTEMPTS.labels(self.name, status).inc()
        if status == "permanent_failure":
            return SendResult(Outcome.PERMANENT, "sms_permanent_failure", None, self.name, ref)
        if status == "temporary_failure":
            return SendResult(Outcome.TEMPORARY, "sms_temporary_failure", None, self.name, ref)
        return SendResult(Outcome.DELIVERED, f"sms_{status}", None, self.name, ref)


class SmsSender:
    """Tries providers in order, skipping those whose circuit is open."""

    def __init__(
        self,
        providers: Sequence[SmsProviderConfig],
        *,
        timeout: float = 5.0,
        breaker_failures: int = 3,
        breaker_reset_seconds: float = 30.0,
    ) -> None:
        self._client = httpx.AsyncClient(timeout=timeout)
        self.providers = [
            SmsProvider(p, self._client, CircuitBreaker(breaker_failures, breaker_reset_seconds))
            for p in providers
        ]

    async def send(self, to: str, body: str, reference: str) -> SendResult:
        if not self.providers:
            return SendResult(Outcome.TECHNICAL, "no_sms_provider", "no SMS provider configured")
        tried: list[str] = []
        for provider in self.providers:
            if not provider.breaker.allow():
                tried.append(f"{provider.name}: circuit open")
                continue
            result = await provider.send(to, body, reference)
            if result is not None:
                return result
            tried.append(f"{provider.name}: failed")
        return SendResult(Outcome.TECHNICAL, "sms_providers_unavailable", "; ".join(tried))

    def breaker_states(self) -> dict[str, str]:
        return {p.name: p.breaker.state for p in self.providers}

    async def close(self) -> None:
        await self._client.aclose()


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
