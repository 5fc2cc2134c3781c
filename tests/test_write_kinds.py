"""A write kind is declared once (gateway/writekinds.py): the routes, the runner and the docs
read the declaration, so a new kind is one declaration plus its route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest
from litestar import Request, post
from litestar.params import FromPath, JSONBody

from gateway import writekinds
from gateway.api.common import submit_ticket_write
from gateway.api.schemas import WriteAccepted
from gateway.hub import Hub
from gateway.models import Capability, Effect, ReplyStep, Ticket
from gateway.testing.conformance import Env
from gateway.writes import WriteRecord, WriteStep

DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


# --------------------------------------------------------------------------- a made-up kind


class EscalationBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


def _send_escalation(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    note = ReplyStep(text=f"Escalated: {step.payload['reason']}", internal=True)
    return gw.call(record.connection, "gateway_reply", ticket_id=ticket_id, reply=note, dedup_key=record.dedup_key)


def _plan_escalation(gw: Hub, connection_id: str, body: EscalationBody, ticket: Callable[[], Ticket]) -> list[WriteStep]:
    ticket()  # 404 unless the ticket exists in the caller's workspace
    return [WriteStep("escalation_note", {"reason": body.reason})]


ESCALATE = writekinds.WriteKind(
    "escalate", "POST /v1/tickets/{ref}/escalations", "an internal note that escalates the ticket", EscalationBody,
    ("escalation_note",), lambda body: (Capability.INTERNAL_NOTE,),
    _plan_escalation,
)
ESCALATION_NOTE = writekinds.StepKind("escalation_note", "gateway_reply", _send_escalation)


@post("/v1/tickets/{ref:str}/escalations", status_code=202, sync_to_thread=True)
def escalate(request: Request, ref: FromPath[str], data: JSONBody[EscalationBody]) -> WriteAccepted:
    """Queue an escalation note (the route: the rest is the declaration above)."""
    return submit_ticket_write(request, ref, ESCALATE, data)


@pytest.fixture
def escalations(cw: Env) -> Iterator[Env]:
    writekinds.register(ESCALATE, ESCALATION_NOTE)
    cw.api.app.register(escalate)
    try:
        yield cw
    finally:
        writekinds.KINDS.pop(ESCALATE.name)
        writekinds.STEPS.pop(ESCALATION_NOTE.name)


def test_a_new_write_kind_is_a_declaration_and_a_route(escalations: Env) -> None:
    env = escalations
    ticket = env.sim.sample_ticket_id()
    first = env.post(f"/v1/tickets/{env.ref(ticket)}/escalations", {"reason": "VIP down"}, key="esc-1")
    again = env.post(f"/v1/tickets/{env.ref(ticket)}/escalations", {"reason": "VIP down"}, key="esc-1")
    assert first.status_code == 202, first.text
    assert again.json()["write_id"] == first.json()["write_id"]
    env.drain()
    notes = [n for n in env.sim.ticket_notes(ticket) if "Escalated: VIP down" in (n.get("text") or "")]
    assert len(notes) == 1 and notes[0]["internal"] is True
    write = env.write(first.json()["write_id"])
    assert write["kind"] == "escalate" and write["status"] == "succeeded"
    assert [s["name"] for s in write["steps"]] == ["escalation_note"] and write["steps"][0]["state"] == "done"
    missing = env.post(f"/v1/tickets/{env.ref('999999')}/escalations", {"reason": "nobody"})
    assert missing.status_code == 404


def test_a_kind_with_an_undeclared_step_is_refused() -> None:
    kind = writekinds.WriteKind("broken", "POST /x", "x", EscalationBody, ("no_such_step",), lambda b: (), lambda *a: [])
    with pytest.raises(ValueError, match="no_such_step"):
        writekinds.register(kind)
    assert "broken" not in writekinds.KINDS


def test_the_alert_capability_is_declared_once_for_both_alert_routes() -> None:
    needs = writekinds.ALERT_ACTION.needs
    assert needs(writekinds.AlertActionBody("acknowledge")) == (Capability.ALERT_ACKNOWLEDGE,)
    assert needs(writekinds.AlertActionBody("resolve")) == (Capability.ALERT_RESOLVE,)


def test_the_architecture_doc_lists_every_write_kind_as_declared() -> None:
    assert writekinds.render() in DOCS.read_text(), "regenerate with: python -m gateway.writekinds"
