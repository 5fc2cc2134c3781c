"""The OAuth token: fetched once, shared through Redis, refreshed on expiry, never leaked."""

from __future__ import annotations

import json
import threading
import time

import pytest

from gateway.errors import VendorRejected
from gateway.models import RateLimitPolicy, ReplyStep
from gateway.testing.simulator import Faults

from gateway_halopsa import hooks
from gateway.oauth import TOKEN_KEY


def test_two_clients_sharing_redis_fetch_one_token(sim, make_client, runtime, redis_client):
    sim.seed_demo()
    first, second = make_client(runtime), make_client(runtime)

    first.statuses()
    second.ticket_types()
    first.ticket("1001")

    assert sim.stats["tokens_issued"] == 1
    ttl_ms = redis_client.pttl(TOKEN_KEY.format(connection="halo-test"))
    # Kept a bit under Halo's expires_in (3600 s) so it is refreshed before Halo refuses it.
    assert 3000 * 1000 < ttl_ms < 3600 * 1000


def test_token_expiring_mid_run_is_refetched_and_no_write_is_lost(sim, make_client, runtime):
    ticket_id = str(sim.add_ticket("Printer offline"))
    client = make_client(runtime)

    for n in range(3):
        hooks.gateway_reply(client, ticket_id, ReplyStep(text=f"note {n}", internal=True), f"k{n}")
    sim.expire_tokens()
    for n in range(3, 6):
        hooks.gateway_reply(client, ticket_id, ReplyStep(text=f"note {n}", internal=True), f"k{n}")

    assert [note["text"] for note in sim.ticket_notes(ticket_id)] == [f"note {n}" for n in range(6)]
    assert sim.stats["tokens_issued"] == 2
    assert sim.stats["unauthorized"] == 1


def test_tokens_dying_earlier_than_announced_are_replaced_on_each_401(sim, make_client):
    ticket_id = str(sim.add_ticket("VPN drops"))
    client = make_client()  # no runtime: the in-memory token store
    sim.token_lifetime = 0.2  # announced as expires_in=1, dead after 0.2 s

    for n in range(4):
        hooks.gateway_reply(client, ticket_id, ReplyStep(text=f"update {n}"), f"k{n}")
        time.sleep(0.25)

    assert len(sim.ticket_notes(ticket_id)) == 4
    assert sim.stats["tokens_issued"] >= 2


def test_concurrent_first_calls_fetch_one_token(sim, make_client, runtime):
    sim.set_faults(Faults(latency_ms=150))  # the token request is slow: everyone else waits
    clients = [make_client(runtime) for _ in range(6)]
    barrier = threading.Barrier(len(clients))
    errors: list[BaseException] = []

    def work(client):
        try:
            barrier.wait()
            client.statuses()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sim.stats["tokens_issued"] == 1


def test_concurrent_401s_after_expiry_refresh_once(sim, make_client, runtime):
    clients = [make_client(runtime) for _ in range(6)]
    clients[0].statuses()
    sim.expire_tokens()
    sim.set_faults(Faults(latency_ms=100))
    barrier = threading.Barrier(len(clients))

    def work(client):
        barrier.wait()
        client.ticket_types()

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sim.stats["tokens_issued"] == 2


def test_refresh_inside_a_call_works_when_one_call_may_be_in_flight(sim, make_client, runtime):
    client = make_client(runtime, rate_limit=RateLimitPolicy(concurrency=1))
    client.statuses()
    sim.expire_tokens()

    # The 401 refresh runs while this call holds the connection's only slot.
    assert [t["name"] for t in client.ticket_types()][0] == "Incident"
    assert sim.stats["tokens_issued"] == 2


def test_token_never_reaches_spans_or_errors(sim, make_client, runtime, spans):
    ticket_id = str(sim.add_ticket("Shared drive full"))
    client = make_client(runtime)
    hooks.gateway_reply(client, ticket_id, ReplyStep(text="On it"), "k1")
    sim.expire_tokens()
    hooks.gateway_ticket_thread(client, ticket_id)
    with pytest.raises(VendorRejected) as missing:
        client.http.get("/api/Tickets/424242")

    recorded = json.dumps(
        [{"name": s.name, "attributes": dict(s.attributes or {}), "status": str(s.status.description)} for s in spans.get_finished_spans()]
    )
    leaked = [t for t in sim.issued_tokens if t in recorded or t in str(missing.value) or t in missing.value.body]
    assert len(sim.issued_tokens) == 2 and leaked == []
    assert sim.client_secret not in recorded
    shown = repr(client) + repr(client.http.client.auth) + repr(client.tokens)
    assert not any(t in shown for t in sim.issued_tokens)


def test_wrong_client_secret_is_a_rejection_without_the_secret_in_it(sim, make_client, runtime):
    client = make_client(runtime)
    sim.client_secret = "rotated-elsewhere"

    with pytest.raises(VendorRejected) as rejected:
        client.statuses()

    assert rejected.value.status == 401
    assert "invalid_client" in str(rejected.value)
    assert client.connection.secrets["client_secret"] not in str(rejected.value)
