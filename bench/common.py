"""What every benchmark module shares: result rows, percentiles and the printed table."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    """One measured figure and, when it has one, the raw baseline measured in the same run.

    `higher_is_better` says how to read the ratio: value / baseline for throughputs, baseline /
    value for latencies, so a ratio of 1.0 always means "as good as the raw baseline".
    """

    benchmark: str
    metric: str
    value: float
    unit: str
    baseline_name: str | None = None
    baseline: float | None = None
    higher_is_better: bool = True
    target: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0) or self.value == 0:
            return None
        assert self.baseline is not None
        return self.value / self.baseline if self.higher_is_better else self.baseline / self.value


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method="inclusive")[max(0, int(q * 10) - 1)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU time used so far: by the whole machine, and by each live process with its command."""

    machine: float
    processes: Mapping[int, tuple[str, float]]

    @classmethod
    def take(cls) -> CpuSnapshot:
        # /proc/stat's first line: user nice system idle iowait irq softirq steal (guest time is
        # inside user); busy is everything but idle and iowait.
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = sum(ticks) - ticks[3] - ticks[4]
        processes: dict[int, tuple[str, float]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):  # ended meanwhile
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                processes[int(entry.name)] = (command, cpu_seconds(int(entry.name)))
        return cls(busy / _TICKS, processes)


def cpu_used(
    before: CpuSnapshot, after: CpuSnapshot, classify: Callable[[int, str], str]
) -> dict[str, float]:
    """CPU seconds used between two snapshots by each class of process, and by the machine.

    A process started in between counts from zero; one that ended in between is missing from
    its class, but its time is in `machine`, and so in `other` (the machine's time no class
    accounts for: processes of no interest, ended ones, the kernel's interrupts).
    """
    used: dict[str, float] = {}
    for pid, (command, seconds) in after.processes.items():
        start = before.processes.get(pid)
        spent = seconds - start[1] if start is not None and start[0] == command else seconds
        name = classify(pid, command)
        used[name] = used.get(name, 0.0) + spent
    machine = after.machine - before.machine
    used["other"] = max(0.0, machine - sum(v for k, v in used.items() if k != "other"))
    used["machine"] = machine
    return used


def machine() -> str:
    """What the figures were measured on: CPU model and count, memory, kernel, Python."""
    model, memory = platform.processor() or platform.machine(), ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    return (
        f"{model} ({platform.machine()}), {os.cpu_count()} cores{memory},"
        f" {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def print_table(results: Sequence[Result]) -> None:
    header = (
        "benchmark",
        "metric",
        "value",
        "unit",
        "baseline",
        "baseline value",
        "ratio",
        "target",
    )
    rows = [
        (
            r.benchmark,
            r.metric,
            f"{r.value:,.2f}",
            r.unit,
            r.baseline_name or "-",
            "-" if r.baseline is None else f"{r.baseline:,.2f}",
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.target or "-",
        )
        for r in results
    ]
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(f"machine: {machine()}")
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def write_json(results: Sequence[Result], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine(),
        "results": [{**asdict(r), "ratio": r.ratio} for r in results],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


class LoadError(RuntimeError):
    """The server answered something other than 200, or closed the connection."""


@dataclass
class HttpLoad:
    """Latencies of GETs made by `concurrency` keep-alive HTTP/1.1 connections for a while.

    A load generator must cost the machine far less than the server it measures: httpx spends
    ≈0.7 ms of CPU per request, enough on two cores to stall its own event loop and add its
    pauses to every request in flight. This client writes pre-built requests on raw asyncio
    streams and reads only the status line, the headers and Content-Length bytes, with the
    collector paused while it measures.
    """

    host: str
    port: int
    headers: dict[str, str]
    concurrency: int = 8

    def _request(self, path: str) -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def run(self, paths: Sequence[str], seconds: float) -> list[float]:
        """Loop over `paths` from every connection for `seconds`; return each latency.

        Connections start at evenly spread places in `paths`, so a long list of distinct paths
        is not walked by every connection in step."""
        requests = [self._request(p) for p in paths]
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def connection(offset: int) -> None:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                index = offset * len(requests) // self.concurrency
                while time.perf_counter() < stop_at:
                    request = requests[index % len(requests)]
                    index += 1
                    started = time.perf_counter()
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = head[9:12]
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    await reader.readexactly(length)
                    latencies.append(time.perf_counter() - started)
                    if status != b"200":
                        raise LoadError(f"GET answered {head.split(b' ', 2)[1:2]}")
            finally:
                writer.close()

        was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            await asyncio.gather(*(connection(i) for i in range(self.concurrency)))
        finally:
            if was_enabled:
                gc.enable()
        return latencies
