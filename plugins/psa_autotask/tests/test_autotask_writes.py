"""Writes and their reconcile, against the simulator over loopback."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.errors import NotSupported, VendorRejected
from gateway.models import AttachmentUpload, ReconcileContext, ReplyStep, TicketCreate, TimeEntryCreate
from gateway_autotask import hooks
from gateway_autotask.client import AutotaskClient
from gateway_autotask.constants import external_id_for
from gateway_autotask.simulator import AutotaskSimulator


def reconcile(client: AutotaskClient, step: str, payload: dict, *, ticket_id: str | None, since: datetime, key: str = "key-1", claimed: frozenset[str] = frozenset()):
    context = ReconcileContext(step=step, ticket_id=ticket_id, payload=payload, dedup_key=key, since=since, claimed=claimed)
    return hooks.gateway_reconcile(client, context)


def test_public_reply_is_published_to_all_autotask_users(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    effect = hooks.gateway_reply(client, "7800", ReplyStep(text="We have replaced the toner.\nPlease try again."), "k1")
    note = sim.ticket_notes("7800")[-1]
    assert note == {"id": effect.vendor_id, "text": "We have replaced the toner.\nPlease try again.", "internal": False, "publish": 1}
    stored = sim.store.get("TicketNotes", int(effect.vendor_id))
    assert stored["title"] == "We have replaced the toner."
    assert stored["creatorResourceID"] == 29682885


def test_internal_note_is_published_internal_only(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    effect = hooks.gateway_reply(client, "7800", ReplyStep(text="Checked the print server logs.", internal=True), "k2")
    assert sim.ticket_notes("7800")[-1] == {"id": effect.vendor_id, "text": "Checked the print server logs.", "internal": True, "publish": 2}
    thread = hooks.gateway_ticket_thread(client, "7800")
    assert thread[-1].internal and thread[-1].text == "Checked the print server logs."


def test_internal_publish_value_comes_from_the_connection(make_connection, sim: AutotaskSimulator) -> None:
    # A database whose "Internal Only" value is not 2 is configured per connection; here the
    # simulator's picklist only knows 1 and 2, so 1 must show up on the note as configured.
    client = hooks.gateway_connect(make_connection(settings={"internal_publish": 1}))
    try:
        effect = hooks.gateway_reply(client, "7800", ReplyStep(text="Configured publish", internal=True), "k3")
    finally:
        client.close()
    assert sim.store.get("TicketNotes", int(effect.vendor_id))["publish"] == 1


def test_reply_with_status_in_one_call_is_not_supported(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    before = len(sim.ticket_notes("7800"))
    with pytest.raises(NotSupported):
        hooks.gateway_reply(client, "7800", ReplyStep(text="Done", status_id="5"), "k4")
    assert len(sim.ticket_notes("7800")) == before
    assert hooks.CAPABILITIES.isdisjoint({"reply_with_status"})


def test_status_change_patches_the_ticket(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    effect = hooks.gateway_status_change(client, "7800", "7")
    assert effect.vendor_id is None
    assert sim.ticket_status_id("7800") == "7"
    assert hooks.gateway_ticket_get(client, "7800").status.name == "Waiting Customer"


def test_status_change_to_an_unknown_status_is_rejected(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    with pytest.raises(VendorRejected, match="Value 99 is not a valid status"):
        hooks.gateway_status_change(client, "7800", "99")
    assert sim.ticket_status_id("7800") == "1"


def test_create_with_the_form_fields_stores_the_dedup_key(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    form = {f.name: f for f in hooks.gateway_ticket_form(client).fields}
    values = sim.minimal_create_fields()
    assert {name for name, f in form.items() if f.required} <= set(values)
    ticket = TicketCreate(summary="Laptop will not boot", description="Black screen after the update.", fields={**values, "queueID": "5", "issueType": "1", "subIssueType": "11"})
    effect = hooks.gateway_ticket_create(client, ticket, "create-key-1")
    assert sim.tickets_created_with("create-key-1") == [effect.vendor_id]
    stored = sim.store.get("Tickets", int(effect.vendor_id))
    assert (stored["title"], stored["status"], stored["priority"], stored["queueID"], stored["subIssueType"]) == ("Laptop will not boot", 1, 2, 5, 11)
    assert stored["externalID"] == "create-key-1"


def test_create_takes_the_customer_from_customer_id(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket = TicketCreate(summary="Email bounce", customer_id="176", fields={"queueID": 5, "dueDateTime": "2030-01-01T00:00:00Z"})
    effect = hooks.gateway_ticket_create(client, ticket, "create-key-2")
    assert sim.store.get("Tickets", int(effect.vendor_id))["companyID"] == 176


def test_create_without_required_fields_is_rejected_with_every_reason(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    before = len(sim.store.records["Tickets"])
    with pytest.raises(VendorRejected) as caught:
        hooks.gateway_ticket_create(client, TicketCreate(summary="No company", fields={}), "create-key-3")
    message = str(caught.value)
    assert "Field companyID is required." in message and "Field dueDateTime is required." in message
    assert "needs a queueID" in message
    assert caught.value.status == 400
    assert len(sim.store.records["Tickets"]) == before


def test_long_dedup_keys_are_hashed_into_external_id(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    key = "workspace-a:" + "x" * 80
    effect = hooks.gateway_ticket_create(client, TicketCreate(summary="Hashed key", fields=sim.minimal_create_fields()), key)
    assert sim.tickets_created_with(key) == [effect.vendor_id]
    assert len(external_id_for(key)) <= 50


def test_time_entry_uses_the_api_users_resource_and_default_role(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    started = datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    effect = hooks.gateway_time_entry(client, "7801", TimeEntryCreate(minutes=45, notes="Imaged the laptop", started_at=started), "t1")
    assert sim.time_entries("7801") == [{"id": effect.vendor_id, "minutes": 45, "notes": "Imaged the laptop", "resource_id": 29682885}]
    stored = sim.store.get("TimeEntries", int(effect.vendor_id))
    assert (stored["roleID"], stored["startDateTime"], stored["endDateTime"]) == (29683461, "2026-03-02T14:00:00.000Z", "2026-03-02T14:45:00.000Z")
    assert stored["isNonBillable"] is False


def test_time_entry_for_a_named_member(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    entry = TimeEntryCreate(minutes=30, notes="Onsite", member="sam.support@demo-msp.example", billable=False)
    effect = hooks.gateway_time_entry(client, "7801", entry, "t2")
    stored = sim.store.get("TimeEntries", int(effect.vendor_id))
    assert (stored["resourceID"], stored["roleID"], stored["isNonBillable"]) == (29682887, 29683462, True)


def test_time_entry_for_an_unknown_member_is_rejected(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    with pytest.raises(VendorRejected, match="no Autotask resource"):
        hooks.gateway_time_entry(client, "7801", TimeEntryCreate(minutes=5, member="nobody@example.com"), "t3")
    assert sim.time_entries("7801") == []


def test_attachment_is_uploaded_as_base64(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    data = b"log line\n" * 1000
    effect = hooks.gateway_attachment_add(client, "7802", AttachmentUpload("vpn.log", "text/plain", len(data), data), "a1:0")
    assert sim.attachments("7802") == [{"id": effect.vendor_id, "filename": "vpn.log", "size": len(data)}]


def test_attachment_over_6_mb_is_refused_before_upload(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    data = b"\0" * (6 * 1024 * 1024 + 1)
    requests = sim.stats["requests"]
    with pytest.raises(VendorRejected, match="at most 6291456") as caught:
        hooks.gateway_attachment_add(client, "7802", AttachmentUpload("big.bin", "application/octet-stream", len(data), data), "a2:0")
    assert caught.value.status == 413
    assert sim.stats["requests"] == requests
    assert sim.attachments("7802") == []


def test_autotask_refuses_attachments_over_its_cap(make_connection, sim: AutotaskSimulator) -> None:
    # A connection configured with a larger cap than Autotask's still meets the vendor's limit.
    client = hooks.gateway_connect(make_connection(attachment_cap_bytes=10 * 1024 * 1024))
    data = b"\0" * (6 * 1024 * 1024 + 1)
    try:
        with pytest.raises(VendorRejected, match="files of at most 6291456 bytes"):
            hooks.gateway_attachment_add(client, "7802", AttachmentUpload("big.bin", "application/octet-stream", len(data), data), "a3:0")
    finally:
        client.close()
    assert sim.stats["attachments_too_large"] == 1


# --------------------------------------------------------------------------- reconcile


def test_reconcile_reply_finds_the_note_and_skips_claimed_ones(client: AutotaskClient) -> None:
    since = datetime.now(timezone.utc)
    first = hooks.gateway_reply(client, "7800", ReplyStep(text="Same words"), "r1")
    second = hooks.gateway_reply(client, "7800", ReplyStep(text="Same words"), "r2")
    assert reconcile(client, "reply", {"text": "Same words", "internal": False}, ticket_id="7800", since=since).vendor_id == first.vendor_id
    found = reconcile(client, "reply", {"text": "Same words", "internal": False}, ticket_id="7800", since=since, claimed=frozenset({first.vendor_id}))
    assert found.vendor_id == second.vendor_id
    # Internal and public notes with the same text are different effects.
    assert reconcile(client, "reply", {"text": "Same words", "internal": True}, ticket_id="7800", since=since) is None


def test_reconcile_reply_ignores_notes_from_before_the_step(client: AutotaskClient) -> None:
    hooks.gateway_reply(client, "7800", ReplyStep(text="Old note"), "r3")
    later = datetime.now(timezone.utc) + timedelta(seconds=2)
    assert reconcile(client, "reply", {"text": "Old note", "internal": False}, ticket_id="7800", since=later) is None


def test_reconcile_create_finds_the_ticket_by_external_id(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    since = datetime.now(timezone.utc)
    assert reconcile(client, "create", {"summary": "x"}, ticket_id=None, since=since, key="create-r1") is None
    effect = hooks.gateway_ticket_create(client, TicketCreate(summary="Once only", fields=sim.minimal_create_fields()), "create-r1")
    assert reconcile(client, "create", {"summary": "Once only"}, ticket_id=None, since=since, key="create-r1").vendor_id == effect.vendor_id


def test_reconcile_status_checks_the_ticket(client: AutotaskClient) -> None:
    since = datetime.now(timezone.utc)
    assert reconcile(client, "status", {"status_id": "8"}, ticket_id="7800", since=since) is None
    hooks.gateway_status_change(client, "7800", "8")
    assert reconcile(client, "status", {"status_id": "8"}, ticket_id="7800", since=since) is not None


def test_reconcile_time_entry_and_attachment(client: AutotaskClient) -> None:
    since = datetime.now(timezone.utc)
    assert reconcile(client, "time_entry", {"minutes": 20, "notes": "Call"}, ticket_id="7801", since=since) is None
    entry = hooks.gateway_time_entry(client, "7801", TimeEntryCreate(minutes=20, notes="Call"), "t-r")
    assert reconcile(client, "time_entry", {"minutes": 20, "notes": "Call"}, ticket_id="7801", since=since).vendor_id == entry.vendor_id
    assert reconcile(client, "time_entry", {"minutes": 25, "notes": "Call"}, ticket_id="7801", since=since) is None

    payload = {"filename": "a.txt", "content_type": "text/plain", "size": 3, "index": 0}
    assert reconcile(client, "attachment", payload, ticket_id="7801", since=since, key="t-a:0") is None
    attached = hooks.gateway_attachment_add(client, "7801", AttachmentUpload("a.txt", "text/plain", 3, b"abc"), "t-a:0")
    assert reconcile(client, "attachment", payload, ticket_id="7801", since=since, key="t-a:0").vendor_id == attached.vendor_id


def test_reconcile_of_an_alert_step_is_not_supported(client: AutotaskClient) -> None:
    with pytest.raises(NotSupported):
        reconcile(client, "alert", {"action": "resolve"}, ticket_id=None, since=datetime.now(timezone.utc))
