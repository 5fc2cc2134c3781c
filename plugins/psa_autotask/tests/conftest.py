"""Fixtures for the Autotask plugin tests: a seeded simulator on loopback and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from opentelemetry import trace

from gateway.models import Connection
from gateway.ratelimit import RateLimiter
from gateway.redact import Redactor
from gateway.runtime import Runtime
from gateway_autotask import hooks
from gateway_autotask.client import AutotaskClient
from gateway_autotask.constants import ATTACHMENT_CAP_BYTES
from gateway_autotask.settings import AutotaskSettings
from gateway_autotask.simulator import AutotaskSimulator


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[AutotaskSimulator, Any]]:
    """One simulator server per test module (starting uvicorn is the slow part)."""
    simulator = AutotaskSimulator()
    server = simulator.serve_in_thread()
    yield simulator, server
    server.stop()


@pytest.fixture
def sim(served: tuple[AutotaskSimulator, Any]) -> AutotaskSimulator:
    """The module's simulator, reset to the demo database for this test."""
    simulator = served[0]
    simulator.reset()
    simulator.seed_demo()
    return simulator


@pytest.fixture
def running(sim: AutotaskSimulator, served: tuple[AutotaskSimulator, Any]) -> Any:
    return served[1]


@pytest.fixture
def make_connection(sim: AutotaskSimulator, running: Any) -> Callable[..., Connection]:
    """A connection to the running simulator; keyword arguments override settings and fields."""

    def build(*, runtime: Any = None, settings: dict[str, Any] | None = None, **fields: Any) -> Connection:
        demo = sim.demo_connection(running.base_url)
        merged = {**demo["settings"], **(settings or {})}
        base = {
            "id": "at-test",
            "workspace": "ws",
            "vendor": demo["vendor"],
            "base_url": demo["base_url"],
            "settings": msgspec.convert(merged, AutotaskSettings),
            "secrets": demo["secrets"],
            "timeout_seconds": 10.0,
            "attachment_cap_bytes": ATTACHMENT_CAP_BYTES,
            "runtime": runtime,
        }
        base.update(fields)
        return Connection(**base)

    return build


@pytest.fixture
def client(make_connection: Callable[..., Connection]) -> Iterator[AutotaskClient]:
    built = hooks.gateway_connect(make_connection())
    yield built
    built.close()


@pytest.fixture
def runtime(redis_client: Any) -> Runtime:
    """The gateway's shared services over the test redis-server."""
    secrets = [AutotaskSimulator.DEMO_SECRET, AutotaskSimulator.DEMO_INTEGRATION_CODE]
    return Runtime(redis_client, RateLimiter(redis_client), Redactor(secrets), trace.get_tracer("autotask-tests"))
