"""The OAuth token: fetched once per connection, shared by every worker, replaced in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from gateway.errors import VendorRejected
from gateway_ninjaone import hooks
from gateway_ninjaone.client import NinjaOneClient
from gateway_ninjaone.simulator import DEMO_CLIENT_SECRET, NinjaOneSimulator

Connect = Callable[..., NinjaOneClient]


def test_two_workers_sharing_redis_use_one_token(sim: NinjaOneSimulator, connect: Connect) -> None:
    first, second = connect(), connect()

    hooks.gateway_customer_list(first)
    hooks.gateway_customer_list(second)
    hooks.gateway_alert_list(second, None)

    assert sim.stats["tokens_issued"] == 1


def test_token_is_kept_a_little_under_its_hour(
    sim: NinjaOneSimulator, connect: Connect, redis_client: redis.Redis
) -> None:
    hooks.gateway_customer_list(connect())

    ttl = redis_client.pttl("plugin:nj-test:token") / 1000
    assert 3600 - 125 < ttl <= 3600 - 120


def test_expired_token_is_fetched_again_before_the_vendor_refuses_it(
    sim: NinjaOneSimulator, connect: Connect
) -> None:
    sim.token_lifetime = 1
    client = connect()
    hooks.gateway_customer_list(client)

    time.sleep(0.95)  # kept 0.9 s of its 1 s life
    hooks.gateway_customer_list(client)

    assert sim.stats["tokens_issued"] == 2


def test_token_refused_by_the_vendor_is_replaced_once_for_every_worker(
    sim: NinjaOneSimulator, connect: Connect
) -> None:
    first, second = connect(), connect()
    hooks.gateway_customer_list(first)
    sim.expire_tokens()  # the vendor now answers 401 to the cached token

    assert [c.name for c in hooks.gateway_customer_list(first)] == ["Acme Corp", "Globex", "Initech"]
    assert len(hooks.gateway_customer_list(second)) == 3
    assert sim.stats["tokens_issued"] == 2


def test_workers_starting_together_fetch_a_single_token(sim: NinjaOneSimulator, connect: Connect) -> None:
    clients = [connect() for _ in range(8)]
    start = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def work(client: NinjaOneClient) -> None:
        try:
            start.wait()
            hooks.gateway_customer_list(client)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert sim.stats["tokens_issued"] == 1


def test_without_a_runtime_the_token_is_kept_in_the_process(sim: NinjaOneSimulator, connect: Connect) -> None:
    client = connect(runtime_=None)

    hooks.gateway_customer_list(client)
    hooks.gateway_alert_list(client, None)
    sim.expire_tokens()
    hooks.gateway_customer_list(client)

    assert sim.stats["tokens_issued"] == 2


def test_wrong_secret_is_refused_with_the_vendors_reason_and_no_secret(connect: Connect) -> None:
    client = connect(secret="not-the-secret-at-all")

    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_customer_list(client)

    assert caught.value.status == 401
    assert "invalid_client" in str(caught.value)
    assert "not-the-secret-at-all" not in str(caught.value) + caught.value.body


def test_client_secret_never_reaches_an_audit_span(connect: Connect, spans) -> None:  # type: ignore[no-untyped-def]
    hooks.gateway_customer_list(connect())

    recorded = spans.get_finished_spans()
    assert any(span.attributes.get("url.path") == "/ws/oauth/token" for span in recorded)
    for span in recorded:
        assert DEMO_CLIENT_SECRET not in repr(dict(span.attributes or {}))
