"""Configured secrets (and the credentials built from them) never reach a log line, a span, an
audit record, a dead letter, a Redis value or an error body, even when a vendor echoes the
request's credentials back in its error answers. The suite greps every output.

(The worker and API *process* outputs are grepped by the chaos suite, which runs them as
real processes.)
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from
from gateway.testing.workers import drain

from reliability_kit import WRITE_METHODS, SimHandle, gateway_tables, secrets_of, serve_psas

TRIGGER = "990099"  # a ticket id: every vendor call about it is answered with an echo


class EchoCredentials:
    """ASGI middleware: keeps every credential header the gateway sends, and answers calls
    about ticket ``TRIGGER`` (or writes mentioning it) with an error that echoes them all."""

    CREDENTIAL_HEADERS = {"authorization", "clientid", "secret", "apiintegrationcode"}

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: set[str] = set()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        for name, value in headers.items():
            if name in self.CREDENTIAL_HEADERS:
                self.seen.add(value)
                if " " in value:
                    self.seen.add(value.split(" ", 1)[1])
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        target = f"{scope['path']}?{scope.get('query_string', b'').decode()}"
        if TRIGGER in target or (scope["method"] in WRITE_METHODS and TRIGGER.encode() in body):
            echo = json.dumps({"message": f"invalid credentials {headers}", "errors": [{"message": str(headers)}],
                               "headers": headers}).encode()
            status = 400 if scope["method"] in WRITE_METHODS else 500
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(echo)).encode())]})
            await send({"type": "http.response.body", "body": echo})
            return
        replay = iter(messages)

        async def replayed() -> dict:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replayed, send)


@pytest.fixture
def leaky(redis_client: redis.Redis, caplog: pytest.LogCaptureFixture) -> Iterator[dict[str, Any]]:
    caplog.set_level(logging.DEBUG)
    handles = serve_psas()
    echoes = []
    for h in handles:
        echo = EchoCredentials(h.sim.app.app)
        h.sim.app.app = echo
        echoes.append(echo)
    key = new_api_key()
    tables = gateway_tables(handles, {key: ALL_SCOPES}, timeout_seconds=5.0, gateway={"max_attempts": 2, "retry_base_seconds": 0.01})
    gw = Gateway(settings_from(tables), redis_client)
    spans = InMemorySpanExporter()
    gw.tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    try:
        with TestClient(create_app(gw)) as api:
            yield {"handles": handles, "echoes": echoes, "gw": gw, "api": api, "spans": spans,
                   "headers": {"Authorization": f"Bearer {key}"}}
    finally:
        gw.close()
        for h in handles:
            h.stop()


def _forbidden(handles: list[SimHandle], echoes: list[EchoCredentials]) -> list[str]:
    values = set(secrets_of(handles))
    values |= {base64.b64encode(v.encode()).decode().rstrip("=") for v in list(values)}
    for echo in echoes:
        values |= {v for v in echo.seen if len(v) >= 8}
    return sorted(values, key=len, reverse=True)


def _redis_dump(client: redis.Redis) -> str:
    """Every key and value in Redis but the OAuth tokens plugins share between processes
    there on purpose (``plugin:{connection}:token``: the store, not an output)."""
    parts = []
    for key in client.scan_iter(count=1000):
        if key.startswith(b"plugin:") and b":token" in key:
            continue
        kind = client.type(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += client.zrange(key, 0, -1)
        elif kind == b"hash":
            for k, v in client.hgetall(key).items():
                parts += [k, v]
        parts.append(key)
    return "\n".join(p.decode(errors="replace") if isinstance(p, bytes) else str(p) for p in parts)


def _span_text(spans: InMemorySpanExporter) -> str:
    out = []
    for span in spans.get_finished_spans():
        out.append(span.name)
        out.append(json.dumps(dict(span.attributes or {}), default=str))
        if span.status and span.status.description:
            out.append(span.status.description)
        for event in span.events:
            out.append(event.name + json.dumps(dict(event.attributes or {}), default=str))
    return "\n".join(out)


def test_secrets_never_reach_logs_spans_audit_dead_letters_redis_or_error_bodies(
    leaky: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    api, gw, headers, handles = leaky["api"], leaky["gw"], leaky["headers"], leaky["handles"]
    bodies: list[str] = []
    secret_values = secrets_of(handles)
    for h in handles:
        conn = h.connection
        ticket = h.sim.sample_ticket_id()
        # Reads the vendor answers with an echo of the credentials: the caller's error body.
        for path in (f"/v1/tickets/{conn}:{TRIGGER}", f"/v1/tickets/{conn}:{TRIGGER}/statuses"):
            response = api.get(path, headers=headers)
            bodies.append(response.text)
            assert response.status_code < 500 or response.status_code in {502, 503}, response.text
        # Writes the vendor refuses with the echo: dead letters with the vendor's message.
        for body in ({"text": f"note about {TRIGGER}"}, {"text": f"note about {TRIGGER}", "internal": True}):
            response = api.post(f"/v1/tickets/{conn}:{ticket}/replies", json=body, headers=headers)
            assert response.status_code == 202, response.text
            bodies.append(response.text)
        response = api.post(f"/v1/tickets/{conn}:{ticket}/time-entries", json={"minutes": 5, "notes": f"t {TRIGGER}"}, headers=headers)
        assert response.status_code == 202, response.text
    assert drain(gw, timeout=120)
    for path in ("/v1/admin/dead-letters", "/v1/admin/audit", "/v1/connections", "/v1/plugins", "/health"):
        response = api.get(path, headers=headers, params={"limit": 500} if "admin" in path else None)
        assert response.status_code == 200, response.text
        bodies.append(response.text)
    dead = api.get("/v1/admin/dead-letters", headers=headers).json()
    assert len(dead) >= 6, "the vendor's echo answers should have dead-lettered the writes"
    for letter in dead:
        bodies.append(api.get(f"/v1/admin/dead-letters/{letter['write']['id']}", headers=headers).text)
        bodies.append(api.get("/v1/admin/audit", params={"write_id": letter["write"]["id"]}, headers=headers).text)
        assert letter["write"]["error"], "a dead letter must say why"
    forbidden = _forbidden(handles, leaky["echoes"])
    assert any(len(v) > 20 for v in forbidden), "the credentials the gateway sent were not captured"
    outputs = {
        "logs": caplog.text + "\n".join(r.getMessage() for r in caplog.records),
        "spans": _span_text(leaky["spans"]),
        "redis (audit, writes, dead letters, jobs)": _redis_dump(gw.redis),
        "API bodies": "\n".join(bodies),
    }
    leaks = {where: [v[:6] + "…" for v in forbidden if v in text] for where, text in outputs.items()}
    leaks = {where: found for where, found in leaks.items() if found}

    assert not leaks, f"credentials leaked into: {leaks}"
    print(f"\nsecrets grep: {len(forbidden)} values over {sum(len(t) for t in outputs.values()):,} characters, no leaks")


def test_a_secret_pasted_into_a_note_is_hidden_from_write_and_dead_letter_views(leaky: dict[str, Any]) -> None:
    api, gw, headers, handles = leaky["api"], leaky["gw"], leaky["headers"], leaky["handles"]
    secret = secrets_of(handles)[0]
    h = handles[0]
    response = api.post(f"/v1/tickets/{h.connection}:{h.sim.sample_ticket_id()}/replies",
                        json={"text": f"{TRIGGER} pasted {secret}"}, headers=headers)
    assert response.status_code == 202, response.text
    write_id = response.json()["write_id"]
    assert drain(gw, timeout=60)
    views = [api.get(f"/v1/writes/{write_id}", headers=headers).text,
             api.get(f"/v1/admin/dead-letters/{write_id}", headers=headers).text,
             api.get("/v1/admin/dead-letters", headers=headers).text,
             api.get("/v1/admin/audit", params={"write_id": write_id}, headers=headers).text]
    assert all(secret not in v for v in views)
