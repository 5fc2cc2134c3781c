"""Signed webhook deliveries from the simulator, verified and parsed by the plugin."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from gateway.errors import BadSignature
from gateway.models import ReplyStep
from gateway.webhooks import WebhookEvent
from gateway_autotask import hooks
from gateway_autotask.client import AutotaskClient
from gateway_autotask.simulator import AutotaskSimulator
from gateway_autotask.webhooks import signature

SECRET = "whk-secret-1234"


class Receiver:
    """A loopback HTTP server that records every delivery (lower-cased headers, raw body)."""

    def __init__(self, delay: float = 0.0) -> None:
        received: list[tuple[dict[str, str], bytes]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(delay)
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/autotask-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(sim: AutotaskSimulator) -> Iterator[Receiver]:
    r = Receiver()
    sim.add_webhook(r.url, SECRET)
    yield r
    r.close()


def test_note_delivery_is_signed_and_names_the_note_and_its_ticket(client: AutotaskClient, sim: AutotaskSimulator, receiver: Receiver) -> None:
    effect = hooks.gateway_reply(client, "7800", ReplyStep(text="On my way"), "w1")
    assert sim.wait_webhooks()
    (headers, body), = receiver.received
    payload = json.loads(body)
    assert set(payload) == {"Action", "Guid", "EntityType", "Id", "Fields", "EventTime", "SequenceNumber", "PersonID"}
    assert (payload["Action"], payload["EntityType"], payload["PersonID"]) == ("Create", "TicketNote", 29682885)
    assert headers["x-hook-signature"] == signature(SECRET, body)
    delivery = hooks.gateway_webhook_parse(client, headers, body, SECRET)
    assert delivery.events == (
        WebhookEvent(entity="note", vendor_id=effect.vendor_id, action="created"),
        WebhookEvent(entity="ticket", vendor_id="7800", action="updated"),
    )
    # The Guid and EventTime let the gateway refuse a replay of this delivery.
    assert delivery.delivery_id == payload["Guid"]
    assert delivery.sent_at == datetime.fromisoformat(payload["EventTime"])


def test_status_change_delivers_a_ticket_update(client: AutotaskClient, sim: AutotaskSimulator, receiver: Receiver) -> None:
    hooks.gateway_status_change(client, "7801", "5")
    assert sim.wait_webhooks()
    (headers, body), = receiver.received
    assert json.loads(body)["Fields"]["Status"] == 5
    assert hooks.gateway_webhook_parse(client, headers, body, SECRET).events == (WebhookEvent(entity="ticket", vendor_id="7801", action="updated"),)


def test_sequence_numbers_grow_with_each_change(client: AutotaskClient, sim: AutotaskSimulator, receiver: Receiver) -> None:
    hooks.gateway_status_change(client, "7801", "8")
    hooks.gateway_reply(client, "7801", ReplyStep(text="Update", internal=True), "w2")
    assert sim.wait_webhooks()
    assert [json.loads(body)["SequenceNumber"] for _, body in receiver.received] == [1, 2]


def test_wrong_secret_tampered_body_or_missing_signature_is_refused(client: AutotaskClient, sim: AutotaskSimulator, receiver: Receiver) -> None:
    hooks.gateway_status_change(client, "7800", "8")
    assert sim.wait_webhooks()
    (headers, body), = receiver.received
    with pytest.raises(BadSignature, match="does not match"):
        hooks.gateway_webhook_parse(client, headers, body, "another-secret")
    with pytest.raises(BadSignature, match="does not match"):
        hooks.gateway_webhook_parse(client, headers, body.replace(b'"Update"', b'"Delete"'), SECRET)
    unsigned = {k: v for k, v in headers.items() if k != "x-hook-signature"}
    with pytest.raises(BadSignature, match="missing"):
        hooks.gateway_webhook_parse(client, unsigned, body, SECRET)
    with pytest.raises(BadSignature, match="no webhook secret"):
        hooks.gateway_webhook_parse(client, headers, body, None)


def test_a_slow_receiver_does_not_hold_up_the_api(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    slow = Receiver(delay=0.6)
    sim.add_webhook(slow.url, SECRET)
    try:
        client.zone  # noqa: B018
        start = time.perf_counter()
        hooks.gateway_status_change(client, "7800", "8")
        assert time.perf_counter() - start < 0.4
        assert sim.wait_webhooks(timeout=5)
        assert len(slow.received) == 1
    finally:
        slow.close()


def test_unknown_entities_parse_to_nothing(client: AutotaskClient) -> None:
    body = json.dumps({"Action": "Update", "EntityType": "ConfigurationItem", "Id": 5, "Fields": {}}).encode()
    assert hooks.gateway_webhook_parse(client, {"x-hook-signature": signature(SECRET, body)}, body, SECRET).events == ()
