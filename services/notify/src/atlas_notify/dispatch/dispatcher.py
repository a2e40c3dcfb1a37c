"""The dispatcher: claims due deliveries, sends them, records the outcome; digest and purge too."""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from atlas_events.db import Database, rowcount
from atlas_events.outbox import Outbox
from atlas_notify.channels.base import Outcome, SendResult
from atlas_notify.channels.email import SmtpPool, build_message
from atlas_notify.channels.sms import SmsSender
from atlas_notify.config import NotifySettings
from atlas_notify.db import as_utc, utcnow
from atlas_notify.dispatch import wakeup
from atlas_notify.dispatch.jobs import claim_daily
from atlas_notify.errors import MissingVariables, TemplateNotFound
from atlas_notify.notifications.models import Delivery, Notification
from atlas_notify.notifications.service import transition, transition_many
from atlas_notify.notifications.simulator import Simulated, simulated
from atlas_notify.notifications.states import TERMINAL, Status
from atlas_notify.preferences.policy import QuietHours
from atlas_notify.templates.rendering import render
from atlas_notify.templates.service import get_template

log = structlog.get_logger(__name__)

IN_APP = "in_app"

_SIMULATED_RESULTS = {
    Simulated.DELIVER: SendResult(Outcome.DELIVERED, "simulated_delivered", provider="simulator"),
    Simulated.PERMANENT_FAILURE: SendResult(
        Outcome.PERMANENT, "simulated_permanent_failure", provider="simulator"
    ),
    Simulated.TEMPORARY_FAILURE: SendResult(
        Outcome.TEMPORARY, "simulated_temporary_failure", provider="simulator"
    ),
}


@dataclass
class Claimed:
    delivery: Delivery
    notification: Notification


