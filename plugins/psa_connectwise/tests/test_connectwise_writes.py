"""Write hooks and their reconcile against the simulator: what lands in ConnectWise, and
that a retry after an unknown outcome finds it instead of doubling it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from gateway.errors import NotSupported, VendorRejected
from gateway.models import (
    AttachmentUpload,
    ReconcileContext,
    ReplyStep,
    TicketCreate,
    TimeEntryCreate,
)

from gateway_connectwise import hooks


def context(step: str, ticket_id: str | None, payload, *, key: str = "k-1", since=None, claimed=()) -> ReconcileContext:
    since = since or datetime.now(UTC) - timedelta(seconds=5)
    return ReconcileContext(
        step=step, ticket_id=ticket_id, payload=payload, dedup_key=key, since=since, claimed=frozenset(claimed)
    )


# --------------------------------------------------------------------------- notes


def test_public_reply_is_a_discussion_note(sim, client, ticket_id):
    effect = hooks.gateway_reply(
        client=client, ticket_id=ticket_id, reply=ReplyStep(text="Toner replaced."), dedup_key="r1"
    )
    note = sim.notes[int(effect.vendor_id)]
    assert (note["detailDescriptionFlag"], note["internalAnalysisFlag"], note["resolutionFlag"]) == (True, False, False)
    assert sim.ticket_notes(ticket_id)[-1] == {"id": effect.vendor_id, "text": "Toner replaced.", "internal": False}


def test_internal_note_stays_on_the_internal_tab(sim, client, ticket_id):
    reply = ReplyStep(text="Customer is on the old driver.", internal=True)
    effect = hooks.gateway_reply(client=client, ticket_id=ticket_id, reply=reply, dedup_key="r2")
    note = sim.notes[int(effect.vendor_id)]
    assert (note["detailDescriptionFlag"], note["internalAnalysisFlag"]) == (False, True)
    thread = hooks.gateway_ticket_thread(client=client, ticket_id=ticket_id)
    assert thread[-1].internal and thread[-1].author == "Jane Doe"


def test_reply_with_a_status_is_refused_not_half_done(sim, client, ticket_id):
    with pytest.raises(NotSupported):
        hooks.gateway_reply(
            client=client, ticket_id=ticket_id, reply=ReplyStep(text="Done", status_id="19"), dedup_key="r3"
        )
    assert sim.ticket_notes(ticket_id) == []


def test_reply_reconcile_finds_the_note_once(sim, client, ticket_id):
    reply = ReplyStep(text="We're on it.")
    assert hooks.gateway_reconcile(client=client, context=context("reply", ticket_id, reply)) is None
    effect = hooks.gateway_reply(client=client, ticket_id=ticket_id, reply=reply, dedup_key="r4")
    found = hooks.gateway_reconcile(client=client, context=context("reply", ticket_id, reply))
    assert found.vendor_id == effect.vendor_id
    # Claimed by another write, of the other tab, or older than the first attempt: not ours.
    assert (
        hooks.gateway_reconcile(client=client, context=context("reply", ticket_id, reply, claimed={effect.vendor_id}))
        is None
    )
    internal = ReplyStep(text="We're on it.", internal=True)
    assert hooks.gateway_reconcile(client=client, context=context("reply", ticket_id, internal)) is None
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert hooks.gateway_reconcile(client=client, context=context("reply", ticket_id, reply, since=later)) is None


def test_reply_reconcile_reads_a_stored_payload(client, ticket_id):
    effect = hooks.gateway_reply(client=client, ticket_id=ticket_id, reply=ReplyStep(text="Stored."), dedup_key="r5")
    found = hooks.gateway_reconcile(
        client=client, context=context("reply", ticket_id, {"text": "Stored.", "internal": False})
    )
    assert found.vendor_id == effect.vendor_id


# --------------------------------------------------------------------------- status


def test_status_change_patches_the_ticket(sim, client, ticket_id):
    hooks.gateway_status_change(client=client, ticket_id=ticket_id, status_id="17")
    assert sim.ticket_status_id(ticket_id) == "17"
    ticket = hooks.gateway_ticket_get(client=client, ticket_id=ticket_id)
    assert (ticket.status.name, ticket.status.category.value) == ("In Progress", "in_progress")
    assert hooks.gateway_reconcile(client=client, context=context("status", ticket_id, {"status_id": "17"})) is not None
    assert hooks.gateway_reconcile(client=client, context=context("status", ticket_id, "18")) is None


def test_closing_status_closes_the_ticket(sim, client, ticket_id):
    hooks.gateway_status_change(client=client, ticket_id=ticket_id, status_id="20")
    ticket = hooks.gateway_ticket_get(client=client, ticket_id=ticket_id)
    assert ticket.status.closed and ticket.status.category.value == "closed"
    assert sim.tickets[int(ticket_id)]["closedFlag"]


def test_status_of_another_board_is_refused(sim, client, ticket_id):
    with pytest.raises(VendorRejected) as refused:
        hooks.gateway_status_change(client=client, ticket_id=ticket_id, status_id="27")
    assert refused.value.status == 400
    assert "ticket.status: Status 27 is not valid for board 1." in str(refused.value)
    assert sim.ticket_status_id(ticket_id) == "16"


# --------------------------------------------------------------------------- create


def test_create_stores_the_dedup_key_and_reconcile_finds_it(sim, client):
    key = "create-7f3a"
    assert hooks.gateway_reconcile(client=client, context=context("create", None, None, key=key)) is None
    fields = {**sim.minimal_create_fields(), "priority": "2", "type": "6"}
    created = TicketCreate(summary="Laptop won't boot", description="Black screen after update.", fields=fields)
    effect = hooks.gateway_ticket_create(client=client, ticket=created, dedup_key=key)
    assert sim.tickets_created_with(key) == [effect.vendor_id]
    record = sim.tickets[int(effect.vendor_id)]
    assert (record["summary"], record["board"]["name"], record["company"]["name"]) == (
        "Laptop won't boot",
        "Help Desk",
        "Acme Corp",
    )
    assert (record["priority"]["id"], record["type"]["name"], record["status"]["name"]) == (2, "Service Request", "New")
    assert sim.ticket_notes(effect.vendor_id)[0]["text"] == "Black screen after update."
    found = hooks.gateway_reconcile(client=client, context=context("create", None, created, key=key))
    assert found.vendor_id == effect.vendor_id
    assert (
        hooks.gateway_reconcile(
            client=client, context=context("create", None, created, key=key, claimed={effect.vendor_id})
        )
        is None
    )


def test_create_with_a_long_dedup_key_still_reconciles(sim, client):
    key = "idem-" + "x" * 200
    effect = hooks.gateway_ticket_create(
        client=client,
        ticket=TicketCreate(summary="Long key", customer_id="cw-test:251", fields={"board": "2"}),
        dedup_key=key,
    )
    assert sim.tickets_created_with(key) == [effect.vendor_id]
    assert sim.tickets[int(effect.vendor_id)]["company"]["name"] == "Globex"
    assert (
        hooks.gateway_reconcile(client=client, context=context("create", None, None, key=key)).vendor_id
        == effect.vendor_id
    )


def test_create_with_a_type_of_another_board_is_refused(sim, client):
    with pytest.raises(VendorRejected, match=r"ticket\.type: Type 7 is not valid for board 1"):
        hooks.gateway_ticket_create(
            client=client,
            ticket=TicketCreate(summary="Bad type", fields={**sim.minimal_create_fields(), "type": "7"}),
            dedup_key="c3",
        )
    assert sim.tickets_created_with("c3") == []


# --------------------------------------------------------------------------- time


def test_time_entry_is_charged_to_the_ticket_and_reconciled(sim, client, ticket_id):
    started = datetime(2024, 5, 1, 14, 0, 12, 345, tzinfo=UTC)
    entry = TimeEntryCreate(minutes=30, notes="Replaced toner", started_at=started)
    effect = hooks.gateway_time_entry(client=client, ticket_id=ticket_id, entry=entry, dedup_key="t1")
    assert sim.time_entries(ticket_id) == [{"id": effect.vendor_id, "minutes": 30, "notes": "Replaced toner"}]
    record = sim.entries[int(effect.vendor_id)]
    assert (record["chargeToType"], record["timeStart"], record["timeEnd"]) == (
        "ServiceTicket",
        "2024-05-01T14:00:12Z",
        "2024-05-01T14:30:12Z",
    )
    found = hooks.gateway_reconcile(client=client, context=context("time_entry", ticket_id, entry))
    assert found.vendor_id == effect.vendor_id
    assert (
        hooks.gateway_reconcile(
            client=client, context=context("time_entry", ticket_id, entry, claimed={effect.vendor_id})
        )
        is None
    )
    other = TimeEntryCreate(minutes=30, notes="Replaced toner", started_at=started + timedelta(hours=1))
    assert hooks.gateway_reconcile(client=client, context=context("time_entry", ticket_id, other)) is None


def test_time_entry_without_a_start_is_reconciled_by_length_and_notes(sim, client, ticket_id):
    entry = TimeEntryCreate(minutes=15, notes="Phone call", billable=False)
    effect = hooks.gateway_time_entry(client=client, ticket_id=ticket_id, entry=entry, dedup_key="t2")
    assert sim.entries[int(effect.vendor_id)]["billableOption"] == "DoNotBill"
    found = hooks.gateway_reconcile(client=client, context=context("time_entry", ticket_id, entry))
    assert found.vendor_id == effect.vendor_id
    longer = TimeEntryCreate(minutes=45, notes="Phone call")
    assert hooks.gateway_reconcile(client=client, context=context("time_entry", ticket_id, longer)) is None


def test_time_entry_for_an_unknown_member_is_refused(client, ticket_id):
    with pytest.raises(VendorRejected, match=r"timeEntry\.member"):
        hooks.gateway_time_entry(
            client=client, ticket_id=ticket_id, entry=TimeEntryCreate(minutes=5, member="nobody"), dedup_key="t3"
        )


# --------------------------------------------------------------------------- attachments


def test_attachment_is_uploaded_as_a_document_and_reconciled(sim, client, ticket_id):
    upload = AttachmentUpload(
        filename="screenshot.png", content_type="image/png", size=2048, data=b"\x89PNG" + b"\0" * 2044
    )
    effect = hooks.gateway_attachment_add(client=client, ticket_id=ticket_id, attachment=upload, dedup_key="a1")
    assert sim.attachments(ticket_id) == [{"id": effect.vendor_id, "filename": "screenshot.png", "size": 2048}]
    assert sim.document_data[int(effect.vendor_id)] == upload.data
    assert sim.documents[int(effect.vendor_id)]["imageFlag"]
    stored = {"filename": "screenshot.png", "content_type": "image/png", "size": 2048}  # bytes left in Redis
    assert (
        hooks.gateway_reconcile(client=client, context=context("attachment", ticket_id, stored)).vendor_id
        == effect.vendor_id
    )
    assert (
        hooks.gateway_reconcile(
            client=client, context=context("attachment", ticket_id, stored, claimed={effect.vendor_id})
        )
        is None
    )


def test_attachment_over_the_cap_is_refused(sim, client, ticket_id):
    cap, sim.document_cap_bytes = sim.document_cap_bytes, 1000
    try:
        with pytest.raises(VendorRejected, match="larger than 1000 bytes") as refused:
            hooks.gateway_attachment_add(
                client=client,
                ticket_id=ticket_id,
                attachment=AttachmentUpload(
                    filename="big.bin", content_type="application/octet-stream", size=1001, data=b"x" * 1001
                ),
                dedup_key="a2",
            )
    finally:
        sim.document_cap_bytes = cap
    assert refused.value.status == 400
    assert sim.attachments(ticket_id) == []


def test_writes_to_an_unknown_ticket_are_refused(client):
    with pytest.raises(VendorRejected) as refused:
        hooks.gateway_reply(client=client, ticket_id="424242", reply=ReplyStep(text="hi"), dedup_key="x")
    assert refused.value.status == 404 and "Ticket 424242 not found" in str(refused.value)
