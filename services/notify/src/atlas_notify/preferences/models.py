"""Preferences: per user, category and channel; `critical` ignores them."""

from pydantic import BaseModel, Field
from sqlmodel import Field as SQLField

from atlas_events.schemas.notify import NotificationChannel
from atlas_notify.db import NotifyModel
from atlas_notify.templates.models import CATEGORY_PATTERN


class PreferenceBase(BaseModel):
    category: str = Field(pattern=CATEGORY_PATTERN)
    channel: NotificationChannel
    enabled: bool


class Preference(NotifyModel, table=True):
    """One user's choice for a category on a channel; no row means enabled."""

    __tablename__ = "notify_preferences"

    user_id: str = SQLField(primary_key=True, max_length=200)
    category: str = SQLField(primary_key=True, max_length=40)
    channel: str = SQLField(primary_key=True, max_length=16)
    enabled: bool = True


class PreferencePublic(PreferenceBase):
    user_id: str
