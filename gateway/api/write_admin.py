"""A write as the API and the operator console show and handle it: its view for a caller,
the workspace check, and an operator's retry or discard of a dead letter (audited, announced)."""

from __future__ import annotations

import msgspec

from gateway import events, metrics
from gateway.api.auth import Principal
from gateway.api.problems import ApiError, not_found
from gateway.api.schemas import WriteAccepted
from gateway.core import Gateway
from gateway.jobs import enqueue_write
from gateway.writes import WriteRecord, WriteView


def write_view(gw: Gateway, record: WriteRecord) -> WriteView:
    # Step payloads carry the caller's text: scrub configured secrets pasted into it.
    steps = [msgspec.structs.replace(s, payload=gw.redactor.payload(s.payload)) for s in record.steps]
    return WriteView(record.id, record.kind, record.status, record.connection, record.dedup_key,
                     record.created_at, record.updated_at, steps, record.attempts,
                     record.target, record.result_ref, record.error)


def own_write(gw: Gateway, principal: Principal, write_id: str) -> WriteRecord:
    """The write if it belongs to the caller's workspace, else 404."""
    record = gw.writes.get(write_id) if write_id.startswith("w_") else None
    if record is None or record.workspace != principal.workspace:
        raise not_found(f"write {write_id}")
    return record


def _audit_admin(gw: Gateway, principal: Principal, action: str, record: WriteRecord) -> None:
    attributes = {"gateway.kind": "admin", "gateway.admin_action": action, "gateway.write_id": record.id,
                  "gateway.workspace": principal.workspace, "gateway.api_key": principal.key_name}
    if record.target:
        attributes["gateway.ticket"] = record.target
    with gw.tracer.start_as_current_span(f"admin {action}", attributes=attributes):
        pass


def _own_dead_letter(gw: Gateway, principal: Principal, write_id: str, action: str) -> WriteRecord:
    record = own_write(gw, principal, write_id)
    if record.status != "dead":
        raise ApiError(409, "Not a dead letter", f"write {write_id} is {record.status}", f"only dead letters can be {action}")
    return record


def retry_dead_letter_as(gw: Gateway, principal: Principal, write_id: str) -> WriteAccepted:
    """Requeue a dead letter of ``principal``'s workspace (the admin API and the console)."""
    record = _own_dead_letter(gw, principal, write_id, "retried")
    lock = gw.writes.lock(record.id, 30)
    if lock is None:
        raise ApiError(409, "Write is busy", f"write {write_id} is being worked on", "retry in a moment")
    try:
        record.status = "queued"
        record.error = None
        record.dead_at = None
        gw.writes.save(record)
        head = gw.writes.rejoin(record)
    finally:
        gw.writes.unlock(record.id, lock)
    _audit_admin(gw, principal, "retry", record)
    events.write_retried(gw, record, principal.key_name)
    metrics.write_retried(gw.redis, record)
    if head:
        enqueue_write(gw, record.id, connection=record.connection, workspace=record.workspace)
    return WriteAccepted(record.id, record.status, record.dedup_key)


def discard_dead_letter_as(gw: Gateway, principal: Principal, write_id: str) -> None:
    """Give up on a dead letter of ``principal``'s workspace (the admin API and the console)."""
    record = _own_dead_letter(gw, principal, write_id, "discarded")
    record.status = "discarded"
    gw.writes.save(record)
    _audit_admin(gw, principal, "discard", record)
    events.write_discarded(gw, record, principal.key_name)
