"""Errors the mobility service answers on purpose (rendered by the shared handler)."""

from atlas_events.errors import AtlasError


class MobilityError(AtlasError):
    """Base of the mobility service's errors."""


class InvalidCloudEvent(MobilityError):
    """The body is not a well-formed CloudEvents structured JSON event."""

    status_code = 400


class UnsupportedEventType(MobilityError):
    """The event type is not an HR mutation event this endpoint takes."""

    status_code = 400


class UnsupportedMediaType(MobilityError):
    """The body must be application/cloudevents+json (or application/json)."""

    status_code = 415


class BodyTooLarge(MobilityError):
    """The body is larger than an HR mutation event can be."""

    status_code = 413


class InvalidMutation(MobilityError):
    """The event's data does not follow the HR mutation contract (CONTRACTS.md §1)."""

    status_code = 422


class MissingParameter(MobilityError):
    """A query parameter this caller must give is missing."""

    status_code = 422


class DossierNotFound(MobilityError):
    """No dossier for that mutation_id."""

    status_code = 404


class MissionNotFound(MobilityError):
    """No mission has that mission_id."""

    status_code = 404
