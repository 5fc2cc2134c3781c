"""The baseline of figure 5: the same tickets in an indexed SQLite table behind a bare Litestar
endpoint, which is what a team would build instead of the gateway's queue.

``build(path, tickets, workspace)`` writes the table with the gateway's own filter fields
(``gateway.store.index_fields``), so both sides filter on the same values. ``GET /v1/tickets``
takes the gateway's query parameters for the filters the benchmark uses (``category``,
``connection``, ``vendor``, ``customer``, ``q``, ``updated_after``, ``limit``, ``cursor``),
newest update first, ties by reference (as the gateway's sorted sets order them), keyset-paged.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get

SCHEMA = """
CREATE TABLE tickets (
  ref TEXT PRIMARY KEY, conn TEXT, vendor TEXT, cat TEXT, customer TEXT, summary TEXT,
  updated REAL, body BLOB
);
CREATE INDEX by_updated ON tickets (updated, ref);
CREATE INDEX by_cat ON tickets (cat, updated, ref);
CREATE INDEX by_customer ON tickets (customer, updated, ref);
CREATE INDEX by_conn ON tickets (conn, cat, updated, ref);
CREATE INDEX by_vendor ON tickets (vendor, cat, updated, ref);
"""

MULTI = {"category": "cat", "connection": "conn", "vendor": "vendor", "customer": "customer"}


def build(path: str, tickets: Iterable[Any], workspace: str) -> int:
    """Write ``tickets`` (canonical ``Ticket`` structs) to a new SQLite file; return the count."""
    from gateway.store import index_fields

    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    encoder = msgspec.json.Encoder()
    count = 0

    def rows() -> Iterable[tuple[Any, ...]]:
        nonlocal count
        for ticket in tickets:  # streamed: a million tickets need not be in memory at once
            fields = index_fields(ticket, workspace)
            count += 1
            yield (ticket.ref, fields["conn"], fields["vendor"], fields["cat"], fields["customer"],
                   fields["summary"], float(fields["updated"]), encoder.encode(ticket))

    db.executemany("INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows())
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return count


def _cursor(updated: float, ref: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([updated, ref]).encode()).decode().rstrip("=")


def create_sqlite_app(path: str) -> Litestar:
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA query_only = 1")

    @get("/v1/tickets", sync_to_thread=False)
    def list_tickets(request: Request) -> Response:
        """A page of tickets, newest update first, filtered like the gateway's queue."""
        params = request.query_params
        where, args = [], []
        for name, column in MULTI.items():
            values = params.getall(name, [])
            if values:
                where.append(f"{column} IN ({', '.join('?' * len(values))})")
                args += values
        text = (params.get("q") or "").strip().lower()
        if text:
            where.append("summary LIKE ?")
            args.append(f"%{text}%")
        if params.get("updated_after"):
            where.append("updated >= ?")
            args.append(datetime.fromisoformat(params["updated_after"].replace("Z", "+00:00")).timestamp())
        if params.get("cursor"):
            padded = params["cursor"] + "=" * (-len(params["cursor"]) % 4)
            updated, ref = json.loads(base64.urlsafe_b64decode(padded))
            where.append("(updated < ? OR (updated = ? AND ref < ?))")
            args += [updated, updated, ref]
        limit = max(1, min(int(params.get("limit", 50)), 500))
        sql = "SELECT ref, updated, body FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY updated DESC, ref DESC LIMIT ?"
        rows = db.execute(sql, [*args, limit + 1]).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = _cursor(rows[-1][1], rows[-1][0]) if more and rows else None
        body = b'{"tickets":[' + b",".join(r[2] for r in rows) + b'],"next_cursor":' + json.dumps(next_cursor).encode() + b"}"
        return Response(content=body, media_type="application/json")

    return Litestar(route_handlers=[list_tickets], openapi_config=None, logging_config=None, debug=False)
