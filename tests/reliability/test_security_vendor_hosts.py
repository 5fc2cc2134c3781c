"""Vendor base URLs come only from configuration: no request field, header or reference can
point the gateway at another host, and no vendor answer can either (paging links to another
host are not followed with the connection's credentials).

A canary server on loopback counts every request it gets; hostile values naming it go into
every field the API takes, and the simulators' paging hints are rewritten to point at it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.models import TicketQuery
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from
from gateway.testing.simulator import serve_asgi_in_thread
from gateway.testing.workers import drain

from reliability_kit import gateway_tables, serve_psas


class Canary:
    """An ASGI app that answers everything with 200 ``{}`` and counts the requests."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.hits.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"{}"})


class PagingPointsAway:
    """ASGI middleware: every JSON answer of a simulator names a next page on the canary
    (a ``Link: rel="next"`` header, ``pageDetails.nextPageUrl``, ``next_page_url``)."""

    def __init__(self, app: Any, elsewhere: str) -> None:
        self.app = app
        self.elsewhere = elsewhere

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode()
        first_page = "page=" not in query.lower() or "page=1" in query.lower()
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        next_url = f"{self.elsewhere}{scope['path']}?page=2"
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            if isinstance(data.get("pageDetails"), dict):
                data["pageDetails"]["nextPageUrl"] = next_url
            data["next_page_url"] = next_url
            body = json.dumps(data).encode()
        if first_page:
            headers.append((b"link", f'<{next_url}>; rel="next"'.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 500), "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def rig(redis_client: redis.Redis) -> Iterator[dict[str, Any]]:
    canary = Canary()
    canary_server = serve_asgi_in_thread(canary)
    handles = serve_psas()
    key = new_api_key()
    tables = gateway_tables(handles, {key: ALL_SCOPES}, timeout_seconds=5.0,
                            gateway={"max_attempts": 2, "retry_base_seconds": 0.01})
    gw = Gateway(settings_from(tables), redis_client)
    try:
        with TestClient(create_app(gw)) as api:
            yield {"canary": canary, "elsewhere": canary_server.base_url, "handles": handles, "gw": gw, "api": api,
                   "headers": {"Authorization": f"Bearer {key}"}}
    finally:
        gw.close()
        for h in handles:
            h.stop()
        canary_server.stop()


def hostile_values(elsewhere: str) -> list[str]:
    host = elsewhere.removeprefix("http://")
    return [
        elsewhere, f"{elsewhere}/x", f"//{host}/x", f"@{host}", f"1@{host}", f"1/../../..//{host}",
        f"..%2F..%2F{host}", f"1?url={elsewhere}", f"1#{elsewhere}", f"%2F%2F{host}%2Fx", f"1\\@{host}",
    ]


def test_no_request_field_header_or_reference_reaches_another_host(rig: dict[str, Any]) -> None:
    api, gw, headers, canary = rig["api"], rig["gw"], rig["headers"], rig["canary"]
    values = hostile_values(rig["elsewhere"])
    host = rig["elsewhere"].removeprefix("http://")
    sneaky = {**headers, "Host": host, "X-Forwarded-Host": host, "Forwarded": f"host={host}",
              "X-Original-URL": rig["elsewhere"], "Referer": rig["elsewhere"]}
    answers = []
    for h in rig["handles"]:
        conn, ticket = h.connection, h.sim.sample_ticket_id()
        for value in values:
            ref = f"{conn}:{value}"
            for path in (f"/v1/tickets/{ref}", f"/v1/tickets/{ref}/statuses"):
                answers.append(api.get(path, headers=sneaky))
            answers.append(api.post(f"/v1/tickets/{ref}/replies", json={"text": value}, headers=sneaky))
            real = f"{conn}:{ticket}"
            answers.append(api.post(f"/v1/tickets/{real}/replies", json={"text": value, "internal": True}, headers=sneaky))
            answers.append(api.post(f"/v1/tickets/{real}/status", json={"status_id": value}, headers=sneaky))
            answers.append(api.post(f"/v1/tickets/{real}/time-entries",
                                    json={"minutes": 5, "notes": value, "member": value}, headers=sneaky))
            answers.append(api.post("/v1/tickets", json={
                "connection": conn, "summary": value, "description": value, "customer_id": value,
                "fields": {**h.sim.minimal_create_fields(), "summary": value}}, headers=sneaky))
            answers.append(api.post("/v1/tickets", json={
                "connection": value, "summary": "x", "fields": {}}, headers=sneaky))
            answers.append(api.get("/v1/tickets", params={"connection": value, "q": value}, headers=sneaky))
            answers.append(api.get(f"/v1/connections/{conn}/ticket-form", params={"refresh": "true"}, headers=sneaky))
    assert drain(gw, timeout=120)
    assert not canary.hits, f"the gateway called another host: {canary.hits[:5]}"
    # (Whether each of these answers is a clear 4xx is test_fuzz_bad_input's business.)
    assert len(answers) > 300


def test_paging_links_to_another_host_are_never_followed(rig: dict[str, Any]) -> None:
    api, gw, headers, canary = rig["api"], rig["gw"], rig["headers"], rig["canary"]
    for h in rig["handles"]:
        h.sim.app.app = PagingPointsAway(h.sim.app.app, rig["elsewhere"])
    for h in rig["handles"]:
        ticket = h.sim.sample_ticket_id()
        for call in (
            lambda: gw.call(h.connection, "gateway_ticket_list", query=TicketQuery(open_only=False, page_size=5)),
            lambda: gw.call(h.connection, "gateway_ticket_thread", ticket_id=ticket),
            lambda: gw.call(h.connection, "gateway_customer_list"),
        ):
            try:
                call()
            except Exception:  # refusing to follow is a fine answer; calling the canary is not
                pass
        api.get(f"/v1/tickets/{h.connection}:{ticket}", headers=headers)
    assert not canary.hits, f"a paging link took the gateway to another host: {canary.hits[:5]}"
