"""Gateway tests run against the ConnectWise plugin and its simulator over loopback HTTP."""

from collections.abc import Iterator

import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator

from gateway.testing.conformance import Env, build_env


@pytest.fixture
def cw(redis_client: redis.Redis) -> Iterator[Env]:
    """A gateway with one ConnectWise connection (``conf``) on a seeded simulator."""
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client)
