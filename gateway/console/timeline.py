"""A write's audit trail as bars over time: the API request, each job run, each vendor call.

``timeline`` turns the audit records of one write (``audit:write:{id}``) into rows with an
offset and a width in a fixed drawing width, so a template draws them as SVG rectangles with
no arithmetic of its own. Rows nest by span parentage (vendor calls under their job run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.audit import AuditRecord

WIDTH = 1000.0  # drawing units of the bar area (the SVG scales it to the page)
MIN_BAR = 3.0  # a 2 ms call stays visible on a 10 minute axis


@dataclass(frozen=True)
class Bar:
    """One audited span drawn as a bar."""

    label: str
    name: str
    kind: str
    started_at: datetime
    offset_ms: float
    duration_ms: float
    x: float
    width: float
    depth: int
    failed: bool
    detail: str


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass
class Timeline:
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    span_ms: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.bars


def _label(record: AuditRecord) -> str:
    attrs = record.attributes
    if record.kind == "api_write":
        return f"API {record.name}"
    if record.kind == "vendor_call":
        # "connectwise POST /v4_6_release/apis/3.0/service/tickets/1/notes": the tail says what
        # was called; the full name is in the bar's tooltip.
        vendor, _, call = record.name.partition(" ")
        method, _, path = call.partition(" ")
        segments = [s for s in path.split("/") if s]
        tail = "/".join(segments[-3:])
        short = f"{method} {'…/' if len(segments) > 3 else '/'}{tail}" if method else record.name
        return f"{attrs.get('gateway.vendor', vendor)} {short}"
    return record.name


def _detail(record: AuditRecord) -> str:
    attrs = record.attributes
    parts = []
    status = attrs.get("http.response.status_code")
    if status is not None:
        parts.append(f"HTTP {status}")
    outcome = attrs.get("gateway.outcome")
    if outcome:
        parts.append(str(outcome))
    if record.error:
        parts.append(record.error)
    return " · ".join(parts)


def _failed(record: AuditRecord) -> bool:
    status = record.attributes.get("http.response.status_code")
    return bool(record.error) or (isinstance(status, int) and status >= 400)


def _depths(records: list[AuditRecord]) -> dict[str, int]:
    parents = {r.span_id: r.parent_span_id for r in records}
    depths: dict[str, int] = {}
    for record in records:
        depth, parent, seen = 0, record.parent_span_id, set()
        while parent in parents and parent not in seen:
            seen.add(parent)
            depth += 1
            parent = parents[parent]
        depths[record.span_id] = min(depth, 3)
    return depths


def _tick_step(span_ms: float) -> float:
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000,
                 120_000, 300_000, 600_000, 1_800_000, 3_600_000):
        if span_ms / step <= 6:
            return float(step)
    return span_ms / 6


def _tick_label(ms: float) -> str:
    if ms < 1000:
        return f"{ms:g} ms"
    if ms < 60_000:
        return f"{ms / 1000:g} s"
    return f"{ms / 60_000:g} min"


def timeline(records: list[AuditRecord]) -> Timeline:
    """Bars for ``records`` (one write's audit trail), in start order."""
    if not records:
        return Timeline()
    records = sorted(records, key=lambda r: r.started_at)
    start = records[0].started_at
    end = max(r.started_at + timedelta(milliseconds=r.duration_ms) for r in records)
    span_ms = max((end - start).total_seconds() * 1000, 1.0)
    scale = WIDTH / span_ms
    depths = _depths(records)
    bars = []
    for record in records:
        offset = (record.started_at - start).total_seconds() * 1000
        x = offset * scale
        width = max(record.duration_ms * scale, MIN_BAR)
        bars.append(Bar(
            label=_label(record), name=record.name, kind=record.kind or "span", started_at=record.started_at,
            offset_ms=round(offset, 1), duration_ms=record.duration_ms, x=round(min(x, WIDTH - MIN_BAR), 2),
            width=round(min(width, WIDTH - min(x, WIDTH - MIN_BAR)), 2), depth=depths[record.span_id],
            failed=_failed(record), detail=_detail(record),
        ))
    step = _tick_step(span_ms)
    ticks = [Tick(round(i * step * scale, 2), _tick_label(i * step)) for i in range(int(span_ms // step) + 1)]
    return Timeline(bars, ticks, round(span_ms, 1))
