"""Fixtures for the Atera plugin tests: one simulator on loopback per module, reseeded with the
demo account for every test, and clients of it built the way the gateway builds them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from gateway.models import Connection
from gateway.testing.simulator import RunningServer

from gateway_atera import hooks
from gateway_atera.client import AteraClient
from gateway_atera.simulator import AteraSimulator


@pytest.fixture(scope="module")
def running_sim() -> Iterator[AteraSimulator]:
    simulator = AteraSimulator()
    running: RunningServer = simulator.serve_in_thread()
    yield simulator
    running.stop()


@pytest.fixture
def sim(running_sim: AteraSimulator) -> AteraSimulator:
    """The module's simulator, emptied and seeded with the demo account for this test."""
    running_sim.clear()
    running_sim.seed_demo()
    return running_sim


@pytest.fixture
def connect(sim: AteraSimulator) -> Iterator[Callable[..., AteraClient]]:
    """``gateway_connect`` on a connection to the simulator (keywords: ``api_key``,
    ``runtime`` and settings); every client made is closed afterwards."""
    made: list[AteraClient] = []

    def open_client(*, api_key: str | None = None, runtime: Any = None, **settings: Any) -> AteraClient:
        demo = sim.demo_connection(sim.base_url)
        connection = Connection(
            id="at-test",
            workspace="acme-msp",
            vendor=demo["vendor"],
            base_url=demo["base_url"],
            settings={**demo["settings"], **settings},
            secrets={"api_key": api_key or demo["secrets"]["api_key"]},
            timeout_seconds=5.0,
            runtime=runtime,
        )
        client = hooks.gateway_connect(connection)
        made.append(client)
        return client

    yield open_client
    for client in made:
        client.close()


@pytest.fixture
def client(connect: Callable[..., AteraClient]) -> AteraClient:
    return connect()
