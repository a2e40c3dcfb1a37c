"""Versioned notification templates: one row per (code, version), French texts per channel."""

from datetime import datetime

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field as SQLField

from atlas_events.schemas._base import INT32_MAX
from atlas_events.schemas.notify import NotificationChannel
from atlas_notify.db import NotifyModel, timestamp

CODE_PATTERN = r"^[a-z0-9_.]{1,64}$"
CATEGORY_PATTERN = r"^[a-z0-9_]{1,40}$"
CRITICAL = "critical"


class TemplateBase(BaseModel):
    """What an author writes: the texts per channel and the variables they use."""

    category: str = Field(
        pattern=CATEGORY_PATTERN,
        description="Preference category; `critical` bypasses preferences and quiet hours.",
    )
    description: str | None = Field(default=None, max_length=500)
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Every variable the texts use, with an example value (previews, SMS length).",
    )
    email_subject: str | None = Field(default=None, max_length=300)
    email_body: str | None = Field(default=None, max_length=20000)
    sms_body: str | None = Field(default=None, max_length=2000)
    in_app_title: str | None = Field(default=None, max_length=300)
    in_app_body: str | None = Field(default=None, max_length=5000)

    @field_validator("variables")
    @classmethod
    def _identifiers(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not name.isidentifier()]
        if bad:
            raise ValueError(f"variable names must be identifiers: {bad}")
        return value


class TemplateCreate(TemplateBase):
    """A new version of a template (the first one creates the code)."""


class Template(NotifyModel, table=True):
    """One version of a template; the highest version is the one used for new notifications."""

    __tablename__ = "notify_templates"
    __table_args__ = (UniqueConstraint("code", "version", name="uq_notify_templates_version"),)

    id: int | None = SQLField(default=None, primary_key=True)
    code: str = SQLField(max_length=64, index=True)
    version: int
    category: str = SQLField(max_length=40)
    description: str | None = SQLField(default=None, max_length=500)
    variables: dict[str, str] = SQLField(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    email_subject: str | None = SQLField(default=None, max_length=300)
    email_body: str | None = SQLField(default=None, sa_type=Text)
    sms_body: str | None = SQLField(default=None, sa_type=Text)
    in_app_title: str | None = SQLField(default=None, max_length=300)
    in_app_body: str | None = SQLField(default=None, sa_type=Text)
    sms_encoding: str | None = SQLField(default=None, max_length=8)
    sms_segments: int | None = None
    created_by: str = SQLField(max_length=200)
    created_at: datetime = timestamp()

    def channels(self) -> list[NotificationChannel]:
        """The channels this template has texts for."""
        found: list[NotificationChannel] = []
        if self.email_body:
            found.append("email")
        if self.sms_body:
            found.append("sms")
        if self.in_app_body:
            found.append("in_app")
        return found


class TemplatePublic(TemplateBase):
    """A template version as the API shows it."""

    code: str
    version: int
    sms_encoding: str | None
    sms_segments: int | None
    channels: list[NotificationChannel]
    created_by: str
    created_at: datetime


class PreviewRequest(BaseModel):
    """Parameters to render a template with (a version, else the latest)."""

    params: dict[str, str] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=INT32_MAX)


class RenderedMessage(BaseModel):
    """A template rendered for every channel it has texts for."""

    code: str
    version: int
    category: str
    email_subject: str | None = None
    email_body: str | None = None
    sms_body: str | None = None
    sms_encoding: str | None = None
    sms_segments: int | None = None
    in_app_title: str | None = None
    in_app_body: str | None = None
