"""Test mode: simulated recipients whose outcome is fixed, so CI and integrators can rely on it."""

from enum import StrEnum


class Simulated(StrEnum):
    DELIVER = "deliver"
    PERMANENT_FAILURE = "permanent_failure"
    TEMPORARY_FAILURE = "temporary_failure"


SIMULATED_EMAILS: dict[str, Simulated] = {
    "simulate-delivered@notify.atlas.test": Simulated.DELIVER,
    "simulate-permanent-failure@notify.atlas.test": Simulated.PERMANENT_FAILURE,
    "simulate-temporary-failure@notify.atlas.test": Simulated.TEMPORARY_FAILURE,
}
SIMULATED_PHONES: dict[str, Simulated] = {
    "+33700900000": Simulated.DELIVER,
    "+33700900111": Simulated.PERMANENT_FAILURE,
    "+33700900222": Simulated.TEMPORARY_FAILURE,
}
# Agents that need no contact entry: their e-mail and phone are the simulator's.
SIMULATED_AGENTS: dict[str, tuple[str, str]] = {
    "0000000001": ("simulate-delivered@notify.atlas.test", "+33700900000"),
    "0000000002": (
        "simulate-permanent-failure@notify.atlas.test",
        "+33700900111",
    ),
    "0000000003": (
        "simulate-temporary-failure@notify.atlas.test",
        "+33700900222",
    ),
}


def simulated(channel: str, address: str | None) -> Simulated | None:
    """The simulated outcome of sending to `address`, or None for a real address."""
    if address is None:
        return None
    if channel == "email":
        return SIMULATED_EMAILS.get(address.lower())
    if channel == "sms":
        return SIMULATED_PHONES.get(address)
    return None