class Dispatcher:
    """Sends what is due on every channel, with retries, backoff and the DLQ (a kit worker)."""

    name = "notify.dispatcher"

    def __init__(
        self,
        db: Database,
        settings: NotifySettings,
        outbox: Callable[[], Outbox],
        *,
        email: SmtpPool | None = None,
        sms: SmsSender | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self._outbox = outbox
        self.email = email or SmtpPool(
            settings.smtp_host,
            settings.smtp_port,
            size=settings.smtp_pool_size,
            timeout=settings.smtp_timeout_seconds,
            idle_seconds=settings.smtp_idle_seconds,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
        self.sms = sms or SmsSender(
            settings.sms_providers,
            timeout=settings.sms_timeout_seconds,
            breaker_failures=settings.sms_breaker_failures,
            breaker_reset_seconds=settings.sms_breaker_reset_seconds,
        )
        self.quiet_hours = QuietHours(
            settings.quiet_hours_start, settings.quiet_hours_end, settings.timezone
        )
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._last_purge: datetime | None = None
        wakeup.register(self)

    @property
    def outbox(self) -> Outbox:
        return self._outbox()

    def wake(self) -> None:
        self._wakeup.set()

    # ---- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Dispatch until stopped: drain what is due, then sleep until woken or the poll."""
        backoff = 0.2
        try:
            while not self._stopping:
                self._wakeup.clear()
                try:
                    handled = await self.dispatch_due()
                    await self._periodic()
                    backoff = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.exception("dispatch_failed", error=repr(exc), retry_in=backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                if handled >= self.settings.dispatch_batch or self._stopping:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wakeup.wait(), timeout=self.settings.dispatch_poll_seconds
                    )
        finally:
            await self.close()

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    async def close(self) -> None:
        await self.email.close()
        await self.sms.close()

    async def _periodic(self) -> None:
        now = utcnow()
        if self.settings.digest_auto:
            local = now.astimezone(self.quiet_hours.zone)
            if local.time() >= self.settings.digest_time and await claim_daily(
                self.db, "staff_digest", local.date()
            ):
                await self.send_digests(now)
        if self._last_purge is None or now - self._last_purge > timedelta(hours=1):
            self._last_purge = now
            await self.purge(now)

    # ---- one pass --------------------------------------------------------------------------

    async def dispatch_due(self, now: datetime | None = None) -> int:
        """Claim one batch of due deliveries, send them, record outcomes; return how many."""
        now = now or utcnow()
        claimed = await self._claim(now)
        if not claimed:
            return 0
        to_send = [c for c in claimed if c.delivery.channel != "in_app"]
        results = await asyncio.gather(*(self._send(c) for c in to_send))
        await self._record(list(zip(to_send, results, strict=True)))
        return len(claimed)

    def _due(self, now: datetime) -> ColumnElement[bool]:
        fresh = and_(
            col(Delivery.status) == Status.CREATED.value,
            or_(col(Delivery.not_before).is_(None), col(Delivery.not_before) <= now),
        )
        retry = and_(
            col(Delivery.status) == Status.SENDING.value,
            col(Delivery.next_attempt_at) <= now,
        )
        return and_(col(Delivery.digest).is_(False), or_(fresh, retry))

    async def _claim(self, now: datetime) -> list[Claimed]:
        lease = now + timedelta(seconds=self.settings.send_lease_seconds)
        async with self.db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(Delivery)
                    .where(self._due(now))
                    .order_by(col(Delivery.created_at))
                    .limit(self.settings.dispatch_batch)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return []
            notifications = await _notifications(session, rows)
            pairs = [(notifications[d.notification_id], d) for d in rows]
            fresh = [p for p in pairs if p[1].status == Status.CREATED]
            again = [p for p in pairs if p[1].status == Status.SENDING]
            refused = await transition_many(
                session, self.outbox, fresh, Status.SENDING, "dispatched", at=now,
                attempts=1, next_attempt_at=lease,
            )  # fmt: skip
            if again:
                # A retry, or a claim whose sender died: the lease ran out, try again.
                await session.execute(
                    update(Delivery)
                    .where(col(Delivery.id).in_([d.id for _, d in again]))
                    .values(attempts=col(Delivery.attempts) + 1, next_attempt_at=lease)
                    .execution_options(synchronize_session=False)
                )
                for _, delivery in again:
                    set_committed_value(delivery, "attempts", delivery.attempts + 1)
            lost = {d.id for _, d in refused}
            claimed = [Claimed(d, n) for n, d in pairs if d.id not in lost]
            # The inbox is our own table: storing the item is delivering it.
            inbox = [
                (c.notification, c.delivery) for c in claimed if c.delivery.channel == "in_app"
            ]
            await transition_many(
                session, self.outbox, inbox, Status.DELIVERED, "stored_in_inbox", at=now,
                next_attempt_at=None,
            )  # fmt: skip
            return claimed

    async def _send(self, item: Claimed) -> SendResult:
        delivery = item.delivery
        if self.settings.simulated_recipients:
            outcome = simulated(delivery.channel, delivery.address)
            if outcome is not None:
                return _SIMULATED_RESULTS[outcome]
        if delivery.address is None or delivery.body is None:
            return SendResult(Outcome.PERMANENT, "nothing_to_send", "no address or no text")
        try:
            if delivery.channel == "email":
                address, body = delivery.address, delivery.body
                return await self.email.send(
                    lambda: build_message(
                        sender=self.settings.smtp_from,
                        to=address,
                        subject=delivery.subject or "",
                        body=body,
                        delivery_id=delivery.id,
                    )
                )
            if delivery.channel == "sms":
                return await self.sms.send(delivery.address, delivery.body, delivery.id)
        except Exception as exc:  # a bug or an unexpected library error: never lose the delivery
            log.exception("send_crashed", delivery_id=delivery.id)
            return SendResult(Outcome.TECHNICAL, "send_crashed", repr(exc)[:500])
        return SendResult(Outcome.PERMANENT, "unknown_channel", delivery.channel)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` tries: doubling, capped."""
        delay = self.settings.retry_backoff_seconds * 2 ** max(0, attempts - 1)
        return float(min(delay, self.settings.retry_backoff_max_seconds))

    async def _record(self, outcomes: Sequence[tuple[Claimed, SendResult]]) -> None:
        """Apply send outcomes; those sharing a status change go in one statement."""
        if not outcomes:
            return
        now = utcnow()
        groups: dict[tuple[Status, str, str | None, str | None, bool], list[Claimed]] = defaultdict(
            list
        )
        retries: list[tuple[Claimed, SendResult]] = []
        for item, result in outcomes:
            if result.outcome is Outcome.DELIVERED:
                key = (Status.DELIVERED, result.reason, result.detail, result.provider, False)
            elif result.outcome is Outcome.PERMANENT:
                key = (
                    Status.PERMANENT_FAILURE,
                    result.reason,
                    result.detail,
                    result.provider,
                    False,
                )
            elif item.delivery.attempts >= self.settings.retry_max_attempts:
                final = (
                    Status.TEMPORARY_FAILURE
                    if result.outcome is Outcome.TEMPORARY
                    else Status.TECHNICAL_FAILURE
                )
                last = f"{result.reason}: {result.detail}" if result.detail else result.reason
                detail = f"after {item.delivery.attempts} attempts, last: {last}"
                key = (final, "retries_exhausted", detail, result.provider, True)
                log.warning("delivery_dead_lettered", delivery_id=item.delivery.id, reason=last)
            else:
                retries.append((item, result))
                continue
            groups[key].append(item)
        refs = {item.delivery.id: result.provider_ref for item, result in outcomes}
        async with self.db.transaction() as session:
            for (status, reason, why, provider, dead), items in groups.items():
                with_refs = [i for i in items if refs.get(i.delivery.id)]
                plain = [i for i in items if not refs.get(i.delivery.id)]
                common: dict[str, object] = {"provider": provider, "next_attempt_at": None}
                if dead:
                    common["dead_lettered"] = True
                refused = await transition_many(
                    session, self.outbox, [(i.notification, i.delivery) for i in plain],
                    status, reason, detail=why, at=now, **common,
                )  # fmt: skip
                for item in with_refs:  # provider references differ row by row (SMS ids)
                    refused += await transition_many(
                        session, self.outbox, [(item.notification, item.delivery)], status,
                        reason, detail=why, at=now, provider_ref=refs[item.delivery.id],
                        **common,
                    )  # fmt: skip
                for _, delivery in refused:
                    # Someone else finished it meanwhile (a lease that ran out): theirs stands.
                    log.warning("outcome_dropped", delivery_id=delivery.id)
            for item, result in retries:
                delay = self.backoff(item.delivery.attempts)
                last = f"{result.reason}: {result.detail}" if result.detail else result.reason
                await session.execute(
                    update(Delivery)
                    .where(
                        col(Delivery.id) == item.delivery.id,
                        col(Delivery.status) == Status.SENDING.value,
                    )
                    .values(
                        next_attempt_at=now + timedelta(seconds=delay),
                        detail=f"attempt {item.delivery.attempts} failed: {last}"[:2000],
                        provider=result.provider,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )

    # ---- the daily staff digest -------------------------------------------------------------

    async def send_digests(self, now: datetime | None = None) -> int:
        """One e-mail per staff member with all their pending digest items; count the e-mails."""
        now = now or utcnow()
        lease = now + timedelta(seconds=self.settings.send_lease_seconds)
        groups: dict[tuple[str, str], list[Claimed]] = defaultdict(list)
        async with self.db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(Delivery)
                    .where(
                        col(Delivery.digest).is_(True),
                        col(Delivery.channel) == "email",
                        or_(
                            col(Delivery.status) == Status.CREATED.value,
                            and_(
                                col(Delivery.status) == Status.SENDING.value,
                                col(Delivery.next_attempt_at) <= now,
                            ),
                        ),
                    )
                    .order_by(col(Delivery.target), col(Delivery.created_at))
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return 0
            notifications = await _notifications(session, rows)
            for delivery in rows:
                notification = notifications[delivery.notification_id]
                attempts = delivery.attempts + 1
                if delivery.status == Status.CREATED:
                    await transition(
                        session, self.outbox, notification, delivery, Status.SENDING,
                        "digest_batched", at=now, attempts=attempts, next_attempt_at=lease,
                    )  # fmt: skip
                else:
                    await session.execute(
                        update(Delivery)
                        .where(col(Delivery.id) == delivery.id)
                        .values(attempts=attempts, next_attempt_at=lease)
                    )
                    delivery.attempts = attempts
                groups[(delivery.target, delivery.address or "")].append(
                    Claimed(delivery, notification)
                )
            template = await get_template(session, "notify.digest")
        sent = 0
        outcomes: list[tuple[Claimed, SendResult]] = []
        for (_staff, address), items in groups.items():
            result = await self._send_digest(template, address, items, now)
            if result.outcome is Outcome.DELIVERED:
                sent += 1
                result = SendResult(
                    Outcome.DELIVERED, "sent_in_digest", None, result.provider, result.provider_ref
                )
            outcomes.extend((item, result) for item in items)
        await self._record(outcomes)
        log.info("digests_sent", emails=sent, items=len(outcomes))
        return sent

    async def _send_digest(
        self, template: object, address: str, items: list[Claimed], now: datetime
    ) -> SendResult:
        from atlas_notify.templates.models import Template

        assert isinstance(template, Template)
        lines = [
            f"- {item.delivery.subject or item.notification.template_code}\n"
            f"  {(item.delivery.body or '').splitlines()[0] if item.delivery.body else ''}"
            for item in items
        ]
        local = now.astimezone(self.quiet_hours.zone)
        try:
            message = render(
                template,
                {
                    "count": str(len(items)),
                    "date": local.strftime("%d/%m/%Y"),
                    "items": "\n".join(lines),
                },
            )
        except (MissingVariables, TemplateNotFound) as exc:
            return SendResult(Outcome.TECHNICAL, "digest_template_error", exc.message)
        if self.settings.simulated_recipients:
            outcome = simulated("email", address)
            if outcome is not None:
                return _SIMULATED_RESULTS[outcome]
        return await self.email.send(
            build_message(
                sender=self.settings.smtp_from,
                to=address,
                subject=message.email_subject or "",
                body=message.email_body or "",
                delivery_id=f"digest-{items[0].delivery.id}",
            )
        )

    # ---- retention -------------------------------------------------------------------------

    async def purge(self, now: datetime | None = None) -> int:
        """Erase the content and addresses of finished deliveries older than their channel keeps."""
        now = now or utcnow()
        purged = 0
        async with self.db.transaction() as session:
            for channel, days in self.settings.retention_days.items():
                cutoff = now - timedelta(days=days)
                result = await session.execute(
                    update(Delivery)
                    .where(
                        col(Delivery.channel) == channel,
                        col(Delivery.status).in_([s.value for s in TERMINAL]),
                        col(Delivery.completed_at) <= cutoff,
                        col(Delivery.purged_at).is_(None),
                        col(Delivery.dead_lettered).is_(False),
                    )
                    .values(subject=None, body=None, address=None, detail=None, purged_at=now)
                )
                purged += rowcount(result)
            if purged:
                unpurged = exists().where(
                    col(Delivery.notification_id) == col(Notification.id),
                    col(Delivery.purged_at).is_(None),
                )
                await session.execute(
                    update(Notification)
                    .where(col(Notification.purged_at).is_(None), ~unpurged)
                    .values(params={}, purged_at=now)
                )
        if purged:
            log.info("retention_purged", deliveries=purged)
        return purged


async def _notifications(
    session: AsyncSession, rows: Sequence[Delivery]
) -> dict[str, Notification]:
    ids = {d.notification_id for d in rows}
    found = await session.scalars(select(Notification).where(col(Notification.id).in_(ids)))
    return {n.id: n for n in found}


def as_aware(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)
