"""The simulator's HTTP conventions, as ConnectWise has them: error bodies, bare-array lists
with ``conditions``, ``orderBy``, ``page``/``pageSize`` and a ``Link`` header.

Kept apart from ``simulator`` so the resource handlers there read as the API they serve.
"""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Response

from gateway_connectwise.conditions import ConditionsError, parse, resolve, unknown_fields
from gateway_connectwise.constants import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


def stamp(moment: datetime) -> str:
    """A timestamp as ConnectWise writes it: UTC to the second, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    """The current time to the second (ConnectWise keeps no fractions)."""
    return datetime.now(UTC).replace(microsecond=0)


class CwApiError(Exception):
    """An error answered in ConnectWise's shape: ``{"code", "message", "errors": [...]}``."""

    def __init__(self, status: int, code: str, message: str, errors: Iterable[dict[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = list(errors)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


def problem(code: str, message: str, resource: str, field: str) -> dict[str, str]:
    """One entry of an error body's ``errors``."""
    return {"code": code, "message": message, "resource": resource, "field": field}


def invalid(resource: str, errors: list[dict[str, str]]) -> CwApiError:
    """The 400 ConnectWise answers for a record it refuses."""
    return CwApiError(400, "InvalidObject", f"{resource} object is invalid", errors)


def not_found(what: str, record_id: Any) -> CwApiError:
    return CwApiError(404, "NotFound", f"{what} {record_id} not found")


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        content=msgspec.json.encode(payload),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


@dataclass
class Call:
    """One request, read: query (names case-folded), path parameters, JSON body or form."""

    method: str
    url: str
    origin: str
    headers: Mapping[str, str]
    query: dict[str, str] = field(default_factory=dict)
    path: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    # Form fields; a file is (filename, content_type, bytes).
    form: dict[str, Any] | None = None

    def param(self, name: str) -> str | None:
        return self.query.get(name.casefold())

    def record(self, resource: str) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        if not isinstance(self.body, dict):
            raise CwApiError(400, "InvalidObject", f"{resource} object is invalid: the body must be a JSON object")
        return self.body


def _int_param(call: Call, name: str, default: int) -> int:
    raw = call.param(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise CwApiError(400, "InvalidObject", f"{name} must be an integer") from None


def _order_keys(order_by: str) -> list[tuple[str, bool]]:
    """``"a asc, b desc"`` as ``[("a", False), ("b", True)]``."""
    keys = []
    for part in order_by.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].casefold() not in ("asc", "desc")):
            raise CwApiError(400, "InvalidObject", f"orderBy {order_by!r} is not 'field [asc|desc], ...'")
        keys.append((words[0], len(words) == 2 and words[1].casefold() == "desc"))
    return keys


def _sort(records: list[dict[str, Any]], keys: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    for path, descending in reversed(keys):  # stable sorts, last key first

        def key(record: dict[str, Any], path: str = path) -> tuple[bool, Any]:
            value = resolve(record, path)
            return (value is not None, value if value is not None else 0)

        records.sort(key=key, reverse=descending)
    return records


def _fields_of(rows: list[dict[str, Any]]) -> set[str]:
    """The field names a condition or sort may use: the records' keys and their ``_info``'s."""
    return set(rows[0]) | set(rows[0].get("_info") or {}) if rows else set()


def _invalid_fields(paths: list[str]) -> CwApiError:
    return CwApiError(
        400,
        "InvalidObject",
        "conditions object is invalid",
        [problem("InvalidField", f"Unknown field {p!r}", "conditions", p) for p in paths],
    )


def _with_page(url: str, page: int) -> str:
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True) if k.casefold() != "page"]
    query.append(("page", str(page)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def filtered(call: Call, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records matching the call's ``conditions``, in ``orderBy`` order (else as stored)."""
    rows = list(records)
    known = _fields_of(rows)
    text = call.param("conditions")
    if text:
        try:
            condition = parse(text)
        except ConditionsError as exc:
            raise CwApiError(
                400,
                "InvalidObject",
                "conditions object is invalid",
                [problem("InvalidConditions", str(exc), "conditions", "conditions")],
            ) from None
        unknown = unknown_fields(condition, known) if rows else []
        if unknown:
            raise _invalid_fields(unknown)
        rows = [r for r in rows if condition.matches(r)]
    order_by = call.param("orderBy")
    if order_by:
        keys = _order_keys(order_by)
        folded = {k.casefold() for k in known} | {"_info"}
        unknown = [path for path, _ in keys if known and path.split("/")[0].casefold() not in folded]
        if unknown:
            raise _invalid_fields(unknown)
        rows = _sort(rows, keys)
    return rows


def page_links(url: str, page: int, last: int) -> str:
    """The ``Link`` header of page ``page`` of ``last``: ``first`` and ``last`` always, ``prev``
    and ``next`` where those pages exist. Sent on every page, the last one included, so a client
    that reads a missing header as "unknown, try the next page" (pyconnectwise's Automate
    fallback) stops at the end [C pycw ``parse_link_headers``; V lazyadmin's example]."""
    relations = [("first", 1)]
    if page > 1:
        relations.append(("prev", min(page - 1, last)))
    if page < last:
        relations.append(("next", page + 1))
    relations.append(("last", last))
    return ", ".join(f'<{_with_page(url, number)}>; rel="{rel}"' for rel, number in relations)


def list_response(call: Call, records: Iterable[dict[str, Any]]) -> Response:
    """A bare JSON array of one page with its ``Link`` header (``page_links``). ``pageSize``
    defaults to 25 and is capped at 1000; ``page`` is 1-based."""
    rows = filtered(call, records)
    size = max(1, min(_int_param(call, "pageSize", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE))
    page = max(1, _int_param(call, "page", 1))
    last = max(1, -(-len(rows) // size))
    items = rows[(page - 1) * size : page * size]
    return json_response(copy.deepcopy(items), headers={"Link": page_links(call.url, page, last)})
