"""Sync fills the store from the PSA, incremental pulls and webhooks keep it fresh, and the
queue always equals what a scan of the PSA's own records says."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator

from gateway import sync
from gateway.api.app import create_app
from gateway.testing.conformance import Env, build_env
from gateway.testing.simulator import serve_asgi_in_thread
from gateway.testing.workers import drain


def vendor_client(env: Env) -> httpx.Client:
    """Another ConnectWise user, changing tickets inside the PSA (not through the gateway)."""
    conn = env.sim.demo_connection(env.server.base_url)
    s = conn["secrets"]
    token = base64.b64encode(f"{conn['settings']['company_id']}+{s['public_key']}:{s['private_key']}".encode()).decode()
    return httpx.Client(base_url=conn["base_url"], headers={"Authorization": f"Basic {token}", "clientId": s["client_id"]})


def all_pages(env: Env, path: str = "/v1/tickets", **params) -> list[dict]:
    out, cursor = [], None
    while True:
        body = env.get(path, params={**params, "limit": 37, **({"cursor": cursor} if cursor else {})}).json()
        out += body["tickets"]
        cursor = body.get("next_cursor")
        if not cursor:
            return out


def sim_tickets(env: Env) -> dict[str, dict]:
    with env.sim.lock:
        return {str(t["id"]): dict(t) for t in env.sim.tickets.values()}


def test_the_backfill_brings_every_ticket_and_filters_match_the_psa(cw: Env) -> None:
    cw.sync()
    truth = sim_tickets(cw)
    queue = all_pages(cw)
    assert sorted(t["vendor_id"] for t in queue) == sorted(truth)
    for board in {t["board"]["name"] for t in truth.values()}:
        expected = sorted(i for i, t in truth.items() if t["board"]["name"] == board)
        assert sorted(t["vendor_id"] for t in all_pages(cw, board=board)) == expected
    company = next(iter(truth.values()))["company"]
    expected = sorted(i for i, t in truth.items() if t["company"]["id"] == company["id"])
    got = all_pages(cw, customer=f"conf:{company['id']}")
    assert sorted(t["vendor_id"] for t in got) == expected


def test_the_customer_view_equals_the_global_view_filtered_by_customer(cw: Env) -> None:
    cw.sync()
    company_ref = all_pages(cw)[0]["customer"]["ref"]
    global_view = all_pages(cw, customer=company_ref, category=["new", "in_progress"])
    customer_view = all_pages(cw, f"/v1/customers/{company_ref}/tickets", category=["new", "in_progress"])
    assert [t["ref"] for t in customer_view] == [t["ref"] for t in global_view]


def test_a_status_changed_in_the_psa_shows_after_the_next_pull(cw: Env) -> None:
    cw.sync()
    ticket = cw.sim.sample_ticket_id()
    target = next(s for s in cw.sim.valid_status_ids(ticket) if s != cw.sim.ticket_status_id(ticket))
    with vendor_client(cw) as vendor:
        assert vendor.patch(f"/service/tickets/{ticket}", json=[{"op": "replace", "path": "status/id", "value": int(target)}]).status_code == 200
    assert ticket not in {t["vendor_id"] for t in all_pages(cw, status_id=f"conf:{target}")}
    cw.sync()
    assert ticket in {t["vendor_id"] for t in all_pages(cw, status_id=f"conf:{target}")}


def test_a_write_through_the_gateway_shows_in_the_queue_once_the_vendor_confirms_it(cw: Env) -> None:
    cw.sync()
    ticket = cw.sim.sample_ticket_id()
    target = next(s for s in cw.sim.valid_status_ids(ticket) if s != cw.sim.ticket_status_id(ticket))
    cw.post(f"/v1/tickets/{cw.ref(ticket)}/status", {"status_id": target})
    cw.drain()  # runs the write, then the fetch it triggers; no sync pull in between
    assert ticket in {t["vendor_id"] for t in all_pages(cw, status_id=f"conf:{target}")}


def test_tickets_gone_from_the_psa_leave_the_queue_on_the_next_full_sync(cw: Env) -> None:
    cw.sync()
    ticket = cw.sim.sample_ticket_id()
    with cw.sim.lock:  # an admin deletes the ticket inside ConnectWise
        del cw.sim.tickets[int(ticket)]
    sync.resync(cw.gw, "conf")
    cw.sync()
    assert ticket not in {t["vendor_id"] for t in all_pages(cw)}


def test_wiping_the_store_and_resyncing_gives_the_same_queue(cw: Env, redis_client: redis.Redis) -> None:
    cw.sync()
    before = [(t["ref"], t["status"]["id"], t["updated_at"]) for t in all_pages(cw)]
    facets = cw.get("/v1/tickets", params={"facets": True}).json()["facets"]
    for key in redis_client.scan_iter(match="tk:*"):
        redis_client.delete(key)
    for pattern in ("tf:*", "ix:*", "cnt:*", "th:*", "sync:*"):
        for key in redis_client.scan_iter(match=pattern):
            redis_client.delete(key)
    assert cw.get("/v1/tickets").json()["tickets"] == []
    cw.sync()
    assert [(t["ref"], t["status"]["id"], t["updated_at"]) for t in all_pages(cw)] == before
    assert cw.get("/v1/tickets", params={"facets": True}).json()["facets"] == facets


def test_sync_status_is_shown_per_connection(cw: Env) -> None:
    cw.sync()
    conn = next(c for c in cw.get("/v1/connections").json() if c["id"] == "conf")
    assert conn["sync"]["backfill_done"] is True
    assert conn["sync"]["tickets"] == len(sim_tickets(cw))
    assert conn["sync"]["errors"] == 0 and conn["sync"]["lag_seconds"] is not None


@pytest.fixture
def served(redis_client: redis.Redis) -> Iterator[tuple[Env, str]]:
    """The gateway API on a real loopback port, so the simulator can deliver webhooks to it."""
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    envs = build_env(sim, redis_client)
    env = next(envs)
    api = serve_asgi_in_thread(create_app(env.gw))
    yield env, api.base_url
    api.stop()
    envs.close()


def test_a_signed_webhook_makes_the_change_show_without_a_pull(served: tuple[Env, str]) -> None:
    env, base = served
    env.sync()
    secret = env.sim.demo_connection(env.server.base_url)["webhook_secret"]
    env.sim.add_webhook(f"{base}/v1/webhooks/conf?recordId=", secret)
    ticket = env.sim.sample_ticket_id()
    target = next(s for s in env.sim.valid_status_ids(ticket) if s != env.sim.ticket_status_id(ticket))
    with vendor_client(env) as vendor:
        vendor.patch(f"/service/tickets/{ticket}", json=[{"op": "replace", "path": "status/id", "value": int(target)}])
    assert env.sim.wait_for_callbacks(10)
    drain(env.gw, timeout=30)  # the fetch the webhook queued; no pull is run
    assert ticket in {t["vendor_id"] for t in all_pages(env, status_id=f"conf:{target}")}


def test_a_webhook_with_a_bad_or_missing_signature_is_refused_and_logged(served: tuple[Env, str], caplog) -> None:
    env, base = served
    body = b'{"ID": 1, "Type": "ticket", "Action": "updated"}'
    with httpx.Client(base_url=base) as client:
        missing = client.post("/v1/webhooks/conf", content=body)
        wrong = client.post("/v1/webhooks/conf", content=body, headers={"x-content-signature": "bm9wZQ=="})
        unknown = client.post("/v1/webhooks/nope", content=body)
    assert missing.status_code == wrong.status_code == 401
    assert unknown.status_code == 404
    assert env.gw.redis.llen("rq:queue:events") == 0
    assert "refused a webhook for conf" in caplog.text


def test_a_reply_posted_during_a_backfill_waits_at_most_one_sync_call(redis_client: redis.Redis) -> None:
    """Writes go first: sync pages queue behind writes and never book rate budget ahead."""
    import threading

    from gateway import hub
    from gateway.worker import GatewayWorker

    sim = ConnectWiseSimulator()
    sim.seed_demo()
    for i in range(4000):  # nine pages of 500 at three calls a second: a backfill of ~3 seconds
        sim.add_ticket(f"bulk ticket {i}")
    # read_share 1: sync may use the whole budget, and the reply still waits for one call at most.
    envs = build_env(sim, redis_client, rate_limit=[{"requests": 3, "per_seconds": 1.0}], read_share=1.0)
    env = next(envs)
    try:
        ticket = sim.sample_ticket_id()
        sync.schedule(env.gw, "conf")
        accepted: list[str] = []

        def post_reply_soon() -> None:
            # Once the backfill is under way (two pages in), with more pages to come.
            while sync.load_state(env.gw, "conf").pages < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            accepted.append(env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "during backfill"}).json()["write_id"])

        deadline = time.monotonic() + 60
        poster = threading.Thread(target=post_reply_soon)
        poster.start()
        hub.bind(env.gw)
        worker = GatewayWorker(["writes", sync.EVENTS_QUEUE, sync.SYNC_QUEUE], connection=env.gw.redis)
        worker.gateway = env.gw
        while time.monotonic() < deadline and not (accepted and env.write(accepted[0])["status"] == "succeeded"):
            sync.promote_due(env.gw)
            worker.work(burst=True, logging_level="WARNING", max_jobs=5)
            time.sleep(0.01)
        poster.join()
        assert env.write(accepted[0])["status"] == "succeeded"
        records = env.get("/v1/admin/audit", params={"limit": 1000}).json()
        accept = next(r for r in records if r["kind"] == "api_write" and r["attributes"]["gateway.write_id"] == accepted[0])
        reply = next(r for r in records if r["kind"] == "vendor_call" and r["attributes"].get("gateway.write_id") == accepted[0]
                     and r["attributes"]["http.request.method"] == "POST")
        sync_calls = [r for r in records if r["kind"] == "vendor_call" and r["attributes"].get("gateway.purpose") == "sync"
                      and r["attributes"]["url.path"].endswith("/service/tickets")]
        between = [r for r in sync_calls if accept["started_at"] < r["started_at"] < reply["started_at"]]
        assert len(between) <= 1, [r["name"] for r in between]
        assert len(sync_calls) > 1 and not sync.load_state(env.gw, "conf").backfill_done  # it was mid-backfill
    finally:
        envs.close()
