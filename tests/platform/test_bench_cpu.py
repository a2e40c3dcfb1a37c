"""The benchmarks' CPU accounting (bench/common.py): each process class is charged its own time."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from atlas_devstack.paths import repo_module

# For each line it reads, spends that many seconds of its own CPU time and says so; ends at EOF.
BURNER = """
import sys, time
sys.stdout.write("ready\\n"); sys.stdout.flush()
for line in sys.stdin:
    until = time.process_time() + float(line)
    while time.process_time() < until:
        pass
    sys.stdout.write("done\\n"); sys.stdout.flush()
"""


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return repo_module("bench_common", "bench/common.py")


class Burner:
    """A child process that spends CPU time when told to."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", BURNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.pid = self.process.pid
        assert self._line() == "ready\n"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline()

    def burn(self, seconds: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        assert self._line() == "done\n"

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


@contextlib.contextmanager
def burner() -> Iterator[Burner]:
    child = Burner()
    try:
        yield child
    finally:
        child.close()


def test_cpu_used_charges_each_class_with_what_its_processes_spent(common: ModuleType) -> None:
    with burner() as child:
        child.burn(0.5)  # before the first snapshot: not charged
        before = common.CpuSnapshot.take()
        child.burn(0.5)
        after = common.CpuSnapshot.take()

    used = common.cpu_used(before, after, lambda pid, _: "burner" if pid == child.pid else "x")
    assert 0.45 <= used["burner"] <= 0.75, used
    # The machine's time covers every process's, and `other` is what no class accounts for.
    assert used["machine"] >= used["burner"] * 0.9, used
    assert used["other"] == pytest.approx(
        max(0.0, used["machine"] - used["burner"] - used.get("x", 0.0))
    )


def test_cpu_used_counts_a_process_started_in_between_from_zero(common: ModuleType) -> None:
    before = common.CpuSnapshot.take()
    with burner() as child:
        child.burn(0.3)
        after = common.CpuSnapshot.take()
        spent = common.cpu_seconds(child.pid)

    assert child.pid not in before.processes
    used = common.cpu_used(before, after, lambda pid, _: "new" if pid == child.pid else "other")
    assert used["new"] == pytest.approx(spent, abs=0.02)
    assert used["new"] >= 0.3
