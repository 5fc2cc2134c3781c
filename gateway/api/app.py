"""``create_app(gateway)``: the Litestar application, its routes and its lifespan.

Routes (all JSON, all under bearer API keys except ``/health``, ``/ready`` and ``/schema``;
``/metrics`` is Prometheus text under an ``admin`` key):

- ``GET /v1/plugins``, ``GET /v1/connections``, ``GET /v1/connections/{id}/ticket-form``
- ``GET /v1/tickets``, ``GET /v1/tickets/{ref}``, ``GET /v1/tickets/{ref}/statuses``
- writes (202 + write id): ``POST /v1/tickets/{ref}/replies``, ``/status``, ``/time-entries``,
  ``POST /v1/tickets``, ``POST /v1/alerts/{ref}/actions``; ``GET /v1/writes/{id}``
- admin: ``GET /v1/admin/dead-letters[/{id}]``, ``POST .../{id}/retry``, ``DELETE .../{id}``,
  ``GET /v1/admin/audit``
- events (``gateway.api.events``): ``GET /v1/events``, ``GET /v1/events/stream``; webhook
  subscriptions (``gateway.api.subscriptions``): ``/v1/admin/subscriptions``
- the operator console under ``/console`` (``gateway.console``) and the API reference at ``/schema``
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State, UploadFile
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import audit, intake, links, metrics, sync, writekinds
from gateway.readiness import Readiness, ReadinessCheck
from gateway import console
from gateway.console import reference
from gateway.api import customers, queue
from gateway.api.admission import Admission
from gateway.api.tracing import request_spans
from gateway.api.write_admin import (
    discard_dead_letter_as,
    own_write,
    retry_dead_letter_as,
    write_view,
)
from gateway.api import events as event_routes
from gateway.api import subscriptions
from gateway.api.auth import KeyRing
from gateway.api.common import (
    submit_ticket_write,
    ADMIN,
    READ,
    close_async_redis,
    WRITE,
    accepted,
    authorize,
    gateway_of,
    idempotency_key,
    own_connection,
    own_ref,
    accept_ticket_write,
    owned_ticket,
    vendor_id_or_404,
)
from gateway.api.openapi import (
    ALERT_ACTION_EXAMPLES,
    DEMO_ALERT,
    REPLY_BODY,
    STATUS_EXAMPLES,
    TICKET_EXAMPLES,
    TIME_ENTRY_EXAMPLES,
    declared,
)
from gateway.api.problems import ApiError, clip, handle, not_found, problem_responses, quote
from gateway.api.schemas import (
    AlertActionBody,
    BrokenPluginView,
    BudgetWindow,
    ConnectionView,
    Health,
    PluginList,
    PluginView,
    ReplyCreate,
    StatusUpdate,
    TicketCreateBody,
    TimeEntryBody,
    WriteAccepted,
    WriteBacklog,
)
from gateway.core import Gateway
from gateway.errors import NotSupported
from gateway.models import Capability, Ticket, TicketForm, TicketStatus
from gateway.writes import WriteView

# --------------------------------------------------------------------------- meta


@get("/health", operation_id="health", sync_to_thread=True, opt={"public": True})
def health(request: Request) -> Health:
    """Liveness and what is degraded: Redis reachability and plugins that failed to load."""
    gw = gateway_of(request)
    try:
        redis_ok = bool(gw.redis.ping())
        active = gw.writes.active_count()
    except Exception:
        redis_ok, active = False, 0
    broken = [b.name for b in gw.plugins.broken]
    return Health("ok" if redis_ok and not broken else "degraded", redis_ok, broken, active, sorted(gw.unavailable))


@get("/ready", operation_id="ready", sync_to_thread=True, opt={"public": True},
     responses={503: ResponseSpec(Readiness, description="Not ready yet: what it waits for")})
def ready(request: Request) -> Response[Readiness]:
    """Readiness: 200 once Redis answers and every PSA connection finished its first backfill;
    503 with the same detail (``waiting_for``) until then. ``/health`` is liveness."""
    answer = request.app.state.readiness.check()
    return Response(answer, status_code=200 if answer.ready else 503)


@get("/metrics", operation_id="metrics", sync_to_thread=True, media_type=CONTENT_TYPE_LATEST)
def metrics_text(request: Request) -> Response[bytes]:
    """Prometheus metrics of the key's workspace, from every API and worker process (they count
    in Redis). Needs the ``admin`` scope: scrape with ``authorization: {credentials: <key>}``."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    text = metrics.render(gw, principal.workspace, lambda connection: sync.last_pull(gw, connection))
    return Response(text, media_type=CONTENT_TYPE_LATEST)


