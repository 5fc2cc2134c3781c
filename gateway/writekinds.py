"""Write kinds, each declared once: what a caller sends, what the vendor must support, how the
request is checked and split into steps, and how each step is sent and reconciled.

A **write kind** (``WriteKind``) is what a route accepts: a reply, a status change, a time entry,
a new ticket, an alert action. It names its request body, its route, the capabilities a body
needs (``needs``), and the steps it can produce. Its ``plan`` function checks the request
against the vendor's facts (``WriteRefused`` answers a 4xx) and returns the steps. A plan of a
write to a ticket gets ``ticket()``, the ticket's facts: it calls it only for the facts it
needs. The route makes sure the ticket exists in the caller's workspace (404 otherwise), and a
plan that reads no facts is stored in one round trip (``api.common.accept_ticket_write``). A
plan first runs on the API's event loop: it must read nothing but through ``ticket()`` and the
``intake`` caches (which raise ``intake.WouldBlock`` there, and the plan runs again in a
thread), never Redis or the vendor directly.

A **step kind** (``StepKind``) is one vendor effect: the hook that sends it, how the runner calls
it (``send``), what reconciliation and claims key on (the ticket, or the write's target record
for an alert), and its dedup key (per item for attachments).

The routes (``gateway/api``), the runner (``gateway/jobs.py``) and the reference in
``docs/architecture.md`` (``render``) read these declarations; adding a kind is a declaration
here (``register``) and its route.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from gateway import hookspecs, intake
from gateway.errors import NotSupported, WriteRefused
from gateway.hub import Hub
from gateway.models import (
    AttachmentUpload,
    Capability,
    Effect,
    ReplyStep,
    Ticket,
    TicketCreate,
    TicketForm,
    TimeEntryCreate,
    split_ref,
)
from gateway.writes import WriteRecord, WriteStep

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=65_535)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# --------------------------------------------------------------------------- declarations


@dataclass(frozen=True)
class StepKind:
    """One vendor effect of a write, and how the runner sends and reconciles it."""

    name: str
    hook: str  # the plugin hook that sends it
    send: Callable[[Hub, WriteRecord, WriteStep, str | None], Effect]  # (gw, record, step, ticket id)
    on_target: bool = False  # acts on the write's target record (an alert), not on a ticket
    per_item: bool = False  # one step per item: its dedup key is the write's key + ":{index}"
    creates_ticket: bool = False  # its effect is a new ticket (the write's ``result_ref``)

    def subject(self, record: WriteRecord, ticket_id: str | None) -> str | None:
        """The vendor id reconciliation looks under and claims are kept for."""
        return split_ref(record.target or "")[1] if self.on_target else ticket_id

    def dedup_key(self, record: WriteRecord, payload: dict[str, Any]) -> str:
        return f"{record.dedup_key}:{payload['index']}" if self.per_item else record.dedup_key


@dataclass(frozen=True)
class WriteKind:
    """One kind of write a caller can send."""

    name: str  # ``WriteRecord.kind``
    route: str
    summary: str
    body: type
    steps: tuple[str, ...]  # the step kinds it can produce, in order
    needs: Callable[[Any], tuple[Capability, ...]]  # what the vendor must support for a body
    plan: Callable[..., list[WriteStep]]  # checks the request; answers its steps
    refetch: bool = True  # once landed, the ticket store fetches the ticket written to

    def require(self, gw: Hub, connection_id: str, body: Any) -> None:
        """``NotSupported`` (a 501) when the connection's vendor lacks what ``body`` needs."""
        for capability in self.needs(body):
            gw.vendors.require(gw.connection(connection_id).vendor, capability)


STEPS: dict[str, StepKind] = {}
KINDS: dict[str, WriteKind] = {}


def register(kind: WriteKind, *steps: StepKind) -> WriteKind:
    """Declare ``kind`` (and step kinds it brings); its steps must all be declared."""
    for step in steps:
        STEPS[step.name] = step
    missing = [s for s in kind.steps if s not in STEPS]
    if missing:
        raise ValueError(f"write kind {kind.name!r} uses undeclared steps {missing}")
    KINDS[kind.name] = kind
    return kind


def step_kind(record: WriteRecord, step: WriteStep) -> StepKind:
    found = STEPS.get(step.name)
    if found is None:
        raise NotSupported(record.vendor, step.name, f"unknown write step {step.name!r}")
    return found


# --------------------------------------------------------------------------- request bodies


class ReplyCreate(msgspec.Struct, forbid_unknown_fields=True):
    """A reply (``internal`` false, the default: the customer sees it) or an internal note,
    optionally with a status change applied after it in the same write. Send as JSON, or as
    multipart/form-data with the same fields plus ``files`` parts for attachments."""

    text: Text
    internal: bool = False
    status_id: Id | None = None


class StatusUpdate(msgspec.Struct, forbid_unknown_fields=True):
    status_id: Id


