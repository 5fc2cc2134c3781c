"""Writes against the simulator, and finding them again with reconcile."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.errors import VendorRateLimited, VendorRejected
from gateway.models import AttachmentUpload, ReconcileContext, ReplyStep, TicketCreate, TimeEntryCreate

from gateway_halopsa import hooks

MB = 1024 * 1024


def _context(step: str, ticket_id: str | None, payload, dedup_key: str = "dk-1", claimed=()) -> ReconcileContext:
    return ReconcileContext(
        step=step,
        ticket_id=ticket_id,
        payload=payload,
        dedup_key=dedup_key,
        since=datetime.now(timezone.utc) - timedelta(seconds=5),
        claimed=frozenset(claimed),
    )


@pytest.fixture
def ticket_id(sim) -> str:
    return str(sim.add_ticket("Printer offline", client_id=1))


def test_internal_note_is_hidden_from_the_user_and_a_reply_is_not(sim, make_client, ticket_id):
    client = make_client()

    note = hooks.gateway_reply(client, ticket_id, ReplyStep(text="Checked the logs", internal=True), "k1")
    reply = hooks.gateway_reply(client, ticket_id, ReplyStep(text="We replaced the toner"), "k2")

    assert sim.ticket_notes(ticket_id) == [
        {"id": note.vendor_id, "text": "Checked the logs", "internal": True},
        {"id": reply.vendor_id, "text": "We replaced the toner", "internal": False},
    ]
    assert sim.stats["emails_sent"] == 1  # only the public reply reaches the end user
    thread = hooks.gateway_ticket_thread(client, ticket_id)
    assert [(e.text, e.internal) for e in thread] == [("Checked the logs", True), ("We replaced the toner", False)]


def test_reply_with_status_is_one_vendor_call(sim, make_client, ticket_id):
    client = make_client()

    effect = hooks.gateway_reply(client, ticket_id, ReplyStep(text="Fixed, please confirm", status_id="5"), "k1")

    assert sim.stats["actions_posted"] == 1
    assert sim.ticket_status_id(ticket_id) == "5"
    assert sim.actions[int(effect.vendor_id)]["new_status"] == 5


def test_status_change_alone_is_an_internal_action(sim, make_client, ticket_id):
    effect = hooks.gateway_status_change(make_client(), ticket_id, "2")

    assert sim.ticket_status_id(ticket_id) == "2"
    assert sim.ticket_notes(ticket_id) == [{"id": effect.vendor_id, "text": "Status changed", "internal": True}]


def test_status_not_available_for_the_ticket_type_is_rejected(sim, make_client, ticket_id):
    with pytest.raises(VendorRejected) as rejected:
        hooks.gateway_status_change(make_client(), ticket_id, "20")  # change requests only

    assert rejected.value.status == 400 and "not valid" in str(rejected.value)
    assert sim.ticket_status_id(ticket_id) == "1"


def test_create_stores_the_dedup_key_and_reconcile_finds_the_ticket(sim, make_client):
    sim.seed_demo()
    client = make_client()
    new = TicketCreate(
        summary="Laptop for new starter",
        description="Starts Monday",
        customer_id="13",
        fields={"tickettype_id": "3", "priority_id": "2"},
    )

    effect = hooks.gateway_ticket_create(client, new, "create-abc")

    assert sim.tickets_created_with("create-abc") == [effect.vendor_id]
    record = sim.tickets[int(effect.vendor_id)]
    assert (record["client_id"], record["tickettype_id"], record["priority_id"]) == (13, 3, 2)
    found = hooks.gateway_reconcile(client, _context("create", None, new, dedup_key="create-abc"))
    assert found.vendor_id == effect.vendor_id
    assert hooks.gateway_reconcile(client, _context("create", None, new, dedup_key="create-other")) is None
    claimed = _context("create", None, new, dedup_key="create-abc", claimed={effect.vendor_id})
    assert hooks.gateway_reconcile(client, claimed) is None


def test_create_without_summary_is_rejected_with_halos_text(sim, make_client):
    with pytest.raises(VendorRejected) as rejected:
        make_client().save_ticket({"details": "no summary"})

    assert "Summary is required" in str(rejected.value)


def test_time_is_logged_on_a_private_note_action(sim, make_client, ticket_id):
    client = make_client()
    entry = TimeEntryCreate(minutes=45, notes="Onsite fix", billable=False)

    effect = hooks.gateway_time_entry(client, ticket_id, entry, "t1")

    assert sim.time_entries(ticket_id) == [{"id": effect.vendor_id, "minutes": 45, "notes": "Onsite fix"}]
    action = sim.actions[int(effect.vendor_id)]
    assert action["hiddenfromuser"] and action["outcome"] == "Private Note" and action["nonbilltime"] == 0.75
    assert hooks.gateway_reconcile(client, _context("time_entry", ticket_id, entry)).vendor_id == effect.vendor_id
    assert hooks.gateway_reconcile(client, _context("time_entry", ticket_id, entry, claimed={effect.vendor_id})) is None


def test_reconcile_reply_matches_text_visibility_and_status(sim, make_client, ticket_id):
    client = make_client()
    sent = ReplyStep(text="Back online now", status_id="8")
    effect = hooks.gateway_reply(client, ticket_id, sent, "r1")

    assert hooks.gateway_reconcile(client, _context("reply", ticket_id, sent)).vendor_id == effect.vendor_id
    as_dict = {"text": "Back online now", "internal": False, "status_id": "8"}
    assert hooks.gateway_reconcile(client, _context("reply", ticket_id, as_dict)).vendor_id == effect.vendor_id
    for other in (
        ReplyStep(text="Back online now", internal=True, status_id="8"),
        ReplyStep(text="Something else"),
        ReplyStep(text="Back online now", status_id="9"),
    ):
        assert hooks.gateway_reconcile(client, _context("reply", ticket_id, other)) is None
    assert hooks.gateway_reconcile(client, _context("reply", ticket_id, sent, claimed={effect.vendor_id})) is None


def test_reconcile_status_looks_at_the_current_status(sim, make_client, ticket_id):
    client = make_client()
    assert hooks.gateway_reconcile(client, _context("status", ticket_id, {"status_id": "2"})) is None

    effect = hooks.gateway_status_change(client, ticket_id, "2")

    assert hooks.gateway_reconcile(client, _context("status", ticket_id, {"status_id": "2"})).vendor_id == effect.vendor_id


def test_attachment_of_6_5_mb_is_accepted_under_the_25_mb_cap(sim, make_client, ticket_id):
    client = make_client()
    data = bytes(range(256)) * (int(6.5 * MB) // 256)
    upload = AttachmentUpload(filename="capture.pcap", content_type="application/octet-stream", size=len(data), data=data)

    effect = hooks.gateway_attachment_add(client, ticket_id, upload, "a1")

    assert sim.attachments(ticket_id) == [{"id": effect.vendor_id, "filename": "capture.pcap", "size": len(data)}]
    assert sim.files[int(effect.vendor_id)]["data"] == data
    payload = {"filename": "capture.pcap", "size": len(data)}
    assert hooks.gateway_reconcile(client, _context("attachment", ticket_id, payload, "a1")).vendor_id == effect.vendor_id
    assert hooks.gateway_reconcile(client, _context("attachment", ticket_id, payload, "a2")) is None


def test_attachment_over_the_simulator_cap_is_rejected(sim, make_client, ticket_id):
    sim.attachment_cap_bytes = 1 * MB
    data = b"x" * (MB + 1)
    upload = AttachmentUpload(filename="big.bin", content_type="application/octet-stream", size=len(data), data=data)

    with pytest.raises(VendorRejected) as rejected:
        hooks.gateway_attachment_add(make_client(), ticket_id, upload, "a1")

    assert rejected.value.status == 413
    assert sim.attachments(ticket_id) == []


def test_rolling_rate_limit_answers_429_with_retry_after(sim, make_client):
    sim.rate_limit_requests, sim.rate_limit_seconds = 4, 60.0
    client = make_client()

    with pytest.raises(VendorRateLimited) as limited:
        for _ in range(5):
            client.statuses(fresh=True)

    assert limited.value.status == 429 and limited.value.retry_after >= 1
    assert "300" not in str(limited.value) and "Rate Limit Reached - 4 Requests" in str(limited.value)