@get("/v1/plugins", operation_id="listPlugins", sync_to_thread=False)
def list_plugins(request: Request) -> PluginList:
    """Every installed vendor plugin with its capabilities, and plugins that failed to load."""
    authorize(request, READ)
    gw = gateway_of(request)
    plugins = [
        PluginView(i.name, i.kind, i.title or i.name, sorted(i.capabilities, key=lambda c: c.value),
                   i.default_rate_limit, i.attachment_cap_bytes)
        for i in sorted(gw.plugins.vendors.values(), key=lambda i: i.name)
    ]
    broken = [BrokenPluginView(b.name, b.error) for b in gw.plugins.broken]
    return PluginList(plugins, broken)


@get("/v1/connections", operation_id="listConnections", sync_to_thread=True)
def list_connections(request: Request) -> list[ConnectionView]:
    """The workspace's connections, their capabilities and their rate-limit state."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    synced = set(sync.synced_connections(gw))
    views = []
    for conn in gw.connections.values():
        if conn.workspace != principal.workspace:
            continue
        info = gw.vendors.info(conn.vendor)
        refused = gw.auth_failure(conn.id)
        views.append(ConnectionView(
            conn.id, conn.vendor, info.kind, sorted(info.capabilities, key=lambda c: c.value), conn.rate_limit,
            conn.attachment_cap_bytes, round(gw.limiter.paused_for(conn.id), 3),
            gw.limiter.calls_in_window(conn.id, 60),
            sync.status(gw, conn.id) if conn.id in synced else None,
            _backlog(gw, conn.id),
            [msgspec.convert(w, BudgetWindow) for w in gw.limiter.budget_used(conn.id, conn.rate_limit)],
            state="auth_failed" if refused else "ok",
            auth_failed_since=refused[0] if refused else None,
            auth_error=refused[1] if refused else None,
        ))
    return views


def _backlog(gw: Gateway, connection_id: str) -> WriteBacklog:
    unfinished, oldest = gw.writes.open_writes(connection_id)
    load = gw.scheduler.load(connection_id)
    return WriteBacklog(
        unfinished=unfinished, queued=load.queued, delayed=load.delayed, running=load.running,
        max_running=gw.connection_cap(connection_id),
        oldest_age_seconds=round(time.time() - oldest, 3) if oldest else None,
        parked_seconds=load.parked_for,
    )


@get("/v1/connections/{connection_id:str}/ticket-form", operation_id="getTicketForm", sync_to_thread=True)
def ticket_form(request: Request, connection_id: FromPath[str], refresh: FromQuery[bool] = False) -> TicketForm:
    """The PSA's new-ticket form: required fields and picklists (cached; ``refresh=true``)."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    own_connection(gw, principal, connection_id, f"connection {connection_id}")
    gw.vendors.require(gw.connection(connection_id).vendor, Capability.CREATE_TICKET)
    return intake.cached_form(gw, connection_id, refresh=refresh)


# --------------------------------------------------------------------------- ticket reads


T = TypeVar("T")


def _optional(read: Callable[[], T]) -> T | None:
    """A detail read the vendor may not offer: ``None`` instead of 501."""
    try:
        return read()
    except NotSupported:
        return None


