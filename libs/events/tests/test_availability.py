"""The crisis rule shared by catalog (what search shows) and requests (what intake accepts)."""

from __future__ import annotations

import pytest

from atlas_events.availability import offer

CHANNELS = ["guichet", "telephone", "en_ligne"]


@pytest.mark.parametrize(
    ("essential", "crisis_only", "crisis", "state", "open_", "shut"),
    [
        (False, False, False, "offered", CHANNELS, []),
        (True, False, False, "offered", CHANNELS, []),
        (False, True, False, "inactive", [], CHANNELS),
        # Crisis: non-essential loses the counter only; essential keeps everything.
        (False, False, True, "reduced", ["telephone", "en_ligne"], ["guichet"]),
        (True, False, True, "offered", CHANNELS, []),
        (False, True, True, "reduced", ["telephone", "en_ligne"], ["guichet"]),
        (True, True, True, "offered", CHANNELS, []),
    ],
)
def test_crisis_rule(
    essential: bool,
    crisis_only: bool,
    crisis: bool,
    state: str,
    open_: list[str],
    shut: list[str],
) -> None:
    now = offer(CHANNELS, essential=essential, crisis_only=crisis_only, crisis=crisis)
    assert (now.state, now.channels, now.suspended_channels) == (state, open_, shut)
    assert now.available == bool(open_)


def test_counter_only_prestation_is_suspended_in_a_crisis_unless_essential() -> None:
    assert offer(["guichet"], essential=False, crisis_only=False, crisis=True).state == "suspended"
    assert offer(["guichet"], essential=True, crisis_only=False, crisis=True).state == "offered"
