"""A write kind is declared once (gateway/writekinds.py): the routes, the runner and the docs
read the declaration, so a new kind is one declaration plus its route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from litestar import Request, post
from litestar.params import FromPath, JSONBody

from gateway import intake, writekinds
from gateway.api.common import WRITE, accepted, authorize, gateway_of, idempotency_key, own_ref, owned_ticket
from gateway.api.schemas import WriteAccepted
from gateway.hub import Hub
from gateway.models import Capability, Effect, ReplyStep
from gateway.testing.conformance import Env
from gateway.writes import WriteRecord, WriteStep

DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


# --------------------------------------------------------------------------- a made-up kind


class EscalationBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


def _send_escalation(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    note = ReplyStep(text=f"Escalated: {step.payload['reason']}", internal=True)
    return gw.call(record.connection, "gateway_reply", ticket_id=ticket_id, reply=note, dedup_key=record.dedup_key)


ESCALATE = writekinds.WriteKind(
    "escalate", "POST /v1/tickets/{ref}/escalations", "an internal note that escalates the ticket", EscalationBody,
    ("escalation_note",), lambda body: (Capability.INTERNAL_NOTE,),
    lambda gw, connection_id, body: [WriteStep("escalation_note", {"reason": body.reason})],
)
ESCALATION_NOTE = writekinds.StepKind("escalation_note", "gateway_reply", _send_escalation)


@post("/v1/tickets/{ref:str}/escalations", status_code=202, sync_to_thread=True)
def escalate(request: Request, ref: FromPath[str], data: JSONBody[EscalationBody]) -> WriteAccepted:
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    connection_id, _ = own_ref(gw, principal, ref)
    ESCALATE.require(gw, connection_id, data)
    owned_ticket(gw, principal, ref)
    submitted = intake.submit(
        gw, workspace=principal.workspace, connection=connection_id, kind=ESCALATE.name, target=ref,
        steps=ESCALATE.plan(gw, connection_id, data), request=msgspec.to_builtins(data),
        idempotency_key=idempotency_key(request),
    )
    return accepted(gw, submitted)


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
