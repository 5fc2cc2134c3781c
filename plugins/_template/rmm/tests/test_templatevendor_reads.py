"""Reads through the plugin's hooks against the simulator: organizations, devices with their
console links, found by serial or host name, and active alerts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway.errors import VendorRejected
from gateway.testing.conformance import Env, build_env
from gateway_templatevendor.simulator import TemplateVendorSimulator


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = TemplateVendorSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="tv")


def test_customers(env: Env) -> None:
    assert [c.name for c in env.gw.call("tv", "gateway_customer_list")] == ["Acme Corp", "Globex", "Initech"]


def test_device_get_and_find_by_serial_then_host_name(env: Env) -> None:
    by_serial = env.gw.call("tv", "gateway_device_find", serial="sn-acme-0017", hostname=None)
    assert by_serial is not None and by_serial.name == "ACME-WS17" and by_serial.customer_ref == "tv:1"
    assert by_serial.url and by_serial.url.endswith(f"/devices/{by_serial.ref.split(':')[1]}")
    by_host = env.gw.call("tv", "gateway_device_find", serial="no-such-serial", hostname="GLOBEX-FS01.globex.local")
    assert by_host is not None and by_host.name == "GLOBEX-FS01"
    assert env.gw.call("tv", "gateway_device_get", device_id=by_host.ref.split(":")[1]) == by_host
    assert env.gw.call("tv", "gateway_device_find", serial=None, hostname="nowhere") is None
    assert env.gw.call("tv", "gateway_device_get", device_id="999999") is None


def test_alerts_all_and_per_customer(env: Env) -> None:
    every = env.gw.call("tv", "gateway_alert_list", customer_id=None)
    acme = env.gw.call("tv", "gateway_alert_list", customer_id="1")
    assert len(every) == 4 and len(acme) == 2
    assert all(a.customer_ref == "tv:1" and a.active for a in acme)
    one = env.gw.call("tv", "gateway_alert_get", alert_id=acme[0].ref.split(":")[1])
    assert one == acme[0]


def test_a_wrong_api_key_is_rejected_not_retried(env: Env) -> None:
    env.sim.api_key = "another-key"  # type: ignore[attr-defined]
    with pytest.raises(VendorRejected) as caught:
        env.gw.call("tv", "gateway_customer_list")
    assert caught.value.status == 401
