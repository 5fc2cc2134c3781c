"""``gateway.oauth``: one client-credentials token per connection, shared through Redis by every
worker, refreshed by one of them, retried once on a 401, audited without its secrets.

A small vendor runs on loopback: ``POST /oauth/token`` (client credentials, form body) and
``POST /items`` (bearer), recording every token it issues and every item it stores.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
import redis
from litestar import Litestar, Request, Response, post
from litestar.params import JSONBody
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.errors import VendorAuthFailed
from gateway.models import Connection
from gateway.oauth import BearerAuth, RedisTokenCache, TokenEndpoint, shared_token, token_http
from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor
from gateway.runtime import Runtime
from gateway.testing.simulator import RunningServer, serve_asgi_in_thread
from gateway.vendor_http import VendorHTTP

CLIENT_ID, CLIENT_SECRET = "oauth-test-client", "s3cret-value-for-oauth-tests"


@dataclass
class Vendor:
    """What the loopback vendor saw."""

    token_delay: float = 0.0
    live: dict[str, float] = field(default_factory=dict)  # token -> expiry
    issued: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expire_all(self) -> None:
        with self.lock:
            self.live.clear()


def _vendor_app(vendor: Vendor) -> Litestar:
    @post("/oauth/token")
    async def token(request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            body = {"error": "invalid_client", "error_description": "Client authentication failed."}
            return Response(json.dumps(body).encode(), status_code=401, media_type="application/json")
        time.sleep(vendor.token_delay)  # a slow authorisation server: the others must wait, not fetch
        with vendor.lock:
            issued = f"tok-{len(vendor.issued)}-{time.monotonic_ns()}"
            vendor.issued.append(issued)
            vendor.live[issued] = time.monotonic() + 3600
        return Response(json.dumps({"access_token": issued, "token_type": "Bearer", "expires_in": 3600}).encode(),
                        media_type="application/json")

    @post("/items", sync_to_thread=False)
    def items(request: Request, data: JSONBody[dict[str, Any]]) -> Response:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        with vendor.lock:
            if vendor.live.get(bearer, 0) < time.monotonic():
                return Response(b"", status_code=401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
            vendor.items.append(data["name"])
        return Response(b"{}", status_code=201, media_type="application/json")

    return Litestar([token, items], openapi_config=None)


@pytest.fixture
def vendor() -> Iterator[tuple[Vendor, RunningServer]]:
    state = Vendor()
    server = serve_asgi_in_thread(_vendor_app(state))
    yield state, server
    server.stop()


@pytest.fixture
def recorded(redis_client: redis.Redis) -> tuple[Runtime, InMemorySpanExporter]:
    """The gateway's shared services over the test Redis, and the spans they record."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("oauth")
    return Runtime(redis_client, RateLimiter(redis_client), Redactor([CLIENT_SECRET]), tracer), exporter


@pytest.fixture
def runtime(recorded: tuple[Runtime, InMemorySpanExporter]) -> Runtime:
    return recorded[0]


def _worker(base_url: str, runtime: Runtime | None, *, secret: str = CLIENT_SECRET) -> VendorHTTP:
    """What one worker process builds for the connection: its own clients, the shared token."""
    conn = Connection(
        id="oauth-test", workspace="ws", vendor="example", base_url=base_url, secrets={"client_secret": secret},
        timeout_seconds=5.0, runtime=runtime,
    )
    endpoint = TokenEndpoint(token_http(conn), "/oauth/token", client_id=CLIENT_ID, client_secret=secret, scope="all")
    return VendorHTTP(conn, auth=BearerAuth(shared_token(conn, endpoint)))


def test_eight_workers_starting_together_fetch_one_token(vendor, runtime) -> None:  # type: ignore[no-untyped-def]
    state, server = vendor
    state.token_delay = 0.2
    workers = [_worker(server.base_url, runtime) for _ in range(8)]
    start = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def first_call(index: int) -> None:
        try:
            start.wait()
            workers[index].post("/items", json={"name": f"item-{index}"})
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=first_call, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert errors == []
    assert len(state.issued) == 1
    assert sorted(state.items) == sorted(f"item-{i}" for i in range(8))


def test_a_token_expiring_mid_run_loses_no_write_and_is_fetched_once_more(vendor, runtime) -> None:  # type: ignore[no-untyped-def]
    state, server = vendor
    workers = [_worker(server.base_url, runtime) for _ in range(4)]
    sent: list[str] = []

    def run(index: int) -> None:
        for n in range(10):
            name = f"w{index}-{n}"
            workers[index].post("/items", json={"name": name})
            sent.append(name)
            if index == 0 and n == 4:
                state.expire_all()  # the vendor drops every token halfway through

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(state.items) == sorted(sent) and len(sent) == 40  # every write once, none lost
    assert len(state.issued) == 2


def test_a_refused_client_is_an_auth_failure_without_the_secret(vendor, runtime) -> None:  # type: ignore[no-untyped-def]
    state, server = vendor
    worker = _worker(server.base_url, runtime, secret="not-the-secret")

    with pytest.raises(VendorAuthFailed) as caught:
        worker.post("/items", json={"name": "never"})

    assert "invalid_client" in caught.value.body and "Client authentication failed" in str(caught.value)
    assert "not-the-secret" not in str(caught.value) + caught.value.body
    assert state.items == []


def test_token_calls_are_audited_without_the_secret_or_the_token(vendor, recorded) -> None:  # type: ignore[no-untyped-def]
    state, server = vendor
    runtime, spans = recorded
    _worker(server.base_url, runtime).post("/items", json={"name": "audited"})

    recorded = [(s.name, dict(s.attributes or {})) for s in spans.get_finished_spans()]
    assert [name for name, _ in recorded] == ["example POST /oauth/token", "example POST /items"]
    text = json.dumps(recorded)
    assert CLIENT_SECRET not in text
    assert not any(token in text for token in state.issued)


def test_the_refresh_lock_is_released_only_by_its_owner(redis_client: redis.Redis) -> None:
    cache = RedisTokenCache(redis_client, "lock-test", lock_seconds=1.0)
    first = cache.try_lock()
    assert first is not None and cache.try_lock() is None  # held
    redis_client.pexpire(cache.lock_key, 1)  # the first holder stalls past the lock's life
    time.sleep(0.01)
    second = cache.try_lock()
    assert second is not None

    cache.unlock(first)  # late: must not free the second holder's lock

    assert cache.try_lock() is None
    cache.unlock(second)
    assert cache.try_lock() is not None
