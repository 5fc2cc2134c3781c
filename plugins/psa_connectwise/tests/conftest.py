"""Fixtures for the ConnectWise plugin's tests: one seeded simulator on loopback per test
module (starting and stopping a server costs a fifth of a second), and clients of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gateway.models import Connection

from gateway_connectwise import hooks
from gateway_connectwise.client import ConnectWiseClient
from gateway_connectwise.simulator import ConnectWiseSimulator

MakeClient = Callable[..., ConnectWiseClient]


@pytest.fixture(scope="module")
def sim() -> Iterator[ConnectWiseSimulator]:
    simulator = ConnectWiseSimulator()
    simulator.seed_demo()
    running = simulator.serve_in_thread()
    yield simulator
    running.stop()


def make_connection(sim: ConnectWiseSimulator, **changes: Any) -> Connection:
    """The simulator's demo connection, with ``changes`` (base_url, settings, secrets...)."""
    config = sim.demo_connection(sim.base_url)
    fields: dict[str, Any] = {
        "id": "cw-test",
        "workspace": "test",
        "vendor": "connectwise",
        "base_url": config["base_url"],
        "settings": config["settings"],
        "secrets": config["secrets"],
        "timeout_seconds": 5.0,
    }
    fields.update(changes)
    return Connection(**fields)


@pytest.fixture
def make_client(sim: ConnectWiseSimulator) -> Iterator[MakeClient]:
    """Build clients the way the gateway does (``gateway_connect``); closed after the test."""
    made: list[ConnectWiseClient] = []

    def make(**changes: Any) -> ConnectWiseClient:
        client = hooks.gateway_connect(connection=make_connection(sim, **changes))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> ConnectWiseClient:
    return make_client()


@pytest.fixture
def ticket_id(sim: ConnectWiseSimulator, request: pytest.FixtureRequest) -> str:
    """A fresh open Help Desk ticket for Acme Corp, for this test alone."""
    return sim.add_ticket(f"Test ticket for {request.node.name}"[:100])
