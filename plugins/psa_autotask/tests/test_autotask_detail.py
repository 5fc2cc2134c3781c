"""A ticket's time entries and attachments read back from Autotask, and one attachment
downloaded, against the simulator over loopback."""

from __future__ import annotations

from datetime import datetime, timezone

from gateway.models import AttachmentUpload, TimeEntryCreate

from gateway_autotask import hooks
from gateway_autotask.client import AutotaskClient
from gateway_autotask.simulator import AutotaskSimulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def _upload(client: AutotaskClient, ticket_id: str, filename: str, content_type: str, data: bytes) -> str:
    attachment = AttachmentUpload(filename=filename, content_type=content_type, size=len(data), data=data)
    return hooks.gateway_attachment_add(client, ticket_id, attachment, "a").vendor_id


def test_time_logged_on_a_ticket_is_listed_back_oldest_first(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket_id = str(sim.add_ticket(title="Laptop reimage"))
    assert hooks.gateway_ticket_time_entries(client, ticket_id) == []
    later = TimeEntryCreate(minutes=15, notes="Follow-up call", started_at=datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc))
    earlier = TimeEntryCreate(
        minutes=45,
        notes="Imaged the laptop",
        started_at=datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc),
        member="sam.support@demo-msp.example",
    )
    first = hooks.gateway_time_entry(client, ticket_id, later, "t1")
    second = hooks.gateway_time_entry(client, ticket_id, earlier, "t2")

    entries = hooks.gateway_ticket_time_entries(client, ticket_id)

    assert [(e.id, e.minutes, e.notes, e.member) for e in entries] == [
        (second.vendor_id, 45, "Imaged the laptop", "Sam Support"),
        (first.vendor_id, 15, "Follow-up call", "API User"),
    ]
    assert entries[0].started_at == datetime(2026, 3, 2, 14, 0, tzinfo=timezone.utc)


def test_time_on_another_ticket_is_not_listed(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket_id, other = str(sim.add_ticket()), str(sim.add_ticket())
    hooks.gateway_time_entry(client, other, TimeEntryCreate(minutes=5, notes="Elsewhere"), "t3")
    assert hooks.gateway_ticket_time_entries(client, ticket_id) == []


def test_an_uploaded_file_is_listed_with_its_name_size_and_type(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket_id = str(sim.add_ticket())
    assert hooks.gateway_ticket_attachments(client, ticket_id) == []
    attachment_id = _upload(client, ticket_id, "screenshot.png", "image/png", PNG)

    (listed,) = hooks.gateway_ticket_attachments(client, ticket_id)

    expected = (attachment_id, "screenshot.png", len(PNG), "image/png")
    assert (listed.id, listed.filename, listed.size, listed.content_type) == expected
    assert listed.created_at is not None


def test_download_returns_the_same_bytes_name_and_type(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket_id = str(sim.add_ticket())
    data = "VPN log\nline 2 \u2713\n".encode()
    attachment_id = _upload(client, ticket_id, "vpn log.txt", "text/plain", data)
    _upload(client, ticket_id, "screenshot.png", "image/png", PNG)

    found = hooks.gateway_attachment_download(client, ticket_id, attachment_id)

    assert found == AttachmentUpload(filename="vpn log.txt", content_type="text/plain", size=len(data), data=data)


def test_download_of_an_unknown_or_foreign_attachment_is_none(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket_id, other = str(sim.add_ticket()), str(sim.add_ticket())
    foreign = _upload(client, other, "secret.pdf", "application/pdf", b"%PDF-1.4 other customer")
    for attachment_id in ("999999", foreign, "../90", ""):
        assert hooks.gateway_attachment_download(client, ticket_id, attachment_id) is None


def test_a_file_path_from_a_client_machine_lists_as_its_file_name(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    ticket_id = str(sim.add_ticket())
    attachment_id = _upload(client, ticket_id, "C:\\Users\\jo\\Desktop\\report.pdf", "application/pdf", b"%PDF-1.4")
    (listed,) = hooks.gateway_ticket_attachments(client, ticket_id)
    assert (listed.id, listed.filename) == (attachment_id, "report.pdf")
