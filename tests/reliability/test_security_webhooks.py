"""Inbound vendor webhooks are refused without the vendor's valid signature: missing, wrong,
made with another secret, or valid for another body. A refused delivery triggers no fetch and
its log line carries no secret. Checked through ``POST /v1/webhooks/{connection}`` and, below
the route, through each PSA plugin's ``gateway_webhook_parse``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import rq
from gateway_autotask import webhooks as autotask_webhooks
from gateway_connectwise import webhooks as connectwise_webhooks
from gateway_halopsa import webhooks as halo_webhooks
from litestar.testing import TestClient

from gateway import sync
from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.errors import BadSignature
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from

from reliability_kit import SimHandle, gateway_tables, secrets_of, serve_psas

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
        assert found and found[0].entity == "ticket"
