"""Reads through the plugin's hooks against the simulator: tickets page by page, the thread,
statuses with their categories, the new-ticket form, and a wrong key refused as such."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from gateway.errors import VendorRejected
from gateway.models import StatusCategory, TicketQuery
from gateway.testing.conformance import Env, build_env
from gateway_templatevendor.simulator import TemplateVendorSimulator


@pytest.fixture
def env(redis_client: redis.Redis) -> Iterator[Env]:
    sim = TemplateVendorSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="tv")


def test_ticket_list_pages_through_every_ticket_once(env: Env) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = env.gw.call("tv", "gateway_ticket_list", query=TicketQuery(page_size=3, cursor=cursor))
        seen += [t.ref for t in page.tickets]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"tv:{t}" for t in env.sim.tickets)  # type: ignore[attr-defined]


def test_ticket_get_and_thread(env: Env) -> None:
    ticket_id = env.sim.sample_ticket_id()
    ticket = env.gw.call("tv", "gateway_ticket_get", ticket_id=ticket_id)
    assert ticket.ref == f"tv:{ticket_id}" and ticket.status.category is StatusCategory.NEW
    thread = env.gw.call("tv", "gateway_ticket_thread", ticket_id=ticket_id)
    assert [e.text for e in thread] == [n["text"] for n in env.sim.ticket_notes(ticket_id)]
    assert env.gw.call("tv", "gateway_ticket_get", ticket_id="999999") is None


def test_statuses_and_form(env: Env) -> None:
    ticket = env.gw.call("tv", "gateway_ticket_get", ticket_id=env.sim.sample_ticket_id())
    statuses = env.gw.call("tv", "gateway_ticket_statuses", ticket=ticket)
    assert [s.id for s in statuses] == env.sim.valid_status_ids(ticket.vendor_id)
    assert {s.name: s.category for s in statuses}["Closed"] is StatusCategory.CLOSED
    form = env.gw.call("tv", "gateway_ticket_form")
    assert {f.name for f in form.fields if f.required} == {"summary", "company"}


def test_customers(env: Env) -> None:
    customers = env.gw.call("tv", "gateway_customer_list")
    assert [c.name for c in customers] == ["Acme Corp", "Globex", "Initech"]


def test_a_wrong_api_key_is_rejected_not_retried(env: Env) -> None:
    env.sim.api_key = "another-key"  # type: ignore[attr-defined]
    with pytest.raises(VendorRejected) as caught:
        env.gw.call("tv", "gateway_customer_list")
    assert caught.value.status == 401


def test_time_entries_and_attachments_are_read_back(env: Env) -> None:
    ticket = env.sim.sample_ticket_id()
    path = f"/v1/tickets/{env.ref(ticket)}"
    env.post(f"{path}/time-entries", {"minutes": 45, "notes": "on site", "started_at": "2026-01-05T09:00:00Z"})
    env.api.post(f"{path}/replies", headers=env.headers, data={"text": "log attached"},
                 files={"files": ("boot.log", b"line one\n", "text/plain")})
    env.drain()
    entries = env.gw.call("tv", "gateway_ticket_time_entries", ticket_id=ticket)
    assert [(e.minutes, e.notes) for e in entries] == [(45, "on site")]
    files = env.gw.call("tv", "gateway_ticket_attachments", ticket_id=ticket)
    assert [(a.filename, a.size) for a in files] == [("boot.log", 9)]
    download = env.gw.call("tv", "gateway_attachment_download", ticket_id=ticket, attachment_id=files[0].id)
    assert download.data == b"line one\n" and download.filename == "boot.log"
    assert env.gw.call("tv", "gateway_attachment_download", ticket_id=ticket, attachment_id="999999") is None
