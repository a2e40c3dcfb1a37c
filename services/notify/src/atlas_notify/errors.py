"""Errors the notify service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class NotifyError(AtlasError):
    """Base of the notify service's errors."""


class TemplateNotFound(NotifyError):
    """No template with this code (or version)."""

    status_code = 404


class TemplateInvalid(NotifyError):
    """The template cannot be saved: syntax, undeclared variables or an SMS too long."""

    status_code = 422


class MissingVariables(NotifyError):
    """The parameters do not fill every variable the template uses."""

    status_code = 422


class NotificationNotFound(NotifyError):
    """No notification with this id visible to the caller."""

    status_code = 404


class IdempotencyKeyRequired(NotifyError):
    """Direct sends need an `Idempotency-Key` header."""

    status_code = 400


class IdempotencyConflict(NotifyError):
    """The idempotency key was already used for a different request."""

    status_code = 409


class NotCancellable(NotifyError):
    """Nothing of this notification is still waiting to be sent."""

    status_code = 409


class NothingToReplay(NotifyError):
    """The notification has no failed delivery in the dead-letter queue."""

    status_code = 409


class InvalidRecipient(NotifyError):
    """The recipient cannot receive this notification."""

    status_code = 422


class IllegalTransition(NotifyError):
    """A delivery status change the state machine forbids (terminal states never change)."""

    status_code = 409


class InboxItemNotFound(NotifyError):
    """No inbox item with this id for the caller."""

    status_code = 404
