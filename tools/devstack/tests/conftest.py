"""Helpers shared by the devstack tests, as fixtures (importlib mode cannot import conftest)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited; it only waits for its parent (or init) to reap it.
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _wait_until_dead(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [pid for pid in pids if _process_alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


@pytest.fixture
def free_port() -> Callable[[], int]:
    """Return a function giving a TCP port nothing listens on right now."""
    return _free_port


@pytest.fixture
def process_alive() -> Callable[[int], bool]:
    """Return a function telling whether a pid is alive (zombies count as dead)."""
    return _process_alive


@pytest.fixture
def wait_until_dead() -> Callable[..., list[int]]:
    """Return a function polling until pids are dead; it returns those still alive."""
    return _wait_until_dead
