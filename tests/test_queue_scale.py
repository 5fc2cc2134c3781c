"""The queue over three PSAs at once equals a brute-force scan of what the PSAs hold.

``make test`` runs it with a few hundred tickets; the 100,000-ticket run of the issue is
marked slow (``make test-all``)."""

from __future__ import annotations

import random
from datetime import datetime
from collections.abc import Iterator

import pytest
import redis
from gateway_autotask.simulator import AutotaskSimulator
from gateway_connectwise.simulator import ConnectWiseSimulator
from gateway_halopsa.simulator import HaloSimulator
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.models import Ticket, TicketQuery
from gateway.testing.workers import sync_until_idle
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config

FAST = [{"requests": 100_000, "per_seconds": 1.0}]


class Queue:
    def __init__(self, gw: Gateway, api: TestClient, key: str) -> None:
        self.gw, self.api, self.key = gw, api, key

    def pages(self, path: str = "/v1/tickets", **params) -> list[dict]:
        out, cursor = [], None
        while True:
            query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
            body = self.api.get(path, params=query, headers={"Authorization": f"Bearer {self.key}"}).json()
            out += body["tickets"]
            cursor = body.get("next_cursor")
            if not cursor:
                return out


def scan(gw: Gateway, connection: str) -> list[Ticket]:
    """Every ticket of a connection, read straight through its plugin (no store)."""
    tickets, cursor = [], None
    while True:
        page = gw.call(connection, "gateway_ticket_list", query=TicketQuery(page_size=500, cursor=cursor))
        tickets += page.tickets
        cursor = page.next_cursor
        if not cursor:
            return tickets


@pytest.fixture
def three_psas(redis_client: redis.Redis, request: pytest.FixtureRequest) -> Iterator[Queue]:
    per_psa = request.param
    rng = random.Random(5)
    cw, at, halo = ConnectWiseSimulator(), AutotaskSimulator(), HaloSimulator()
    for sim in (cw, at, halo):
        sim.seed_demo()
    halo.rate_limit_requests = 10_000_000
    at.hourly_threshold = 10_000_000
    words = ["printer", "vpn", "email", "laptop", "backup"]
    for i in range(per_psa):
        cw.add_ticket(f"{rng.choice(words)} cw {i}")
        at.add_ticket(title=f"{rng.choice(words)} at {i}", status=rng.choice([1, 5, 7, 8]))
        halo.add_ticket(f"{rng.choice(words)} halo {i}", status_id=rng.choice([1, 2, 9]))
    servers = [sim.serve_in_thread() for sim in (cw, at, halo)]
    key = new_api_key()
    conns = [
        connection_config(name, sim.demo_connection(server.base_url), rate_limit=FAST, concurrency=None)
        for name, sim, server in zip(("cw", "at", "halo"), (cw, at, halo), servers)
    ]
    gw = Gateway(settings_from({"workspaces": [workspace_config("msp", conns, {key: ALL_SCOPES})]}), redis_client)
    try:
        for name in ("cw", "at", "halo"):
            sync_until_idle(gw, name)
        with TestClient(create_app(gw)) as api:
            yield Queue(gw, api, key)
    finally:
        gw.close()
        for server in servers:
            server.stop()


def check_queue_against_the_psas(queue: Queue) -> None:
    truth = {t.ref: t for name in ("cw", "at", "halo") for t in scan(queue.gw, name)}
    everything = queue.pages()
    assert sorted(t["ref"] for t in everything) == sorted(truth)
    updated = [datetime.fromisoformat(t["updated_at"].replace("Z", "+00:00")) for t in everything]
    assert updated == sorted(updated, reverse=True)
    for category in ("new", "in_progress", "awaiting_customer", "closed"):
        expected = sorted(r for r, t in truth.items() if t.status.category.value == category)
        assert sorted(t["ref"] for t in queue.pages(category=category)) == expected, category
    expected = sorted(r for r, t in truth.items() if t.vendor == "halopsa" and "printer" in t.summary.lower())
    assert sorted(t["ref"] for t in queue.pages(vendor="halopsa", q="printer")) == expected
    customer = next(t.customer.ref for t in truth.values() if t.customer and t.connection == "at")
    expected = sorted(r for r, t in truth.items() if t.customer and t.customer.ref == customer)
    assert sorted(t["ref"] for t in queue.pages(customer=customer)) == expected
    open_view = queue.pages(f"/v1/customers/{customer}/tickets", category=["new", "in_progress"])
    assert [t["ref"] for t in open_view] == [t["ref"] for t in queue.pages(customer=customer, category=["new", "in_progress"])]


@pytest.mark.parametrize("three_psas", [150], indirect=True)
def test_the_queue_over_three_psas_equals_a_scan_of_them(three_psas: Queue) -> None:
    check_queue_against_the_psas(three_psas)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("three_psas", [33_334], indirect=True)
def test_a_hundred_thousand_tickets_over_three_psas_equal_a_scan_of_them(three_psas: Queue) -> None:
    check_queue_against_the_psas(three_psas)


def _cursor(payload: str) -> str:
    import base64

    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


@pytest.mark.parametrize("three_psas", [20], indirect=True)
def test_a_cursor_with_a_non_finite_or_forged_score_is_a_400_on_both_queue_routes(three_psas: Queue) -> None:
    queue = three_psas
    headers = {"Authorization": f"Bearer {queue.key}"}
    first = queue.api.get("/v1/tickets", params={"limit": 2}, headers=headers).json()
    good = first["next_cursor"]
    ref = first["tickets"][-1]["ref"]
    customer = next(t["customer"]["ref"] for t in queue.pages() if t.get("customer"))
    bad = [
        *(_cursor(f'["{s}", "{ref}", "u", true]') for s in ("nan", "NaN", "inf", "-inf", "Infinity", "1e999", "")),
        *(_cursor(f'[{s}, "{ref}", "u", true]') for s in ("NaN", "Infinity", "-Infinity", "1e999", "1.5", "null")),
        _cursor(f'["1.5", 7, "u", true]'), _cursor('["1.5", "x", "z", true]'), _cursor('["1.5", "x", "u", 1]'),
        _cursor('{"a": 1}'), "not base64 at all!", good + "!!", "A" * 10_000,
    ]
    for path in ("/v1/tickets", f"/v1/customers/{customer}/tickets"):
        for cursor in bad:
            response = queue.api.get(path, params={"cursor": cursor}, headers=headers)
            assert response.status_code == 400, (path, cursor[:80], response.status_code, response.text[:200])
            assert response.json()["title"] == "Bad cursor"
    assert queue.api.get("/v1/tickets", params={"limit": 2, "cursor": good}, headers=headers).status_code == 200
