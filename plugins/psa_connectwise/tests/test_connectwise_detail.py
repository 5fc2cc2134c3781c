"""A ticket's time entries and files read back from ConnectWise, and one file downloaded,
against the simulator over loopback."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.models import AttachmentUpload, TimeEntryCreate

from gateway_connectwise import hooks

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _upload(client, ticket_id: str, filename: str, content_type: str, data: bytes) -> str:
    attachment = AttachmentUpload(filename=filename, content_type=content_type, size=len(data), data=data)
    effect = hooks.gateway_attachment_add(client=client, ticket_id=ticket_id, attachment=attachment, dedup_key="a")
    return effect.vendor_id


def test_time_logged_on_a_ticket_is_listed_back_oldest_first(client, ticket_id):
    assert hooks.gateway_ticket_time_entries(client=client, ticket_id=ticket_id) == []
    later = TimeEntryCreate(minutes=15, notes="Follow-up call", started_at=datetime(2024, 5, 2, 9, 0, tzinfo=UTC))
    earlier = TimeEntryCreate(
        minutes=45, notes="Replaced toner", started_at=datetime(2024, 5, 1, 14, 0, tzinfo=UTC), member="jdoe"
    )
    first = hooks.gateway_time_entry(client=client, ticket_id=ticket_id, entry=later, dedup_key="t1")
    second = hooks.gateway_time_entry(client=client, ticket_id=ticket_id, entry=earlier, dedup_key="t2")

    entries = hooks.gateway_ticket_time_entries(client=client, ticket_id=ticket_id)

    assert [(e.id, e.minutes, e.notes) for e in entries] == [
        (second.vendor_id, 45, "Replaced toner"),
        (first.vendor_id, 15, "Follow-up call"),
    ]
    assert entries[0].started_at == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    assert entries[0].member == "jdoe"


def test_time_on_another_ticket_is_not_listed(sim, client, ticket_id):
    other = sim.add_ticket("Someone else's ticket")
    hooks.gateway_time_entry(client=client, ticket_id=other, entry=TimeEntryCreate(minutes=5), dedup_key="t3")
    assert hooks.gateway_ticket_time_entries(client=client, ticket_id=ticket_id) == []


def test_an_uploaded_file_is_listed_with_its_name_size_and_type(client, ticket_id):
    assert hooks.gateway_ticket_attachments(client=client, ticket_id=ticket_id) == []
    document_id = _upload(client, ticket_id, "screenshot.png", "image/png", PNG)

    (listed,) = hooks.gateway_ticket_attachments(client=client, ticket_id=ticket_id)

    assert (listed.id, listed.filename, listed.size, listed.content_type) == (
        document_id,
        "screenshot.png",
        len(PNG),
        "image/png",
    )
    assert listed.created_at is not None


def test_download_returns_the_same_bytes_name_and_type(client, ticket_id):
    data = "Printer log\nline 2 \u2713\n".encode()
    document_id = _upload(client, ticket_id, "printer log.txt", "text/plain", data)
    _upload(client, ticket_id, "screenshot.png", "image/png", PNG)

    found = hooks.gateway_attachment_download(client=client, ticket_id=ticket_id, attachment_id=document_id)

    assert found == AttachmentUpload(filename="printer log.txt", content_type="text/plain", size=len(data), data=data)


def test_download_of_an_unknown_or_foreign_file_is_none(sim, client, ticket_id):
    other = sim.add_ticket("Another customer's ticket")
    foreign = _upload(client, other, "secret.pdf", "application/pdf", b"%PDF-1.4 other customer")
    for attachment_id in ("999999", foreign, "../9001", ""):
        assert hooks.gateway_attachment_download(client=client, ticket_id=ticket_id, attachment_id=attachment_id) is None


def test_link_documents_are_not_listed_as_files(sim, client, ticket_id):
    document_id = _upload(client, ticket_id, "notes.txt", "text/plain", b"notes")
    with sim.lock:
        sim.documents[int(document_id)]["urlFlag"] = True
    assert hooks.gateway_ticket_attachments(client=client, ticket_id=ticket_id) == []
    assert hooks.gateway_attachment_download(client=client, ticket_id=ticket_id, attachment_id=document_id) is None
