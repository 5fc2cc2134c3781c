"""Fixtures for the NinjaOne plugin tests: a seeded simulator on loopback and connections to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
import redis
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.models import Connection
from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor
from gateway.runtime import Runtime
from gateway.testing.simulator import RunningServer
from gateway_ninjaone import hooks
from gateway_ninjaone.client import NinjaOneClient
from gateway_ninjaone.settings import NinjaOneSettings
from gateway_ninjaone.simulator import DEMO_CLIENT_SECRET, NinjaOneSimulator


@pytest.fixture(scope="module")
def running_sim() -> Iterator[NinjaOneSimulator]:
    simulator = NinjaOneSimulator()
    running: RunningServer = simulator.serve_in_thread()
    yield simulator
    running.stop()


@pytest.fixture
def sim(running_sim: NinjaOneSimulator) -> NinjaOneSimulator:
    """The module's simulator, emptied and seeded with the demo tenant for this test."""
    running_sim.clear()
    running_sim.seed_demo()
    return running_sim


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def runtime(redis_client: redis.Redis, spans: InMemorySpanExporter) -> Runtime:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Runtime(
        redis=redis_client,
        limiter=RateLimiter(redis_client),
        redactor=Redactor([DEMO_CLIENT_SECRET]),
        tracer=provider.get_tracer("ninjaone-tests"),
    )


ConnectionFactory = Callable[..., Connection]


@pytest.fixture
def make_connection(sim: NinjaOneSimulator, runtime: Runtime) -> ConnectionFactory:
    """A connection to the simulator built from its demo config; keywords override settings."""

    def build(*, runtime_: Any = runtime, connection_id: str = "nj-test", secret: str | None = None,
              **settings: Any) -> Connection:  # fmt: skip
        demo = sim.demo_connection(sim.base_url)
        return Connection(
            id=connection_id,
            workspace="acme-msp",
            vendor=demo["vendor"],
            base_url=demo["base_url"],
            settings=msgspec.convert({**demo["settings"], **settings}, NinjaOneSettings),
            secrets={"client_secret": secret or demo["secrets"]["client_secret"]},
            timeout_seconds=5.0,
            runtime=runtime_,
        )

    return build


@pytest.fixture
def connect(make_connection: ConnectionFactory) -> Iterator[Callable[..., NinjaOneClient]]:
    """``gateway_connect`` on a fresh connection; every client made is closed afterwards."""
    made: list[NinjaOneClient] = []

    def open_client(**kwargs: Any) -> NinjaOneClient:
        client = hooks.gateway_connect(make_connection(**kwargs))
        made.append(client)
        return client

    yield open_client
    for client in made:
        client.close()


@pytest.fixture
def client(connect: Callable[..., NinjaOneClient]) -> NinjaOneClient:
    return connect()
