"""The 202's hot path (issue 12): what a reply costs in Redis round trips, and the fallbacks
when the fast path cannot answer (a ticket held nowhere, a ticket that does not exist)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator
from litestar.testing import TestClient

from gateway import intake
from gateway.aio import Channel
from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.events import WriteAcceptedEvent
from gateway.testing.harness import connection_config, settings_from, workspace_config

KEY = "hot-path-key"
HEADERS = {"Authorization": f"Bearer {KEY}"}


@dataclass
class Sent:
    """Commands the API sent, by client: the event loop's asyncio client, the process's sync one
    (with the name of the thread that sent each)."""

    on_loop: list[str] = field(default_factory=list)
    sync: list[tuple[str, str]] = field(default_factory=list)

    def clear(self) -> None:
        self.on_loop.clear()
        self.sync.clear()


class CountingChannel(Channel):
    sent: Sent

    async def execute(self, *args: Any) -> Any:
        self.sent.on_loop.append(str(args[0]).upper())
        return await super().execute(*args)


@dataclass
class Api:
    client: TestClient
    gw: Gateway
    sim: ConnectWiseSimulator
    sent: Sent


@pytest.fixture
def api(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    server = sim.serve_in_thread()
    tables = {"workspaces": [workspace_config(
        "hot", [connection_config("cw", sim.demo_connection(server.base_url))],
        {KEY: ["tickets:read", "tickets:write", "admin"]},
    )]}
    gw = Gateway(settings_from(tables), redis_client)
    sent = Sent()
    opened = gw.async_redis

    def counting() -> Channel:
        client = opened()
        client.__class__ = CountingChannel
        client.sent = sent  # type: ignore[attr-defined]
        return client

    monkeypatch.setattr(gw, "async_redis", counting)
    original = gw.redis.execute_command

    def execute_command(*args: Any, **options: Any) -> Any:
        sent.sync.append((threading.current_thread().name, str(args[0]).upper()))
        return original(*args, **options)

    monkeypatch.setattr(gw.redis, "execute_command", execute_command)
    with TestClient(create_app(gw)) as client:
        yield Api(client, gw, sim, sent)
    gw.close()
    server.stop()


def _warm(api: Api, ref: str) -> None:
    """One write first, so Redis knows the accept script (a fresh Redis costs a SCRIPT LOAD)."""
    assert api.client.post(f"/v1/tickets/{ref}/replies", headers=HEADERS,
                           json={"text": "first", "internal": True}).status_code == 202


def _request_threads(sent: Sent) -> list[tuple[str, str]]:
    """Sync commands sent on the request's behalf (not by the audit's background batches)."""
    return [(thread, command) for thread, command in sent.sync if not thread.startswith("OtelBatchSpan")]


def test_a_reply_to_a_ticket_the_store_holds_is_one_round_trip(api: Api) -> None:
    ref = f"cw:{api.sim.sample_ticket_id()}"
    assert api.client.get(f"/v1/tickets/{ref}", headers=HEADERS).status_code == 200  # now in the store
    assert api.gw.store.get(ref) is not None
    _warm(api, ref)
    api.sent.clear()

    answer = api.client.post(f"/v1/tickets/{ref}/replies", headers=HEADERS,
                             json={"text": "Checked the logs", "internal": True})

    assert answer.status_code == 202, answer.text
    assert api.sent.on_loop == ["EVALSHA"]  # the accept script: record, run, event, count
    assert _request_threads(api.sent) == []
    write_id = answer.json()["write_id"]
    record = api.gw.writes.get(write_id)
    assert record is not None and record.status == "queued"
    accepted = [e for e in api.gw.events.read("hot", limit=100).events if isinstance(e, WriteAcceptedEvent)]
    assert write_id in [e.write for e in accepted]
    assert len(accepted) == 2  # the warm-up's and this one's: one event a write


def test_a_status_change_reads_the_facts_it_checks_in_one_more_round_trip(api: Api) -> None:
    ref = f"cw:{api.sim.sample_ticket_id()}"
    api.client.get(f"/v1/tickets/{ref}", headers=HEADERS)
    statuses = api.client.get(f"/v1/tickets/{ref}/statuses", headers=HEADERS).json()  # held now
    _warm(api, ref)
    api.sent.clear()

    answer = api.client.post(f"/v1/tickets/{ref}/status", headers=HEADERS, json={"status_id": statuses[-1]["id"]})

    assert answer.status_code == 202, answer.text
    assert api.sent.on_loop == ["MGET", "EVALSHA"]
    assert _request_threads(api.sent) == []
    refused = api.client.post(f"/v1/tickets/{ref}/status", headers=HEADERS, json={"status_id": "no-such-status"})
    assert refused.status_code == 422
    assert {s["id"] for s in refused.json()["extra"]["valid_statuses"]} == {s["id"] for s in statuses}


def test_a_reply_to_a_ticket_held_nowhere_is_read_from_the_vendor_first(api: Api) -> None:
    vendor_id = api.sim.add_ticket("Printer jam on floor 3")  # the gateway has never seen it
    ref = f"cw:{vendor_id}"
    assert api.gw.store.get(ref) is None

    answer = api.client.post(f"/v1/tickets/{ref}/replies", headers=HEADERS, json={"text": "On my way"})

    assert answer.status_code == 202, answer.text
    assert api.sent.on_loop.count("EVALSHA") == 1  # refused by the script: the ticket was not held
    assert intake.cached_ticket(api.gw, ref) is not None  # read from the vendor, kept for next time
    assert api.gw.writes.get(answer.json()["write_id"]) is not None


def test_a_reply_to_a_ticket_that_does_not_exist_is_404_and_stores_nothing(api: Api) -> None:
    before = api.gw.writes.active_count()
    answer = api.client.post("/v1/tickets/cw:999999/replies", headers={**HEADERS, "Idempotency-Key": "k-404"},
                             json={"text": "Hello"})

    assert answer.status_code == 404, answer.text
    assert api.gw.writes.dedup("hot", "k-404") is None
    assert api.gw.writes.active_count() == before
    assert not [e for e in api.gw.events.read("hot", limit=100).events if isinstance(e, WriteAcceptedEvent)]


def test_the_request_span_is_audited_and_read_back_at_once(api: Api) -> None:
    ref = f"cw:{api.sim.sample_ticket_id()}"
    api.client.get(f"/v1/tickets/{ref}", headers=HEADERS)
    write_id = api.client.post(f"/v1/tickets/{ref}/replies", headers=HEADERS,
                               json={"text": "Audited", "internal": True}).json()["write_id"]

    # The request's record is written in a background batch; the read-back flushes it first.
    records = api.client.get("/v1/admin/audit", headers=HEADERS, params={"write_id": write_id}).json()

    [record] = [r for r in records if r["kind"] == "api_write"]
    assert record["name"] == "POST /v1/tickets/{ref:str}/replies"
    assert record["attributes"]["http.response.status_code"] == 202
    assert record["attributes"]["url.path"] == f"/v1/tickets/{ref}/replies"
    assert record["attributes"]["gateway.write_id"] == write_id
    assert record["trace_id"] == api.gw.writes.get(write_id).trace_context["traceparent"].split("-")[1]


def test_a_queue_read_has_a_span_only_when_someone_can_see_it(api: Api) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    seen = InMemorySpanExporter()
    api.gw.tracer_provider.add_span_processor(SimpleSpanProcessor(seen))

    def server_spans() -> list[Any]:
        return [s for s in seen.get_finished_spans() if s.kind is SpanKind.SERVER]

    assert api.client.get("/v1/tickets", headers=HEADERS).status_code == 200
    assert server_spans() == []  # nothing exports it and the caller did not ask: no span at all

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = api.client.get("/v1/tickets", headers={**HEADERS, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    assert traced.status_code == 200
    [span] = server_spans()
    assert f"{span.context.trace_id:032x}" == trace_id  # the caller's trace continues
    assert span.name == "GET /v1/tickets" and span.attributes["http.response.status_code"] == 200

    ref = f"cw:{api.sim.sample_ticket_id()}"
    api.client.post(f"/v1/tickets/{ref}/replies", headers=HEADERS, json={"text": "traced", "internal": True})
    assert [s.name for s in server_spans()][-1] == "POST /v1/tickets/{ref:str}/replies"  # writes always are


def test_a_request_span_reaches_every_span_processor_as_the_sdk_would_make_it(api: Api) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    seen = InMemorySpanExporter()
    api.gw.tracer_provider.add_span_processor(SimpleSpanProcessor(seen))  # added after the app was built
    ref = f"cw:{api.sim.sample_ticket_id()}"
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answer = api.client.post(f"/v1/tickets/{ref}/replies", json={"text": "traced", "internal": True},
                             headers={**HEADERS, "traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "msp=1"})
    write_id = answer.json()["write_id"]

    [span] = [s for s in seen.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert (f"{span.context.trace_id:032x}", f"{span.parent.span_id:016x}") == (trace_id, parent)
    assert span.context.trace_state.get("msp") == "1" and span.context.trace_flags.sampled
    assert span.resource.attributes["service.name"] == "msp-gateway"
    assert span.start_time <= span.end_time and span.status.status_code is StatusCode.UNSET
    assert {k: span.attributes[k] for k in ("gateway.kind", "gateway.write_id", "gateway.ticket",
                                            "http.request.method", "http.response.status_code")} == {
        "gateway.kind": "api_write", "gateway.write_id": write_id, "gateway.ticket": ref,
        "http.request.method": "POST", "http.response.status_code": 202}
    # the write's jobs continue this span: it is their parent
    traceparent = api.gw.writes.get(write_id).trace_context["traceparent"]
    assert traceparent == f"00-{trace_id}-{span.context.span_id:016x}-01"


_BUILD_THE_API = """
import sys
import redis
from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.testing.harness import settings_from, workspace_config
tables = {"workspaces": [workspace_config("lean", [], {"k": ["tickets:read"]})]}
gw = Gateway(settings_from(tables), redis.Redis.from_url(sys.argv[1]))
create_app(gw)
print(sorted(name for name in ("pydantic", "attrs", "rich", "pygments") if name in sys.modules))
"""


def test_the_api_process_loads_neither_pydantic_nor_the_httpx_command_line(redis_server: Any) -> None:
    """The API's types are msgspec structs: Litestar's pydantic plugin (about 10 MB of the API
    process's memory, figure 7) stays out even though the test extras install pydantic. And
    httpx's command-line tool (rich and pygments, installed with Litestar: 4.5 MB) stays out
    of a process that uses httpx as a client."""
    import subprocess
    import sys

    import pydantic  # noqa: F401 - installed here, so Litestar would load its plugin
    import rich  # noqa: F401 - installed here, so httpx would load its command-line tool

    found = subprocess.run([sys.executable, "-c", _BUILD_THE_API, redis_server.url], capture_output=True,
                           text=True, timeout=120, check=True)
    assert found.stdout.strip().splitlines()[-1] == "[]", found.stderr
