"""Webhooks (provisional shape): the simulator signs and sends, the plugin verifies and parses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.errors import BadSignature
from gateway.models import ReplyStep, TicketCreate
from gateway.testing.simulator import serve_asgi_in_thread
from gateway.webhooks import WebhookEvent

from gateway_halopsa import hooks

SECRET = "whsec-test-0123456789"


class Receiver:
    """A loopback endpoint that keeps every delivery's headers and raw body."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.deliveries.append((headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    server = serve_asgi_in_thread(app)
    yield app, server.base_url + "/hooks/halo"
    server.stop()


def test_ticket_changes_arrive_signed_and_parse_to_ticket_events(sim, make_client, receiver):
    app, url = receiver
    sim.add_webhook(url, SECRET)
    client = make_client()

    created = hooks.gateway_ticket_create(client, TicketCreate(summary="Disk full"), "c1")
    hooks.gateway_reply(client, created.vendor_id, ReplyStep(text="Cleaning up"), "r1")
    sim.flush_webhooks()

    events = [hooks.gateway_webhook_parse(client, headers, body, SECRET) for headers, body in app.deliveries]
    assert events == [
        [WebhookEvent(entity="ticket", vendor_id=created.vendor_id, action="created")],
        [WebhookEvent(entity="ticket", vendor_id=created.vendor_id, action="updated")],
    ]
    assert all(d["status"] == 200 for d in sim.webhook_deliveries)


def test_wrong_or_missing_signature_is_refused(sim, make_client, receiver):
    app, url = receiver
    sim.add_webhook(url, SECRET)
    client = make_client()
    hooks.gateway_ticket_create(client, TicketCreate(summary="Disk full"), "c1")
    sim.flush_webhooks()
    headers, body = app.deliveries[0]

    with pytest.raises(BadSignature):
        hooks.gateway_webhook_parse(client, headers, body, "another-secret")
    with pytest.raises(BadSignature):
        hooks.gateway_webhook_parse(client, {"content-type": "application/json"}, body, SECRET)
    with pytest.raises(BadSignature):
        hooks.gateway_webhook_parse(client, headers, body.replace(b"Disk", b"Disc"), SECRET)
    with pytest.raises(BadSignature):
        hooks.gateway_webhook_parse(client, headers, body, None)
