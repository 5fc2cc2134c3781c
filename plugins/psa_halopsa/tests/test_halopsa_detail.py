"""A ticket's time (on actions) and attachments read back from Halo, and one attachment
downloaded, against the simulator over loopback."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.models import AttachmentUpload, ReplyStep, TimeEntryCreate

from gateway_halopsa import hooks

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def ticket_id(sim) -> str:
    return str(sim.add_ticket("Laptop will not boot", client_id=1))


def _upload(client, ticket_id: str, filename: str, content_type: str, data: bytes) -> str:
    attachment = AttachmentUpload(filename=filename, content_type=content_type, size=len(data), data=data)
    return hooks.gateway_attachment_add(client, ticket_id, attachment, f"dk-{filename}").vendor_id


def test_time_logged_on_a_ticket_is_listed_back_oldest_first(make_client, ticket_id):
    client = make_client()
    assert hooks.gateway_ticket_time_entries(client, ticket_id) == []
    later = TimeEntryCreate(minutes=15, notes="Follow-up call", started_at=datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc))
    earlier = TimeEntryCreate(minutes=45, notes="Reimaged", started_at=datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc))
    first = hooks.gateway_time_entry(client, ticket_id, later, "t1")
    second = hooks.gateway_time_entry(client, ticket_id, earlier, "t2")
    hooks.gateway_reply(client, ticket_id, ReplyStep(text="On it"), "r1")  # an action without time

    entries = hooks.gateway_ticket_time_entries(client, ticket_id)

    assert [(e.id, e.minutes, e.notes) for e in entries] == [
        (second.vendor_id, 45, "Reimaged"),
        (first.vendor_id, 15, "Follow-up call"),
    ]
    assert entries[0].started_at == datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)
    assert entries[0].member == "API Agent"


def test_an_uploaded_file_is_listed_with_its_name_size_and_type(make_client, ticket_id):
    client = make_client()
    assert hooks.gateway_ticket_attachments(client, ticket_id) == []
    attachment_id = _upload(client, ticket_id, "screenshot.png", "image/png", PNG)

    (listed,) = hooks.gateway_ticket_attachments(client, ticket_id)

    expected = (attachment_id, "screenshot.png", len(PNG), "image/png")
    assert (listed.id, listed.filename, listed.size, listed.content_type) == expected
    assert listed.created_at is not None


def test_download_returns_the_same_bytes_name_and_type(make_client, ticket_id):
    client = make_client()
    data = "Boot log\nline 2 \u2713\n".encode()
    attachment_id = _upload(client, ticket_id, "boot log \u00e9.txt", "text/plain", data)
    _upload(client, ticket_id, "screenshot.png", "image/png", PNG)

    found = hooks.gateway_attachment_download(client, ticket_id, attachment_id)

    assert found == AttachmentUpload(filename="boot log \u00e9.txt", content_type="text/plain", size=len(data), data=data)


def test_download_of_an_unknown_or_foreign_attachment_is_none(sim, make_client, ticket_id):
    client = make_client()
    other = str(sim.add_ticket("Another customer's ticket", client_id=1))
    foreign = _upload(client, other, "secret.pdf", "application/pdf", b"%PDF-1.4 other customer")
    for attachment_id in ("999999", foreign, "../9001", ""):
        assert hooks.gateway_attachment_download(client, ticket_id, attachment_id) is None


def test_the_simulator_serves_the_file_itself(sim, make_client, ticket_id):
    client = make_client()
    attachment_id = _upload(client, ticket_id, "report.pdf", "application/pdf", b"%PDF-1.4 report")
    response = client.attachment_file(attachment_id)
    assert response.content == b"%PDF-1.4 report"
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="report.pdf"' in response.headers["content-disposition"]
    assert client.attachment_file("999999") is None
