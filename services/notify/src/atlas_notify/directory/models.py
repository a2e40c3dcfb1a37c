"""Where notifications go: agents' contact details (from HR data) and the spaces' staff."""

from datetime import datetime

from pydantic import BaseModel, Field
from sqlmodel import Field as SQLField

from atlas_events.schemas._base import EMAIL_PATTERN, Flag
from atlas_notify.db import NotifyModel, timestamp

PHONE_PATTERN = r"^\+[1-9][0-9]{1,14}$"


class ContactBase(BaseModel):
    """An agent's contact details."""

    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    given_name: str | None = Field(default=None, max_length=200)
    family_name: str | None = Field(default=None, max_length=200)


class ContactUpdate(ContactBase):
    """Contact details set through the API (HR systems, ops)."""


class Contact(NotifyModel, table=True):
    """One agent's contact details, kept from the latest event (or API call) that carried them."""

    __tablename__ = "notify_contacts"

    agent_id: str = SQLField(primary_key=True, max_length=10)
    email: str | None = SQLField(default=None, max_length=254)
    phone: str | None = SQLField(default=None, max_length=16)
    given_name: str | None = SQLField(default=None, max_length=200)
    family_name: str | None = SQLField(default=None, max_length=200)
    source: str = SQLField(max_length=200, description="Event id or API caller that set it.")
    updated_at: datetime = timestamp()


class ContactPublic(ContactBase):
    agent_id: str
    source: str
    updated_at: datetime


class StaffMemberBase(BaseModel):
    """A staff member of a space, as the directory knows them."""

    staff_id: str = Field(min_length=1, max_length=200, description="Their token's `sub`.")
    display_name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_PATTERN)
    phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    digest: Flag = Field(True, description="Non-critical e-mails come in the daily digest.")
    active: Flag = True


class StaffMember(NotifyModel, table=True):
    """The staff directory: who works at which space and how to reach them."""

    __tablename__ = "notify_staff"

    staff_id: str = SQLField(primary_key=True, max_length=200)
    atlas_id: str = SQLField(max_length=64, index=True)
    display_name: str = SQLField(max_length=200)
    email: str | None = SQLField(default=None, max_length=254)
    phone: str | None = SQLField(default=None, max_length=16)
    digest: bool = True
    active: bool = True
    updated_at: datetime = timestamp()


class StaffMemberPublic(StaffMemberBase):
    atlas_id: str


class SpaceName(NotifyModel, table=True):
    """Names of the ATLAS spaces, kept from the catalog's snapshots for the texts."""

    __tablename__ = "notify_spaces"

    atlas_id: str = SQLField(primary_key=True, max_length=64)
    name: str = SQLField(max_length=200)
    version: int = 0
