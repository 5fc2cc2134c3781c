"""Inbound vendor webhooks are refused without the vendor's valid signature: missing, wrong,
made with another secret, or valid for another body. A refused delivery triggers no fetch and
its log line carries no secret. A correctly signed delivery is taken once: its replays are
acknowledged without a vendor fetch, and an Autotask delivery sent long ago is refused. Checked through ``POST /v1/webhooks/{connection}`` and, below
the route, through each PSA plugin's ``gateway_webhook_parse``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import redis
import rq
from gateway_autotask import webhooks as autotask_webhooks
from gateway_connectwise import webhooks as connectwise_webhooks
from gateway_halopsa import webhooks as halo_webhooks
from litestar import Litestar, Request, post
from litestar.testing import TestClient

from gateway import sync
from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.errors import BadSignature
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from
from gateway.testing.simulator import serve_asgi_in_thread
from gateway.webhooks import as_delivery

from reliability_kit import SimHandle, gateway_tables, secrets_of, serve_psas, wait_for

# Per PSA: the signature header, how the vendor signs a body, and a delivery about a ticket.
VENDORS: dict[str, tuple[str, Callable[[str, bytes], str], Callable[[str], dict[str, Any]]]] = {
    "cw": ("x-content-signature", lambda secret, body: connectwise_webhooks.signature(secret, body),
           lambda ticket: {"Action": "updated", "Type": "Ticket", "ID": int(ticket)}),
    "at": ("x-hook-signature", lambda secret, body: autotask_webhooks.signature(secret, body),
           lambda ticket: {"Action": "Update", "EntityType": "Ticket", "Id": int(ticket), "Fields": {}}),
    "halo": ("x-halo-signature", lambda secret, body: halo_webhooks.sign(body, secret),
             lambda ticket: {"event": "ticket.updated", "id": int(ticket)}),
}


@pytest.fixture
def rig(redis_client: redis.Redis) -> Iterator[tuple[TestClient, Gateway, list[SimHandle]]]:
    handles = serve_psas()
    tables = gateway_tables(handles, {new_api_key(): ALL_SCOPES}, timeout_seconds=5.0)
    gw = Gateway(settings_from(tables), redis_client)
    try:
        with TestClient(create_app(gw)) as api:
            yield api, gw, handles
    finally:
        gw.close()
        for h in handles:
            h.stop()


def _secret(h: SimHandle) -> str:
    return h.sim.demo_connection(h.server.base_url)["webhook_secret"]


def _bad_deliveries(h: SimHandle) -> dict[str, tuple[bytes, dict[str, str]]]:
    header, sign, delivery = VENDORS[h.connection]
    ticket = h.sim.sample_ticket_id()
    body = json.dumps(delivery(ticket)).encode()
    other = json.dumps(delivery(str(int(ticket) + 1))).encode()
    return {
        "no signature": (body, {}),
        "empty signature": (body, {header: ""}),
        "garbage signature": (body, {header: "sha256=deadbeef"}),
        "signed with another secret": (body, {header: sign("not-the-connection-secret", body)}),
        "signature of another body": (body, {header: sign(_secret(h), other)}),
        "signature in another header": (body, {"x-signature": sign(_secret(h), body)}),
    }


def test_webhooks_without_a_valid_signature_are_refused_and_trigger_nothing(
    rig: tuple[TestClient, Gateway, list[SimHandle]], caplog: pytest.LogCaptureFixture
) -> None:
    api, gw, handles = rig
    caplog.set_level(logging.INFO)
    events = rq.Queue(sync.EVENTS_QUEUE, connection=gw.redis)
    for h in handles:
        for case, (body, headers) in _bad_deliveries(h).items():
            before = events.count + gw.redis.zcard(sync.DELAYED)
            response = api.post(f"/v1/webhooks/{h.connection}", content=body,
                                headers={"content-type": "application/json", **headers})
            assert response.status_code == 401, (h.connection, case, response.text)
            assert events.count + gw.redis.zcard(sync.DELAYED) == before, f"{h.connection} {case}: a fetch was queued"
        # The same delivery, signed by the vendor's secret, is taken.
        header, sign, delivery = VENDORS[h.connection]
        body = json.dumps(delivery(h.sim.sample_ticket_id())).encode()
        good = api.post(f"/v1/webhooks/{h.connection}", content=body,
                        headers={"content-type": "application/json", header: sign(_secret(h), body)})
        assert good.status_code == 202, (h.connection, good.text)
    assert api.post("/v1/webhooks/no-such-connection", content=b"{}").status_code == 404
    for secret in secrets_of(handles):
        assert secret not in caplog.text


def test_each_psa_plugin_verifies_signatures_below_the_route(rig: tuple[TestClient, Gateway, list[SimHandle]]) -> None:
    _, gw, handles = rig
    for h in handles:
        for case, (body, headers) in _bad_deliveries(h).items():
            with pytest.raises(BadSignature):
                gw.call(h.connection, "gateway_webhook_parse", headers=headers, body=body, secret=_secret(h))
        header, sign, delivery = VENDORS[h.connection]
        body = json.dumps(delivery(h.sim.sample_ticket_id())).encode()
        with pytest.raises(BadSignature):  # no secret configured: nothing verifies
            gw.call(h.connection, "gateway_webhook_parse", headers={header: sign(_secret(h), body)}, body=body, secret=None)
        found = gw.call(h.connection, "gateway_webhook_parse", headers={header: sign(_secret(h), body)},
                        body=body, secret=_secret(h))
        assert as_delivery(found).events[0].entity == "ticket"


def _real_delivery(gw: Gateway, h: SimHandle) -> tuple[dict[str, str], bytes]:
    """A delivery the simulator itself signs and sends after a status change through the plugin."""
    received: list[tuple[dict[str, str], bytes]] = []

    @post("/hook", status_code=200)
    async def hook(request: Request) -> None:
        received.append((dict(request.headers), await request.body()))

    recorder = serve_asgi_in_thread(Litestar([hook]))
    try:
        h.sim.add_webhook(f"{recorder.base_url}/hook" + ("?recordId=" if h.connection == "cw" else ""), _secret(h))
        ticket = h.sim.sample_ticket_id()
        target = next(s for s in h.sim.valid_status_ids(ticket) if s != h.sim.ticket_status_id(ticket))
        gw.call(h.connection, "gateway_status_change", ticket_id=ticket, status_id=target)
        wait_for(lambda: received, 10, f"a webhook delivery from the {h.connection} simulator")
        headers, body = received[0]
    finally:
        recorder.stop()
    keep = {k: v for k, v in headers.items() if k.startswith("x-") or k == "content-type"}
    return keep, body


def _post_signed(api: TestClient, h: SimHandle, payload: dict[str, Any]) -> Any:
    header, sign, _ = VENDORS[h.connection]
    body = json.dumps(payload).encode()
    return api.post(f"/v1/webhooks/{h.connection}", content=body,
                    headers={"content-type": "application/json", header: sign(_secret(h), body)})


def _fetches(gw: Gateway) -> int:
    return rq.Queue(sync.EVENTS_QUEUE, connection=gw.redis).count + gw.redis.zcard(sync.DELAYED)


def test_a_replayed_signed_delivery_is_taken_once_and_costs_no_vendor_call(
    rig: tuple[TestClient, Gateway, list[SimHandle]],
) -> None:
    api, gw, handles = rig
    for h in handles:
        headers, body = _real_delivery(gw, h)
        before = _fetches(gw)
        first = api.post(f"/v1/webhooks/{h.connection}", content=body, headers=headers)
        assert first.status_code == 202 and first.json()["events"] >= 1, (h.connection, first.text)
        taken = _fetches(gw)
        assert taken > before, f"{h.connection}: the first delivery queued no fetch"
        for _ in range(3):  # the same bytes, the same valid signature
            again = api.post(f"/v1/webhooks/{h.connection}", content=body, headers=headers)
            assert again.status_code == 202, (h.connection, again.text)
            assert again.json() == {"events": 0, "duplicate": True}, h.connection
        assert _fetches(gw) == taken, f"{h.connection}: a replay queued a vendor fetch"


def test_an_autotask_delivery_sent_long_ago_is_refused_even_when_correctly_signed(
    rig: tuple[TestClient, Gateway, list[SimHandle]],
) -> None:
    api, gw, handles = rig
    h = next(h for h in handles if h.connection == "at")
    delivery = VENDORS["at"][2]
    sent = datetime.now(timezone.utc) - timedelta(hours=2)
    payload = {**delivery(h.sim.sample_ticket_id()), "Guid": str(uuid.uuid4()),
               "EventTime": sent.strftime("%Y-%m-%dT%H:%M:%SZ")}
    before = _fetches(gw)
    response = _post_signed(api, h, payload)
    assert response.status_code == 400 and "older than" in response.json()["detail"], response.text
    assert _fetches(gw) == before
    # The same event sent now is taken.
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    taken = _post_signed(api, h, {**payload, "Guid": str(uuid.uuid4()), "EventTime": now})
    assert taken.status_code == 202 and taken.json()["events"] == 1, taken.text


def test_a_webhook_event_naming_an_impossible_id_fetches_nothing(
    rig: tuple[TestClient, Gateway, list[SimHandle]],
) -> None:
    api, gw, handles = rig
    h = next(h for h in handles if h.connection == "halo")
    before = _fetches(gw)
    response = _post_signed(api, h, {"event": "ticket.updated", "id": "9" * 5000})
    assert response.status_code == 202 and response.json()["events"] == 0, response.text[:300]
    assert _fetches(gw) == before
