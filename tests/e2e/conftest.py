"""The end-to-end tests' shared fixture, and their e2e_platform helper module made importable
(importlib mode)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # the e2e_platform helper module

from collections.abc import Callable, Iterator

import pytest
from e2e_platform import Platform, start_platform


@pytest.fixture
def platform(
    tmp_path: Path, kafka_bootstrap: str, database_url: Callable[[], str]
) -> Iterator[Platform]:
    # Equal ends mean no quiet hours: the staff's in-app notice is delivered whatever the hour.
    quiet = {"ATLAS_NOTIFY_QUIET_HOURS_START": "00:00", "ATLAS_NOTIFY_QUIET_HOURS_END": "00:00"}
    with start_platform(
        tmp_path / "atlas",
        kafka_bootstrap,
        lambda _service: database_url(),
        extra_env={"notify": quiet},
    ) as started:
        yield started