@get("/v1/tickets/{ref:str}", operation_id="getTicket", sync_to_thread=True)
def get_ticket(request: Request, ref: FromPath[str]) -> Ticket:
    """One ticket in full: conversation thread (internal entries marked), attachments, status
    history, time entries, related records (devices, alerts, agreements) and its PSA link."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    connection_id, vendor_id = own_ref(gw, principal, ref)
    vendor = gw.vendor(connection_id)
    ticket = vendor.ticket_get(ticket_id=vendor_id)
    if ticket is None:
        gw.store.delete(ref)
        raise not_found(f"ticket {ref}")
    gw.store.upsert(ticket, principal.workspace)
    thread = vendor.ticket_thread(ticket_id=vendor_id)
    time_entries = _optional(lambda: vendor.ticket_time_entries(ticket_id=vendor_id))
    attachments = _optional(lambda: vendor.ticket_attachments(ticket_id=vendor_id))
    related = links.related_records(gw, ref, ticket)
    return msgspec.structs.replace(
        ticket,
        thread=tuple(thread),
        time_entries=tuple(time_entries or ()),
        attachments=tuple(attachments or ()),
        status_history=tuple(gw.store.status_history(ref)),
        related=tuple(related),
    )


@get("/v1/tickets/{ref:str}/attachments/{attachment_id:str}", operation_id="downloadAttachment",
     sync_to_thread=True, media_type="application/octet-stream")
def download_attachment(request: Request, ref: FromPath[str], attachment_id: FromPath[str]) -> Response[bytes]:
    """An attachment's bytes, fetched from the PSA through the gateway."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    connection_id, vendor_id = own_ref(gw, principal, ref)
    gw.vendors.require(gw.connection(connection_id).vendor, Capability.TICKET_READ)
    vendor_id_or_404(gw, connection_id, attachment_id, f"attachment {clip(attachment_id)} on {clip(ref)}")
    found = gw.vendor(connection_id).attachment_download(ticket_id=vendor_id, attachment_id=attachment_id)
    if found is None:
        raise not_found(f"attachment {attachment_id} on {ref}")
    safe_name = "".join(c for c in found.filename if c.isprintable() and c not in '"\\') or "attachment"
    return Response(found.data, media_type=found.content_type or "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{safe_name}"'})


@get("/v1/tickets/{ref:str}/statuses", operation_id="listTicketStatuses", sync_to_thread=True)
def ticket_statuses(request: Request, ref: FromPath[str]) -> list[TicketStatus]:
    """The PSA statuses this ticket may move to (per board or queue), with categories."""
    principal = authorize(request, READ)
    gw = gateway_of(request)
    return intake.cached_statuses(gw, owned_ticket(gw, principal, ref))


# --------------------------------------------------------------------------- writes


async def _reply_body(request: Request, gw: Gateway, cap: int | None, vendor: str) -> tuple[ReplyCreate, list[intake.Upload]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        if "internal" in fields:
            fields["internal"] = str(fields["internal"]).lower() in {"1", "true", "yes", "on"}
        if not fields.get("status_id"):
            fields.pop("status_id", None)
        body = _convert(fields, ReplyCreate)
        uploads = []
        for value in form.getall("files") if "files" in form else []:
            if not isinstance(value, UploadFile):
                raise ApiError(400, "Invalid request", "files parts must be file uploads")
            data = await value.read()
            uploads.append(intake.Upload(value.filename or "attachment", value.content_type or "application/octet-stream", data))
    else:
        raw = await request.body()
        body = _convert(msgspec.json.decode(raw) if raw else None, ReplyCreate)
        uploads = []
    writekinds.check_reply(body, uploads, cap, vendor)
    return body, uploads


def _convert(value: Any, type_: type) -> Any:
    try:
        return msgspec.convert(value, type_)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "Invalid request", str(exc), "fix the request body") from None


@post("/v1/tickets/{ref:str}/replies", operation_id="createReply", status_code=202,
      request_max_body_size=128 * 1024 * 1024, opt={"form": True}, operation_class=declared(idempotent=True, body=REPLY_BODY))
async def create_reply(request: Request, ref: FromPath[str]) -> WriteAccepted:
    """Queue a reply or internal note (JSON ``ReplyCreate`` or multipart with ``files``)."""
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    connection_id, _ = own_ref(gw, principal, ref)
    conn = gw.connection(connection_id)
    body, uploads = await _reply_body(request, gw, conn.attachment_cap_bytes, conn.vendor)
    key = idempotency_key(request)

    request_body = msgspec.to_builtins(body)
    request_body["attachments"] = [{"filename": u.filename, "size": len(u.data)} for u in uploads]
    return await accept_ticket_write(
        request, principal, connection_id, ref,
        lambda ticket: writekinds.plan_reply(gw, connection_id, body, uploads, ticket),
        workspace=principal.workspace, kind="reply", target=ref, request=request_body, idempotency_key=key,
        uploads=uploads,
    )


@post("/v1/tickets/{ref:str}/status", operation_id="changeStatus", status_code=202,
      operation_class=declared(idempotent=True, examples=STATUS_EXAMPLES))
async def change_status(request: Request, ref: FromPath[str], data: JSONBody[StatusUpdate]) -> WriteAccepted:
    """Queue a status change to one of the ticket's PSA statuses (422 lists the valid ones)."""
    return await submit_ticket_write(request, ref, writekinds.STATUS, data)


@post("/v1/tickets/{ref:str}/time-entries", operation_id="createTimeEntry", status_code=202,
      operation_class=declared(idempotent=True, examples=TIME_ENTRY_EXAMPLES))
async def create_time_entry(request: Request, ref: FromPath[str], data: JSONBody[TimeEntryBody]) -> WriteAccepted:
    """Queue a time entry against the ticket."""
    return await submit_ticket_write(request, ref, writekinds.TIME_ENTRY, data)


@post("/v1/tickets", operation_id="createTicket", status_code=202, sync_to_thread=True,
      operation_class=declared(idempotent=True, examples=TICKET_EXAMPLES))
def create_ticket(request: Request, data: JSONBody[TicketCreateBody]) -> WriteAccepted:
    """Queue a new ticket, validated against the connection's form (required fields, picklists)."""
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    own_connection(gw, principal, data.connection, f"connection {data.connection}")
    writekinds.CREATE_TICKET.require(gw, data.connection, data)
    key, body = idempotency_key(request), msgspec.to_builtins(data)
    resent = intake.replay(gw, workspace=principal.workspace, kind="create_ticket", target=None, request=body,
                           idempotency_key=key)
    if resent is not None:
        return accepted(gw, resent)
    problems = writekinds.form_problems(intake.cached_form(gw, data.connection), data.fields, quote, clip)
    if problems:
        raise ApiError(422, "Ticket does not fit the PSA's form", "; ".join(problems),
                       f"see GET /v1/connections/{data.connection}/ticket-form", problems=problems)
    related: tuple[str, ...] = ()
    if data.alert:
        own_ref(gw, principal, data.alert, "alert")
        related = (data.alert,)
    submitted = intake.submit(
        gw, workspace=principal.workspace, connection=data.connection, kind="create_ticket", target=None,
        steps=writekinds.plan_create(gw, data.connection, data, related), request=body, idempotency_key=key,
    )
    return accepted(gw, submitted)


@post("/v1/alerts/{ref:str}/actions", operation_id="alertAction", status_code=202, sync_to_thread=True,
      operation_class=declared(idempotent=True, examples=ALERT_ACTION_EXAMPLES, path_examples={"ref": DEMO_ALERT}))
def alert_action(request: Request, ref: FromPath[str], data: JSONBody[AlertActionBody]) -> WriteAccepted:
    """Queue an acknowledge or resolve of an RMM alert (501 where the vendor has no such action)."""
    principal = authorize(request, WRITE)
    gw = gateway_of(request)
    connection_id, _ = own_ref(gw, principal, ref, "alert")
    writekinds.ALERT_ACTION.require(gw, connection_id, data)
    submitted = intake.submit(
        gw, workspace=principal.workspace, connection=connection_id, kind="alert_action", target=ref,
        steps=writekinds.plan_alert(gw, connection_id, data.action), request=msgspec.to_builtins(data),
        idempotency_key=idempotency_key(request),  # an alert action needs no vendor read to accept
    )
    return accepted(gw, submitted)


@get("/v1/writes/{write_id:str}", operation_id="getWrite", sync_to_thread=False)
def get_write(request: Request, write_id: FromPath[str]) -> WriteView:
    """A write's status, its steps (with the vendor ids they made) and every attempt."""
    principal = authorize(request, READ)
    return write_view(gateway_of(request), own_write(gateway_of(request), principal, write_id))


# --------------------------------------------------------------------------- admin


class DeadLetter(msgspec.Struct):
    """A write that could not land: its redacted request, every attempt and the cause."""

    write: WriteView
    request: dict[str, Any]
    workspace: str


@get("/v1/admin/dead-letters", operation_id="listDeadLetters", sync_to_thread=True)
def list_dead_letters(request: Request, limit: FromQuery[int] = 100, offset: FromQuery[int] = 0) -> list[DeadLetter]:
    """Dead-lettered writes of the workspace, newest first."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    records = gw.writes.dead_letters(principal.workspace, max(1, min(limit, 500)), max(0, offset))
    return [DeadLetter(write_view(gw, r), gw.redactor.payload(r.request), r.workspace) for r in records]


@get("/v1/admin/dead-letters/{write_id:str}", operation_id="getDeadLetter", sync_to_thread=True)
def get_dead_letter(request: Request, write_id: FromPath[str]) -> DeadLetter:
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    record = own_write(gw, principal, write_id)
    if record.status != "dead":
        raise not_found(f"dead letter {write_id}")
    return DeadLetter(write_view(gw, record), gw.redactor.payload(record.request), record.workspace)


@post("/v1/admin/dead-letters/{write_id:str}/retry", operation_id="retryDeadLetter", status_code=202, sync_to_thread=True,
      operation_class=declared())
def retry_dead_letter(request: Request, write_id: FromPath[str]) -> WriteAccepted:
    """Send a dead letter again with the same dedup key; unknown outcomes are reconciled first."""
    return retry_dead_letter_as(gateway_of(request), authorize(request, ADMIN), write_id)


@delete("/v1/admin/dead-letters/{write_id:str}", operation_id="discardDeadLetter", status_code=204, sync_to_thread=True,
        operation_class=declared())
def discard_dead_letter(request: Request, write_id: FromPath[str]) -> None:
    """Give up on a dead letter for good (it stays readable at ``GET /v1/writes/{id}``)."""
    discard_dead_letter_as(gateway_of(request), authorize(request, ADMIN), write_id)


@get("/v1/admin/audit", operation_id="readAudit", sync_to_thread=True)
def read_audit(request: Request, write_id: FromQuery[str | None] = None, ticket: FromQuery[str | None] = None, limit: FromQuery[int] = 200) -> list[audit.AuditRecord]:
    """Audited spans (vendor calls, write jobs, admin actions) of one write or one ticket."""
    principal = authorize(request, ADMIN)
    gw = gateway_of(request)
    if write_id:
        own_write(gw, principal, write_id)
    if ticket:
        own_ref(gw, principal, ticket)
    records = audit.read_audit(gw.redis, write_id=write_id, ticket=ticket, limit=max(1, min(limit, 1000)),
                               pending=gw.tracer_provider)
    if not write_id and not ticket:
        records = [r for r in records if r.attributes.get("gateway.workspace") == principal.workspace]
    return records


ROUTES = [
    health, ready, metrics_text, list_plugins, list_connections, ticket_form, get_ticket, download_attachment, ticket_statuses,
    create_reply, change_status, create_time_entry, create_ticket, alert_action, get_write,
    list_dead_letters, get_dead_letter, retry_dead_letter, discard_dead_letter, read_audit,
]


class GatewayApp(Litestar):
    """Litestar with only the plugins the gateway's types need. Every request and answer is a
    msgspec struct; Litestar would also load its pydantic and attrs plugins whenever those
    libraries are installed (two plugins' published vendor clients install pydantic with their
    test extras), and importing pydantic for them costs the API process about 10 MB."""

    @staticmethod
    def _get_default_plugins(plugins: list[Any]) -> list[Any]:
        from litestar.plugins.core import MsgspecDIPlugin

        return [*plugins, MsgspecDIPlugin()]


async def _close_async_redis(app: Litestar) -> None:
    await close_async_redis(app.state.aredis)


def create_app(gateway: Gateway, *, extra_routes: list[Any] | None = None) -> Litestar:
    """Build the API around an assembled ``Gateway`` (the caller owns and closes it)."""
    openapi = reference.openapi_config("MSP integration gateway", "1")
    handlers = [*ROUTES, *customers.ROUTES, *queue.ROUTES, *event_routes.ROUTES, *subscriptions.ROUTES,
                *(extra_routes or [])]
    for handler in handlers:
        # Declare the problem answers every route can give, so the OpenAPI document is complete.
        handler.responses = {**problem_responses(), **(handler.responses or {})}
    return GatewayApp(
        route_handlers=[*handlers, console.router(), reference.assets_router()],
        template_config=console.template_config(),
        state=State({"gateway": gateway, "keyring": KeyRing(gateway.settings), "redactor": gateway.redactor,
                     "readiness": ReadinessCheck(gateway), "aredis": weakref.WeakKeyDictionary()}),
        exception_handlers={Exception: handle},
        openapi_config=openapi,
        # One span per request (it carries the audit attributes), then the API key and the
        # body's depth, before any handler.
        middleware=[request_spans(gateway.tracer, exported=audit.exports_traces()), Admission(openapi.path)],
        on_shutdown=[event_routes.close, _close_async_redis],
        logging_config=None,  # the process configures logging (gateway.cli); Litestar must not
        debug=False,
    )

