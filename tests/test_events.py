"""Events for callers: the log, the page and stream reads, and signed webhooks, against a real
Redis, the ConnectWise simulator and a real receiving HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator

from gateway import delivery, eventdocs, events
from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.testing.harness import (
    ALL_SCOPES,
    connection_config,
    new_api_key,
    settings_from,
    workspace_config,
)
from gateway.testing.receiver import Receiver
from gateway.testing.simulator import serve_asgi_in_thread
from gateway.testing.workers import drain, run_deliveries, sync_until_idle

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stack:
    sim: ConnectWiseSimulator
    gw: Gateway
    base: str
    key: str  # workspace "acme": every scope
    other_key: str  # workspace "other": events:read and admin, no connection
    reader_key: str  # workspace "acme": tickets:read only
    sim_base: str

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=60)

    def reply(self, ticket: str, text: str) -> str:
        with self.client() as api:
            answer = api.post(f"/v1/tickets/conf:{ticket}/replies", json={"text": text})
        assert answer.status_code == 202, answer.text
        return answer.json()["write_id"]

    def log(self, key: str | None = None, after: str = "0", **params: Any) -> list[dict[str, Any]]:
        out = []
        with self.client(key) as api:
            while True:
                page = api.get("/v1/events", params={"after": after, "limit": 1000, **params}).json()
                out += page["events"]
                if page["next_after"] == after:
                    return out
                after = page["next_after"]

    def sync(self) -> None:
        sync_until_idle(self.gw, "conf")


@pytest.fixture
def stack(redis_client: redis.Redis) -> Iterator[Stack]:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    server = sim.serve_in_thread()
    key, other_key, reader_key = new_api_key(), new_api_key(), new_api_key()
    conn = connection_config("conf", sim.demo_connection(server.base_url))
    settings = settings_from({
        "gateway": {"retry_base_seconds": 0.01, "events_heartbeat_seconds": 0.3,
                    "delivery_retry_base_seconds": 0.05, "delivery_timeout_seconds": 2.0},
        "workspaces": [
            workspace_config("acme", [conn], {key: ALL_SCOPES, reader_key: ["tickets:read"]}),
            workspace_config("other", [], {other_key: ["events:read", "admin"]}),
        ],
    })  # fmt: skip
    gw = Gateway(settings, redis_client)
    api = serve_asgi_in_thread(create_app(gw))
    try:
        yield Stack(sim, gw, api.base_url, key, other_key, reader_key, server.base_url)
    finally:
        api.stop()
        gw.close()
        server.stop()


class SSE:
    """A real Server-Sent Events client over HTTP: parses ``id``/``event``/``data`` frames."""

    def __init__(self, stack: Stack, key: str | None = None, last_event_id: str | None = None, **params: Any) -> None:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.client = stack.client(key)
        self._cm = self.client.stream("GET", "/v1/events/stream", params=params, headers=headers)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200, self.response.read()
        self.lines = self.response.iter_lines()
        self.heartbeats = 0
        self.events: list[dict[str, Any]] = []

    def read_until(self, done: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        frame: dict[str, str] = {}
        while not done(self.events):
            assert time.monotonic() < deadline, f"stream gave {[e['type'] for e in self.events]}"
            line = next(self.lines)
            if line == "":
                if "data" in frame:
                    event = json.loads(frame["data"])
                    assert event["id"] == frame["id"] and event["type"] == frame["event"]
                    self.events.append(event)
                frame = {}
            elif line.startswith(": heartbeat"):
                self.heartbeats += 1
            elif not line.startswith(":") and ":" in line:
                name, _, value = line.partition(":")
                frame[name] = value.removeprefix(" ")
        return self.events

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self.client.close()


def of_write(write_id: str) -> Any:
    return lambda evs: {"write.accepted", "write.succeeded"} <= {e["type"] for e in evs if e["write"] == write_id}


# --------------------------------------------------------------------------- the log and the stream


def test_a_reply_shows_write_accepted_then_write_succeeded_on_the_stream(stack: Stack) -> None:
    stream = SSE(stack)
    try:
        write_id = stack.reply(stack.sim.sample_ticket_id(), "events: we are on it")
        assert drain(stack.gw, timeout=30)
        seen = [e for e in stream.read_until(of_write(write_id)) if e["write"] == write_id]
    finally:
        stream.close()
    assert [e["type"] for e in seen] == ["write.accepted", "write.succeeded"]
    accepted, succeeded = seen
    assert succeeded["data"]["effects"][0]["vendor_id"]  # the note the PSA made
    assert accepted["ticket"] == succeeded["ticket"] == f"conf:{stack.sim.sample_ticket_id()}"
    # The trace id leads to the audit of the same write.
    with stack.client() as api:
        audit = api.get("/v1/admin/audit", params={"write_id": write_id}).json()
    assert succeeded["trace_id"] == accepted["trace_id"]
    assert succeeded["trace_id"] in {r["trace_id"] for r in audit}


def test_a_status_changed_inside_the_psa_shows_as_ticket_updated(stack: Stack) -> None:
    stack.sync()  # the backfill loads what exists without announcing it
    assert [e for e in stack.log() if e["type"].startswith("ticket.")] == []
    ticket = stack.sim.sample_ticket_id()
    old = stack.sim.ticket_status_id(ticket)
    target = next(s for s in stack.sim.valid_status_ids(ticket) if s != old)
    with vendor_client(stack) as vendor:
        patch = [{"op": "replace", "path": "status/id", "value": int(target)}]
        assert vendor.patch(f"/service/tickets/{ticket}", json=patch).status_code == 200
    stream = SSE(stack, type="ticket.updated", connection="conf")
    try:
        stack.sync()  # the incremental pull finds the change
        updated = stream.read_until(lambda evs: len(evs) >= 1)[0]
    finally:
        stream.close()
    assert updated["ticket"] == f"conf:{ticket}"
    assert "status" in updated["data"]["changed"]
    assert updated["data"]["old_status"]["id"] == old and updated["data"]["new_status"]["id"] == target
    assert updated["data"]["new_status"]["category"] in {"new", "in_progress", "awaiting_customer", "resolved", "closed"}
    stack.sync()  # the same ticket pulled again unchanged is no news
    assert len([e for e in stack.log() if e["type"] == "ticket.updated"]) == 1


def test_a_stream_cut_and_resumed_with_last_event_id_misses_nothing_and_repeats_nothing(stack: Stack) -> None:
    ticket = stack.sim.sample_ticket_id()
    start = stack.gw.events.last_id("acme")
    first = SSE(stack)
    try:
        for n in range(3):
            stack.reply(ticket, f"before the cut {n}")
        assert drain(stack.gw, timeout=30)
        got = first.read_until(lambda evs: len(evs) >= 2)[:2]  # cut after two events
    finally:
        first.close()
    for n in range(3):
        stack.reply(ticket, f"while cut {n}")
    assert drain(stack.gw, timeout=30)
    everything = [e["id"] for e in stack.log(after=start)]
    second = SSE(stack, last_event_id=got[-1]["id"])
    try:
        rest = second.read_until(lambda evs: evs and evs[-1]["id"] == everything[-1])
    finally:
        second.close()
    assert [e["id"] for e in got + rest] == everything
    assert len(everything) >= 12  # 6 writes: accepted and succeeded each


def test_the_stream_sends_heartbeats_when_nothing_happens(stack: Stack) -> None:
    stream = SSE(stack)
    try:
        deadline = time.monotonic() + 10
        while stream.heartbeats < 2 and time.monotonic() < deadline:
            stream.read_until(lambda evs: True)
            line = next(stream.lines)
            stream.heartbeats += line.startswith(": heartbeat")
    finally:
        stream.close()
    assert stream.heartbeats >= 2


def test_the_page_read_filters_by_type_and_connection_and_pages_oldest_first(stack: Stack) -> None:
    ticket = stack.sim.sample_ticket_id()
    writes = [stack.reply(ticket, f"page {n}") for n in range(3)]
    assert drain(stack.gw, timeout=30)
    with stack.client() as api:
        page = api.get("/v1/events", params={"type": "write.succeeded", "connection": "conf", "limit": 2}).json()
        assert [e["write"] for e in page["events"]] == writes[:2]
        rest = api.get("/v1/events", params={"type": "write.succeeded", "after": page["next_after"]}).json()
        assert [e["write"] for e in rest["events"]] == writes[2:]
        assert api.get("/v1/events", params={"type": "write.nonsense"}).status_code == 400
        assert api.get("/v1/events", params={"after": "not-an-id"}).status_code == 400
        assert api.get("/v1/events", params={"connection": "elsewhere"}).status_code == 404
        assert api.get("/v1/events/stream", headers={"Last-Event-ID": "yesterday"}).status_code == 400
        assert api.get("/v1/events/stream", params={"type": "write.nonsense"}).status_code == 400
    with stack.client(stack.reader_key) as api:
        assert api.get("/v1/events").status_code == 403  # events:read is its own scope
        assert api.get("/v1/events/stream").status_code == 403
    with httpx.Client(base_url=stack.base) as anonymous:
        assert anonymous.get("/v1/events/stream").status_code == 401


def test_another_workspaces_key_sees_none_of_these_events(stack: Stack) -> None:
    receiver = Receiver().start()
    try:
        with stack.client(stack.other_key) as api:
            created = api.post("/v1/admin/subscriptions", json={"url": receiver.url}).json()
        receiver.secret = created["secret"]
        stream = SSE(stack, key=stack.other_key)
        try:
            stack.reply(stack.sim.sample_ticket_id(), "not for the other workspace")
            assert drain(stack.gw, timeout=30)
            stream.read_until(lambda evs: stream.heartbeats >= 2)
            assert stream.events == []
        finally:
            stream.close()
        assert run_deliveries(stack.gw, timeout=20)
        assert stack.log(stack.other_key) == [] and receiver.attempts == 0
        assert {"write.accepted", "write.succeeded"} <= {e["type"] for e in stack.log()}  # acme's own key sees them
    finally:
        receiver.stop()


def test_no_secret_reaches_an_event(stack: Stack) -> None:
    stack.sync()
    secret = stack.sim.demo_connection("http://x")["secrets"]["private_key"]
    ticket = stack.sim.sample_ticket_id()
    with vendor_client(stack) as vendor:
        patch = [{"op": "replace", "path": "summary", "value": f"password is {secret}"}]
        assert vendor.patch(f"/service/tickets/{ticket}", json=patch).status_code == 200
    stack.sync()
    raw = json.dumps(stack.log())
    assert "ticket.updated" in raw and "[redacted]" in raw
    assert secret not in raw


def test_a_vendor_429_pauses_the_connection_and_its_recovery_is_announced_once(stack: Stack) -> None:
    ticket = stack.sim.sample_ticket_id()
    stack.sim.faults.throttle_rate = 1.0
    stack.sim.faults.writes_only = True
    stack.sim.faults.retry_after = 1.0
    stack.reply(ticket, "throttled at first")
    deadline = time.monotonic() + 20
    while not any(e["type"] == "connection.paused" for e in stack.log()) and time.monotonic() < deadline:
        drain(stack.gw, timeout=0.5)
    stack.sim.faults.throttle_rate = 0.0
    assert drain(stack.gw, timeout=30)
    time.sleep(events.RECOVERY_CHECK_SECONDS)
    stack.reply(ticket, "and now it lands")
    assert drain(stack.gw, timeout=30)
    types = [e["type"] for e in stack.log() if e["type"].startswith("connection.")]
    assert types == ["connection.paused", "connection.recovered"]
    paused = next(e for e in stack.log() if e["type"] == "connection.paused")
    assert paused["connection"] == "conf" and paused["data"]["retry_after_seconds"] >= 1


@pytest.mark.parametrize(("status", "trouble"), [(500, "connection.sync_failed"), (401, "connection.auth_failed")])
def test_a_failing_sync_is_announced_once_and_so_is_its_recovery(stack: Stack, status: int, trouble: str) -> None:
    stack.sync()
    stack.sim.faults.error_rate = 1.0
    stack.sim.faults.error_status = status
    from gateway.sync import Syncer

    for _ in range(3):  # three failed pulls: one announcement
        assert Syncer(stack.gw).step("conf") == "error"
    stack.sim.faults.error_rate = 0.0
    stack.sync()
    connection_events = [e for e in stack.log() if e["type"].startswith("connection.")]
    assert [e["type"] for e in connection_events] == [trouble, "connection.recovered"]
    assert connection_events[0]["data"]["vendor_status"] == status
    assert connection_events[1]["data"]["was"] == trouble.removeprefix("connection.")


def test_the_event_types_are_schemas_in_openapi(stack: Stack) -> None:
    with stack.client() as api:
        schema = api.get("/schema/openapi.json").json()
    names = set(schema["components"]["schemas"])
    assert {"TicketUpdated", "WriteSucceeded", "ConnectionPaused", "SubscriptionDisabled"} <= names
    assert "/v1/events/stream" in schema["paths"] and "/v1/admin/subscriptions" in schema["paths"]


def test_the_catalogue_in_the_docs_is_generated_from_the_code() -> None:
    doc = (ROOT / "docs" / "events.md").read_text()
    assert doc.endswith(eventdocs.render()), "run: python -m gateway.eventdocs --write docs/events.md"
    for event_type in events.EVENT_TYPES:
        assert f"### `{event_type}`" in doc


# --------------------------------------------------------------------------- webhooks


def subscribe(stack: Stack, receiver: Receiver, types: list[str] | None = None, key: str | None = None) -> dict[str, Any]:
    with stack.client(key) as api:
        answer = api.post("/v1/admin/subscriptions", json={"url": receiver.url, "types": types or []})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["secret"].startswith("whsec_")
    receiver.secret = created["secret"]
    return created["subscription"]


def test_a_receiver_verifies_every_signature_and_gets_each_event_once_in_order(stack: Stack) -> None:
    receiver, impostor = Receiver().start(), Receiver().start()
    try:
        subscribe(stack, receiver)
        subscribe(stack, impostor)
        impostor.secret = "whsec_" + base64.b64encode(b"not the secret at all, 32 bytes").decode()
        ticket = stack.sim.sample_ticket_id()
        for n in range(4):
            stack.reply(ticket, f"signed {n}")
        assert drain(stack.gw, timeout=30)
        run_deliveries(stack.gw, timeout=3)
        assert receiver.ids() == [e["id"] for e in stack.log()]
        assert receiver.bad_signatures == 0 and len(receiver.ids()) >= 8
        # A receiver holding another secret rejects every delivery: the signature is real.
        assert impostor.accepted == [] and impostor.bad_signatures >= 1
        with stack.client() as api:
            audit = api.get("/v1/admin/audit", params={"write_id": receiver.accepted[0].event["write"]}).json()
        attempts = [r for r in audit if r["kind"] == "webhook_delivery"]
        assert attempts and attempts[0]["attributes"]["server.address"] == "127.0.0.1"
        assert {"http.response.status_code", "gateway.subscription"} <= set(attempts[0]["attributes"])
        assert receiver.secret not in json.dumps(audit)
    finally:
        receiver.stop()
        impostor.stop()


def test_a_receiver_that_was_down_gets_every_event_after_it_returns(stack: Stack) -> None:
    receiver = Receiver(down=True).start()
    try:
        subscribe(stack, receiver, types=["write.accepted", "write.succeeded"])
        ticket = stack.sim.sample_ticket_id()
        for n in range(5):
            stack.reply(ticket, f"while the receiver is down {n}")
        assert drain(stack.gw, timeout=30)
        assert not run_deliveries(stack.gw, timeout=1.5)  # still retrying
        assert receiver.accepted == [] and receiver.attempts >= 2
        with stack.client() as api:
            view = api.get("/v1/admin/subscriptions").json()[0]
        assert view["pending"] == 10 and view["last_status"] == 503 and view["failing_since"]
        receiver.down = False
        assert run_deliveries(stack.gw, timeout=30)
        wanted = [e["id"] for e in stack.log() if e["type"] in {"write.accepted", "write.succeeded"}]
        assert receiver.ids() == wanted and len(wanted) == 10
    finally:
        receiver.stop()


def test_a_throttling_receiver_is_retried_after_its_retry_after(stack: Stack) -> None:
    receiver = Receiver(throttle_rate=1.0, retry_after="2").start()
    try:
        sub = subscribe(stack, receiver)
        stack.reply(stack.sim.sample_ticket_id(), "throttled receiver")
        assert drain(stack.gw, timeout=30)
        run_deliveries(stack.gw, timeout=0.5)
        state = delivery.load_state(stack.gw, sub["id"])
        assert state.last_status == 429 and state.retry_at is not None
        assert state.retry_at - time.time() > 1.0  # Retry-After: 2, not the 0.05 s backoff
        receiver.throttle_rate = 0.0
        assert run_deliveries(stack.gw, timeout=30)
        assert receiver.ids() == [e["id"] for e in stack.log()]
    finally:
        receiver.stop()


def test_a_subscription_failing_too_long_is_disabled_announced_and_replayed_when_enabled(
    redis_client: redis.Redis, stack: Stack
) -> None:
    receiver = Receiver(down=True).start()
    try:
        sub = subscribe(stack, receiver, types=["write.accepted", "write.succeeded"])
        healthy = Receiver().start()
        subscribe(stack, healthy, types=["subscription.disabled"])
        stack.gw.settings = msgspec_replace_gateway(stack.gw, subscription_disable_after_hours=0.5 / 3600)
        stack.reply(stack.sim.sample_ticket_id(), "to a dead receiver")
        assert drain(stack.gw, timeout=30)
        run_deliveries(stack.gw, timeout=5)
        with stack.client() as api:
            view = api.get(f"/v1/admin/subscriptions/{sub['id']}").json()
            assert view["status"] == "disabled" and view["disabled_at"] and view["pending"] == 2
            disabled = [e for e in stack.log() if e["type"] == "subscription.disabled"]
            assert [e["data"]["subscription"] for e in disabled] == [sub["id"]]
            assert [d.event["type"] for d in healthy.accepted] == ["subscription.disabled"]
            receiver.down = False
            assert api.post(f"/v1/admin/subscriptions/{sub['id']}/enable").status_code == 200
        assert run_deliveries(stack.gw, timeout=30)
        assert [d.event["type"] for d in receiver.accepted] == ["write.accepted", "write.succeeded"]
        healthy.stop()
    finally:
        receiver.stop()


def test_a_deleted_subscription_is_sent_nothing_more(stack: Stack) -> None:
    receiver = Receiver().start()
    try:
        sub = subscribe(stack, receiver)
        with stack.client() as api:
            assert api.delete(f"/v1/admin/subscriptions/{sub['id']}").status_code == 204
            assert api.get(f"/v1/admin/subscriptions/{sub['id']}").status_code == 404
            assert api.post("/v1/admin/subscriptions", json={"url": "ftp://x/y"}).status_code == 400
        stack.reply(stack.sim.sample_ticket_id(), "after the delete")
        assert drain(stack.gw, timeout=30)
        assert run_deliveries(stack.gw, timeout=10)
        assert receiver.attempts == 0
    finally:
        receiver.stop()


# --------------------------------------------------------------------------- helpers


def msgspec_replace_gateway(gw: Gateway, **changes: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(gw.settings, gateway=msgspec.structs.replace(gw.settings.gateway, **changes))


def vendor_client(stack: Stack) -> httpx.Client:
    """Another ConnectWise user, changing tickets inside the PSA (not through the gateway)."""
    conn = stack.sim.demo_connection(stack.sim_base)
    s = conn["secrets"]
    token = base64.b64encode(f"{conn['settings']['company_id']}+{s['public_key']}:{s['private_key']}".encode()).decode()
    return httpx.Client(base_url=conn["base_url"], headers={"Authorization": f"Basic {token}", "clientId": s["client_id"]})
