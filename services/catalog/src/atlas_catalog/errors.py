"""Errors the catalog service answers on purpose (rendered by the shared handler)."""

from typing import Any

from atlas_events.errors import AtlasError


class CatalogError(AtlasError):
    """Base of the catalog service's errors."""


class PrestationNotFound(CatalogError):
    """No prestation has this code."""

    status_code = 404


class PrestationVersionNotFound(CatalogError):
    """The prestation has no such version."""

    status_code = 404


class SpaceNotFound(CatalogError):
    """No ATLAS space has this identifier."""

    status_code = 404


class NoCoveringSpace(CatalogError):
    """No ATLAS space covers this commune (unknown commune or uncovered territory)."""

    status_code = 404


class DuplicatePrestation(CatalogError):
    """A prestation with this code already exists."""

    status_code = 409


class VersionConflict(CatalogError):
    """The version sent is not the current one: someone changed the prestation meanwhile."""

    status_code = 409

    def __init__(self, code: str, expected: int, current: int | None) -> None:
        message = (
            f"prestation {code} is at version {current}, not {expected}"
            if current is not None
            else f"prestation {code} changed concurrently; read it again"
        )
        super().__init__(
            message,
            detail={
                "message": message,
                "code": code,
                "expected_version": expected,
                "current_version": current,
            },
        )


class PrestationWithdrawnError(CatalogError):
    """The prestation is withdrawn and cannot change any more."""

    status_code = 409


class UnknownValues(CatalogError):
    """Some values are not in the catalog's vocabulary (domain, provider, audience, channel…)."""

    status_code = 422

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        names = ", ".join(f"{p['field']}={p['value']!r}" for p in problems)
        super().__init__(f"unknown values: {names}", detail=problems)


class InvalidCommuneCode(CatalogError):
    """The commune code is not a well-formed INSEE code."""

    status_code = 422