class TimeEntryBody(msgspec.Struct, forbid_unknown_fields=True):
    minutes: Annotated[int, msgspec.Meta(ge=1, le=24 * 60)]
    notes: Annotated[str, msgspec.Meta(max_length=10_000)] = ""
    started_at: datetime | None = None
    member: Id | None = None
    billable: bool = True


class TicketCreateBody(msgspec.Struct, forbid_unknown_fields=True):
    """A new ticket in ``connection``; ``fields`` are the PSA's own form fields by name (see
    ``GET /v1/connections/{id}/ticket-form``). ``alert`` links the ticket to an RMM alert."""

    connection: Id
    summary: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    description: Annotated[str, msgspec.Meta(max_length=65_535)] = ""
    customer_id: Id | None = None
    fields: dict[str, Any] = {}
    alert: Id | None = None


class AlertActionBody(msgspec.Struct, forbid_unknown_fields=True):
    action: Literal["acknowledge", "resolve"]


# --------------------------------------------------------------------------- steps


def _send_reply(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    p = step.payload
    reply = ReplyStep(text=p["text"], internal=p.get("internal", False), status_id=p.get("status_id"))
    return gw.vendor(record.connection).reply(ticket_id=ticket_id, reply=reply, dedup_key=record.dedup_key)


def _send_status(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    return gw.vendor(record.connection).status_change(ticket_id=ticket_id, status_id=step.payload["status_id"])


def _send_attachment(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    p = step.payload
    upload = AttachmentUpload(p["filename"], p["content_type"], p["size"], gw.writes.get_blob(record.id, p["index"]))
    return gw.vendor(record.connection).attachment_add(ticket_id=ticket_id, attachment=upload,
                   dedup_key=STEPS["attachment"].dedup_key(record, p))


def _send_time_entry(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    entry = msgspec.convert(step.payload, TimeEntryCreate)
    return gw.vendor(record.connection).time_entry(ticket_id=ticket_id, entry=entry, dedup_key=record.dedup_key)


def _send_create(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    ticket = msgspec.convert(step.payload, TicketCreate)
    return gw.vendor(record.connection).ticket_create(ticket=ticket, dedup_key=record.dedup_key)


def _send_alert(gw: Hub, record: WriteRecord, step: WriteStep, ticket_id: str | None) -> Effect:
    alert_id = STEPS["alert"].subject(record, ticket_id)
    return gw.vendor(record.connection).alert_action(alert_id=alert_id, action=step.payload["action"],
                   dedup_key=record.dedup_key)


# --------------------------------------------------------------------------- kinds


def plan_reply(gw: Hub, connection_id: str, body: ReplyCreate, uploads: Sequence[intake.Upload],
               ticket: Callable[[], Ticket]) -> list[WriteStep]:  # fmt: skip
    """A reply's steps: the reply, one per attachment, then the status change unless the
    vendor takes it with the reply (``REPLY_WITH_STATUS``). A new ticket's first public reply
    moves it to In Progress where the workspace asks for it."""
    vendor = gw.connection(connection_id).vendor
    REPLY.require(gw, connection_id, body)
    if uploads:
        gw.vendors.require(vendor, Capability.ATTACHMENT)
    status_id = body.status_id
    if status_id is not None:
        gw.vendors.require(vendor, Capability.STATUS)
        intake.check_status(gw, ticket(), status_id)
    elif not body.internal and gw.workspace_of[connection_id].first_reply_sets_in_progress:
        status_id = intake.first_in_progress(gw, ticket())
    together = status_id is not None and gw.vendors.has(vendor, Capability.REPLY_WITH_STATUS)
    reply: dict[str, Any] = {"text": body.text, "internal": body.internal}
    if together:
        reply["status_id"] = status_id
    steps = [WriteStep("reply", reply)]
    steps += [
        WriteStep("attachment", {"index": i, "filename": u.filename, "content_type": u.content_type, "size": len(u.data)})
        for i, u in enumerate(uploads)
    ]
    if status_id is not None and not together:
        steps.append(WriteStep("status", {"status_id": status_id}))
    return steps


def check_reply(body: ReplyCreate, uploads: Sequence[intake.Upload], cap: int | None, vendor: str) -> None:
    """What a reply can be refused for before any vendor read: white-space text (422), an
    attachment over the vendor's cap (413)."""
    if not body.text.strip():
        raise WriteRefused(422, "Reply text is empty", "text must contain more than white space: the PSA would refuse it",
                           action="send the reply's text", field="text")
    for upload in uploads:
        if cap is not None and len(upload.data) > cap:
            raise WriteRefused(
                413, "Attachment too large",
                f"{upload.filename} is {len(upload.data):,} bytes; {vendor} accepts at most {cap:,} bytes "
                f"({cap / 1024 / 1024:g} MB) per attachment",
                action="send a smaller file or a link to it", cap_bytes=cap, vendor=vendor,
            )


def plan_status(gw: Hub, connection_id: str, body: StatusUpdate, ticket: Callable[[], Ticket]) -> list[WriteStep]:
    """One status step, if the ticket's board has the status (422 listing the valid ones)."""
    intake.check_status(gw, ticket(), body.status_id)
    return [WriteStep("status", {"status_id": body.status_id})]


def plan_time_entry(gw: Hub, connection_id: str, body: TimeEntryBody, ticket: Callable[[], Ticket]) -> list[WriteStep]:
    """One time entry step, if it could ever land (422 naming ``started_at``)."""
    intake.check_time_entry(body.started_at, body.minutes)
    return [WriteStep("time_entry", msgspec.to_builtins(body))]


def form_problems(form: TicketForm, fields: dict[str, Any], quote: Callable[[Any], str],
                  clip: Callable[[str], str]) -> list[str]:  # fmt: skip
    """What in ``fields`` does not fit the PSA's form: required fields left out, values not among
    a picklist's options, names that are not fields of the form."""
    problems = []
    for form_field in form.fields:
        value = fields.get(form_field.name)
        if form_field.name == "summary":
            continue
        if form_field.required and value in (None, ""):
            problems.append(f"{form_field.name} is required")
        elif value not in (None, "") and form_field.options and str(value) not in {o.id for o in form_field.options}:
            problems.append(f"{form_field.name}={quote(value)} is not one of its options")
    unknown = sorted(set(fields) - {f.name for f in form.fields})
    return problems + [f"{clip(name)} is not a field of this form" for name in unknown]


def plan_create(gw: Hub, connection_id: str, body: TicketCreateBody, related: tuple[str, ...]) -> list[WriteStep]:
    """One create step (the form was checked by ``form_problems``); ``related`` names the alert."""
    payload = {"summary": body.summary, "description": body.description, "customer_id": body.customer_id,
               "fields": body.fields, "related": list(related)}
    return [WriteStep("create", payload)]


def alert_capability(action: str) -> Capability:
    """What an alert action needs of the RMM."""
    return Capability.ALERT_ACKNOWLEDGE if action == "acknowledge" else Capability.ALERT_RESOLVE


def plan_alert(gw: Hub, connection_id: str, action: str) -> list[WriteStep]:
    """One alert step; an alert action needs no vendor read to accept."""
    return [WriteStep("alert", {"action": action})]


REPLY = register(
    WriteKind("reply", "POST /v1/tickets/{ref}/replies", "a reply or internal note, its attachments, and a status change",
              ReplyCreate, ("reply", "attachment", "status"),
              lambda b: (Capability.INTERNAL_NOTE if b.internal else Capability.REPLY,), plan_reply),
    StepKind("reply", hookspecs.gateway_reply.__name__, _send_reply),
    StepKind("attachment", hookspecs.gateway_attachment_add.__name__, _send_attachment, per_item=True),
    StepKind("status", hookspecs.gateway_status_change.__name__, _send_status),
)
STATUS = register(WriteKind("status", "POST /v1/tickets/{ref}/status", "a status change to one of the ticket's statuses",
                            StatusUpdate, ("status",), lambda b: (Capability.STATUS,), plan_status))
TIME_ENTRY = register(
    WriteKind("time_entry", "POST /v1/tickets/{ref}/time-entries", "a time entry against the ticket",
              TimeEntryBody, ("time_entry",), lambda b: (Capability.TIME_ENTRY,), plan_time_entry),
    StepKind("time_entry", hookspecs.gateway_time_entry.__name__, _send_time_entry),
)
CREATE_TICKET = register(
    WriteKind("create_ticket", "POST /v1/tickets", "a new ticket, checked against the connection's form",
              TicketCreateBody, ("create",), lambda b: (Capability.CREATE_TICKET,), plan_create),
    StepKind("create", hookspecs.gateway_ticket_create.__name__, _send_create, creates_ticket=True),
)
ALERT_ACTION = register(
    WriteKind("alert_action", "POST /v1/alerts/{ref}/actions, POST /v1/tickets/{ref}/alert-actions",
              "an acknowledge or resolve of an RMM alert", AlertActionBody, ("alert",),
              lambda b: (alert_capability(b.action),), plan_alert, refetch=False),
    StepKind("alert", hookspecs.gateway_alert_action.__name__, _send_alert, on_target=True),
)


# --------------------------------------------------------------------------- the reference


def render() -> str:
    """The write kinds table of ``docs/architecture.md``."""
    lines = [MARKER, "", "| kind | route | what | steps (hook) |", "|---|---|---|---|"]
    for kind in KINDS.values():
        steps = ", ".join(f"`{s}` (`{STEPS[s].hook}`)" for s in kind.steps)
        lines.append(f"| `{kind.name}` | `{kind.route}` | {kind.summary} | {steps} |")
    return "\n".join(lines) + "\n"


MARKER = "<!-- write kinds: generated from gateway/writekinds.py by `python -m gateway.writekinds` -->"


if __name__ == "__main__":
    print(render(), end="")
