"""ConnectWise callbacks end to end: registration, signed delivery on ticket changes, and the
plugin's signature check."""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator

import pytest
from gateway.errors import BadSignature, VendorRejected
from gateway.models import ReplyStep, TicketCreate
from gateway.testing.simulator import serve_asgi_in_thread
from gateway.webhooks import WebhookEvent

from gateway_connectwise import hooks


class Receiver:
    """An HTTP endpoint on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, dict[str, str], bytes]] = queue.Queue()

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        target = scope["path"] + ("?" + scope["query_string"].decode() if scope["query_string"] else "")
        self.received.put((target, headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def next(self) -> tuple[str, dict[str, str], bytes]:
        return self.received.get(timeout=5)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    app = Receiver()
    running = serve_asgi_in_thread(app)
    yield app, running.base_url
    running.stop()


@pytest.fixture(autouse=True)
def no_callbacks_left(sim) -> Iterator[None]:
    yield
    sim.wait_for_callbacks()
    with sim.lock:
        sim.callbacks.clear()


def test_registered_callback_delivers_signed_ticket_changes(sim, client, receiver, ticket_id):
    app, url = receiver
    registration = {
        "url": f"{url}/webhooks/cw-test?recordId=",
        "objectId": 0,
        "type": "ticket",
        "level": "owner",
        "description": "Ticket hook",
        "payloadVersion": "3.0.0",
        "memberId": 0,
        "inactiveFlag": False,
        "isSelfSuppressedFlag": False,
    }
    callback = client.http.post("/system/callbacks", json=registration).json()
    assert callback["type"] == "ticket" and callback["connectWiseID"]

    hooks.gateway_reply(client=client, ticket_id=ticket_id, reply=ReplyStep(text="On my way."), dedup_key="w1")
    target, headers, body = app.next()
    assert target == f"/webhooks/cw-test?recordId={ticket_id}"  # ConnectWise appends the id
    payload = json.loads(body)
    assert (payload["Type"], payload["Action"], payload["ID"], payload["CallbackObjectRecId"]) == (
        "ticket",
        "updated",
        int(ticket_id),
        callback["id"],
    )
    assert json.loads(payload["Entity"])["id"] == int(ticket_id)

    signing_key = client.signing_key(payload["Metadata"]["key_url"])
    assert signing_key == sim.signing_key
    delivery = hooks.gateway_webhook_parse(client=client, headers=headers, body=body, secret=signing_key)
    assert delivery.events == (WebhookEvent(entity="ticket", vendor_id=ticket_id, action="updated"),)
    assert delivery.delivery_id == payload["MessageId"]  # the gateway takes each callback once


def test_bad_missing_or_unconfigured_signatures_are_refused(sim, client, receiver, ticket_id):
    app, url = receiver
    sim.add_webhook(f"{url}/hook", "s3cret-key")
    hooks.gateway_status_change(client=client, ticket_id=ticket_id, status_id="17")
    _, headers, body = app.next()
    assert hooks.gateway_webhook_parse(client=client, headers=headers, body=body, secret="s3cret-key")
    with pytest.raises(BadSignature, match="does not match"):
        hooks.gateway_webhook_parse(client=client, headers=headers, body=body, secret="another-key")
    with pytest.raises(BadSignature, match="does not match"):
        hooks.gateway_webhook_parse(
            client=client, headers=headers, body=body.replace(b"updated", b"deleted"), secret="s3cret-key"
        )
    unsigned = {k: v for k, v in headers.items() if k != "x-content-signature"}
    with pytest.raises(BadSignature, match="no x-content-signature"):
        hooks.gateway_webhook_parse(client=client, headers=unsigned, body=body, secret="s3cret-key")
    with pytest.raises(BadSignature, match="no signing key"):
        hooks.gateway_webhook_parse(client=client, headers=headers, body=body, secret=None)


def test_new_ticket_is_announced_as_created(sim, client, receiver):
    app, url = receiver
    sim.add_webhook(f"{url}/hook", "k")
    effect = hooks.gateway_ticket_create(
        client=client, ticket=TicketCreate(summary="Hooked", fields=sim.minimal_create_fields()), dedup_key="w3"
    )
    _, headers, body = app.next()
    delivery = hooks.gateway_webhook_parse(client=client, headers=headers, body=body, secret="k")
    assert delivery.events == (WebhookEvent(entity="ticket", vendor_id=effect.vendor_id, action="created"),)


def test_callback_on_another_board_stays_quiet(sim, client, receiver, ticket_id):
    app, url = receiver
    client.http.post(
        "/system/callbacks", json={"url": f"{url}/projects", "type": "ticket", "level": "board", "objectId": 2}
    )
    hooks.gateway_reply(client=client, ticket_id=ticket_id, reply=ReplyStep(text="Help Desk only"), dedup_key="w4")
    assert sim.wait_for_callbacks()
    assert app.received.empty()


def test_duplicate_or_bad_registrations_are_refused(client, receiver):
    _, url = receiver
    entry = {"url": f"{url}/dup", "type": "ticket", "level": "owner", "objectId": 0}
    client.http.post("/system/callbacks", json=entry)
    with pytest.raises(VendorRejected, match="A matching callback entry already exists"):
        client.http.post("/system/callbacks", json=entry)
    with pytest.raises(VendorRejected, match="Unrecognized level for type"):
        client.http.post("/system/callbacks", json={**entry, "level": "planet"})


def test_signing_key_is_only_fetched_from_connectwise(client):
    with pytest.raises(VendorRejected, match="refusing"):
        client.signing_key("https://attacker.example/key?id=1")
