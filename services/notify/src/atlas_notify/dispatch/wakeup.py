"""Wakes in-process dispatchers when a transaction that queued deliveries commits."""

import weakref
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_FLAG = "atlas_notify_dispatch"


class Wakeable(Protocol):
    def wake(self) -> None: ...


_WAKERS: "weakref.WeakSet[Wakeable]" = weakref.WeakSet()


def register(dispatcher: Wakeable) -> None:
    _WAKERS.add(dispatcher)


def request_dispatch(session: AsyncSession) -> None:
    """Ask dispatchers to look for due deliveries once `session` commits."""
    session.sync_session.info[_FLAG] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        for dispatcher in list(_WAKERS):
            dispatcher.wake()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)
