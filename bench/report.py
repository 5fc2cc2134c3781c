"""A figure, its one-line form and the results file.

Every figure is a value over a baseline measured in the same run. ``Figure.line`` prints
``name: value unit (baseline ..., ratio ..., target ...)`` and ends with ``MISS`` when the
target is not met; a figure that cannot run yet prints ``name: skipped (reason)``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Comparison = Literal["<=", ">=", "=="]


@dataclass
class Figure:
    """One benchmark figure. ``target`` applies to ``ratio`` unless ``target_on`` is "value"."""

    name: str
    value: float | None = None
    unit: str = ""
    baseline: float | None = None
    baseline_label: str = ""
    target: float | None = None
    comparison: Comparison = "<="
    target_on: Literal["ratio", "value"] = "ratio"
    target_note: str = ""
    note: str = ""  # printed after the unit, e.g. "p50" or "largest of 4"
    skipped: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """True or False against the target; None when there is no target (or no value)."""
        if self.error:
            return False
        if self.target is None or self.skipped:
            return None
        measured = self.ratio if self.target_on == "ratio" else self.value
        if measured is None:
            return False
        if self.comparison == "<=":
            return measured <= self.target
        if self.comparison == ">=":
            return measured >= self.target
        return measured == self.target

    def line(self) -> str:
        if self.skipped:
            return f"{self.name}: skipped ({self.skipped})"
        if self.error:
            return f"{self.name}: failed ({self.error}) MISS"
        parts = []
        label = f" {self.baseline_label}" if self.baseline_label else ""
        if self.baseline is not None:
            parts.append(f"baseline {fmt(self.baseline)} {self.unit}{label}")
            ratio = self.ratio
            close = ratio is not None and self.target is not None and abs(ratio - self.target) < 0.01
            parts.append(f"ratio {ratio:.4f}" if close else f"ratio {fmt(ratio, ratio=True)}")
        else:
            parts.append(f"baseline: {self.baseline_label or 'none'}")
        if self.target is not None:
            on_ratio = self.target_on == "ratio"
            shown = fmt(self.target, ratio=on_ratio) if on_ratio or self.target else "0"
            parts.append(f"target {'ratio ' if on_ratio else ''}{self.comparison} {shown}")
        else:
            parts.append(f"target {self.target_note or 'none'}")
        note = f" {self.note}" if self.note else ""
        text = f"{self.name}: {fmt(self.value)} {self.unit}{note} ({', '.join(parts)})"
        if self.met is False:
            text += " MISS"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        data["line"] = self.line()
        return data


def fmt(value: float | None, *, ratio: bool = False) -> str:
    if value is None:
        return "n/a"
    if ratio:
        return f"{value:.2f}"
    if value == int(value) and abs(value) >= 1:
        return f"{int(value)}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if value else "0"


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (0-100) by linear interpolation; ``values`` need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99, mean and max of a list of durations in seconds, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    mem_total = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": affinity,
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": mem_total,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def write_results(path: Path, figures: list[Figure], *, mode: str, started: float, extra: dict[str, Any]) -> None:
    data = {
        "mode": mode,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": machine(),
        **extra,
        "figures": [f.to_json() for f in figures],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
