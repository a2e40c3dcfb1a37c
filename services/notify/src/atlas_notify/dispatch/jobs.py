"""Once-a-day jobs shared by every worker process: the row says who ran today."""

from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlmodel import Field

from atlas_events.db import Database
from atlas_notify.db import NotifyModel


class JobRun(NotifyModel, table=True):
    """The last day a periodic job ran."""

    __tablename__ = "notify_job_runs"

    name: str = Field(primary_key=True, max_length=64)
    last_run_on: date


async def claim_daily(db: Database, name: str, today: date) -> bool:
    """True for exactly one caller per day (row lock, or the primary key for the first run)."""
    try:
        async with db.transaction() as session:
            row = await session.get(JobRun, name, with_for_update=True)
            if row is None:
                session.add(JobRun(name=name, last_run_on=today))
                return True
            if row.last_run_on >= today:
                return False
            row.last_run_on = today
            return True
    except IntegrityError:
        return False
