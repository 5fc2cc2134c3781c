"""Building Autotask's JSON query filters.

A query body is ``{"MaxRecords": n, "IncludeFields": [...], "filter": [condition, ...]}``; the
top-level conditions are and-ed. A condition is ``{"op", "field", "value"}`` (plus ``"udf": true``
for user-defined fields), or a group ``{"op": "and"|"or", "items": [...]}``. Operators: ``eq noteq
gt gte lt lte beginsWith endsWith contains exist notExist in notIn``. Field names are
case-insensitive; datetimes are ISO 8601 in UTC; ``null`` is not a value.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

Condition = dict[str, Any]


def condition(op: str, field: str, value: Any = None, *, udf: bool = False) -> Condition:
    """One ``{"op", "field", "value"}`` condition (datetimes formatted for Autotask)."""
    cond: Condition = {"op": op, "field": field}
    if op not in ("exist", "notExist"):
        cond["value"] = format_value(value)
    if udf:
        cond["udf"] = True
    return cond


def eq(field: str, value: Any) -> Condition:
    return condition("eq", field, value)


def gte(field: str, value: Any) -> Condition:
    return condition("gte", field, value)


def gt(field: str, value: Any) -> Condition:
    return condition("gt", field, value)


def in_(field: str, values: list[Any]) -> Condition:
    return condition("in", field, list(values))


def not_in(field: str, values: list[Any]) -> Condition:
    return condition("notIn", field, list(values))


def exist(field: str) -> Condition:
    return condition("exist", field)


def any_of(*items: Condition) -> Condition:
    """An ``or`` group."""
    return {"op": "or", "items": list(items)}


def format_datetime(value: datetime) -> str:
    """UTC, second precision, with ``Z``: ``2024-05-01T14:00:00Z`` (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, (list, tuple)):
        return [format_value(v) for v in value]
    return value


def body(filters: list[Condition], *, max_records: int | None = None, include_fields: list[str] | None = None) -> dict[str, Any]:
    """A query body; with no conditions it asks for every record (``exist id``)."""
    out: dict[str, Any] = {"filter": filters or [exist("id")]}
    if max_records is not None:
        out["MaxRecords"] = max_records
    if include_fields:
        out["IncludeFields"] = include_fields
    return out


def parse_datetime(value: Any) -> datetime | None:
    """An Autotask datetime (``2020-10-05T10:59:57.537``, ``...Z``, 7 fraction digits) as aware UTC."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits):]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)
