"""What every benchmark module shares: result rows, percentiles and the printed table."""

from __future__ import annotations

import json
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


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


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


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
