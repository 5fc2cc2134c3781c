"""Fixtures for the HaloPSA plugin tests: a simulator on loopback and connections to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.models import Connection, RateLimitPolicy
from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor
from gateway.runtime import Runtime
from gateway.testing.simulator import RunningServer

from gateway_halopsa.client import HaloClient
from gateway_halopsa.settings import HaloSettings
from gateway_halopsa.simulator import HaloSimulator


@pytest.fixture
def sim() -> Iterator[HaloSimulator]:
    simulator = HaloSimulator()
    yield simulator
    simulator.stop_webhooks()


@pytest.fixture
def running(sim: HaloSimulator) -> Iterator[RunningServer]:
    server = sim.serve_in_thread()
    yield server
    server.stop()


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def runtime(redis_client: redis.Redis, sim: HaloSimulator, spans: InMemorySpanExporter) -> Runtime:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Runtime(
        redis=redis_client,
        limiter=RateLimiter(redis_client),
        redactor=Redactor([sim.client_secret]),
        tracer=provider.get_tracer("halopsa-tests"),
    )


@pytest.fixture
def make_client(sim: HaloSimulator, running: RunningServer) -> Iterator[Callable[..., HaloClient]]:
    """Build ``HaloClient``s for the simulator; all share the connection id ``halo-test``."""
    made: list[HaloClient] = []

    def build(runtime: Any = None, rate_limit: RateLimitPolicy = RateLimitPolicy(), **settings: Any) -> HaloClient:
        connection = Connection(
            id="halo-test",
            workspace="acme",
            vendor="halopsa",
            base_url=running.base_url,
            settings=HaloSettings(client_id=sim.client_id, **settings),
            secrets={"client_secret": sim.client_secret},
            timeout_seconds=10.0,
            rate_limit=rate_limit,
            runtime=runtime,
        )
        client = HaloClient(connection)
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()
