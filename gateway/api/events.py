"""Reading the event log: a page at a time, or as a live Server-Sent Events stream.

- ``GET /v1/events?after=&type=&connection=&limit=``: events after ``after``, oldest first.
- ``GET /v1/events/stream``: every new event as it is appended (``id:`` is the event id,
  ``event:`` its type, ``data:`` the event JSON), a ``: heartbeat`` comment when nothing
  happens for ``events_heartbeat_seconds``. It resumes after ``Last-Event-ID`` (or ``after``)
  with nothing missed and nothing repeated; without either it starts at the newest event.

Both need the ``events:read`` scope and see only the key's workspace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import redis.asyncio as aioredis
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from gateway import events
from gateway.api.common import EVENTS, authorize, gateway_of
from gateway.api.problems import ApiError
from gateway.core import Gateway

Types = Annotated[list[str] | None, QueryParameter(name="type", required=False, description="event types to keep (repeatable)")]
After = Annotated[str | None, QueryParameter(required=False, description="an event id: start after it")]


def _filters(gw: Gateway, workspace: str, types: list[str] | None, connection: str | None) -> frozenset[str]:
    wanted = frozenset(types or ())
    unknown = sorted(wanted - set(events.EVENT_TYPES))
    if unknown:
        raise ApiError(400, "Unknown event type", f"{', '.join(unknown)} is not an event type",
                       "see docs/events.md for the catalogue", valid=list(events.EVENT_TYPES))  # fmt: skip
    if connection is not None:
        conn = gw.connections.get(connection)
        if conn is None or conn.workspace != workspace:
            raise ApiError(404, "Not found", f"no connection {connection}",
                           "check the connection id; it may belong to another workspace")  # fmt: skip
    return wanted


def _event_id(value: str, what: str) -> str:
    if not events.STREAM_ID.match(value):
        raise ApiError(400, f"Bad {what}", f"{value!r} is not an event id (like 1718000000000-0)",
                       "pass the id of an event you were given")  # fmt: skip
    return value


@get("/v1/events", operation_id="listEvents", sync_to_thread=True)
def list_events(
    request: Request, after: After = None, types: Types = None, connection: FromQuery[str | None] = None,
    limit: FromQuery[int] = 100,
) -> events.EventPage:  # fmt: skip
    """Events of the key's workspace after ``after`` (from the oldest kept when absent), oldest
    first; ``type`` (repeatable) and ``connection`` filter. Page on with ``next_after``."""
    principal = authorize(request, EVENTS)
    gw = gateway_of(request)
    wanted = _filters(gw, principal.workspace, types, connection)
    start = _event_id(after, "after") if after else "0"
    return gw.events.read(principal.workspace, after=start, types=wanted, connection=connection,
                          limit=max(1, min(limit, 1000)))  # fmt: skip


def _async_redis(request: Request) -> aioredis.Redis:
    """One asyncio Redis client per app for open streams: a blocked ``XREAD`` must not hold a
    worker thread (the sync routes share a small pool of them)."""
    client = getattr(request.app.state, "events_redis", None)
    if client is None:
        kwargs = dict(gateway_of(request).redis.connection_pool.connection_kwargs)
        kwargs["socket_timeout"] = None  # an XREAD blocks longer than any read timeout
        client = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**kwargs))
        request.app.state.events_redis = client
    return client


# uvicorn stops only when every open response has ended, and an event stream never ends by
# itself: ``gateway serve`` and the demo stop waiting after this long (the browser reconnects
# with ``Last-Event-ID`` when the gateway is back).
SHUTDOWN_GRACE_SECONDS = 3

Render = Callable[[events.Event], str]
StillAllowed = Callable[[], Awaitable[bool]]


def full_event(event: events.Event) -> str:
    """The event as the API sends it: its JSON, as stored (already redacted)."""
    return events.encode(event).decode()


async def _follow(client: aioredis.Redis, workspace: str, after: str, wanted: frozenset[str],
                  connection: str | None, heartbeat_ms: int, render: Render,
                  still_allowed: StillAllowed | None) -> AsyncIterator[ServerSentEventMessage]:  # fmt: skip
    key = events.stream_key(workspace)
    cursor = after
    yield ServerSentEventMessage(data=None, comment="connected", retry=2000)
    while True:
        answer = await client.xread({key: cursor}, count=500, block=heartbeat_ms)
        if still_allowed is not None and not await still_allowed():
            return  # signed out or the key lost its scope: nothing more is sent
        if not answer:
            yield ServerSentEventMessage(data=None, comment="heartbeat")
            continue
        for _, entries in answer:
            for entry_id, fields in entries:
                cursor = entry_id.decode()
                event = events.decode(cursor, fields[b"e"])
                if events.matches(event, wanted, connection):
                    yield ServerSentEventMessage(data=render(event), event=events.type_of(event), id=cursor)


async def event_stream(
    request: Request, workspace: str, *, after: str | None = None, wanted: frozenset[str] = frozenset(),
    connection: str | None = None, render: Render = full_event, still_allowed: StillAllowed | None = None,
) -> ServerSentEvent:  # fmt: skip
    """``workspace``'s events as Server-Sent Events, for a caller already authorised to read
    them (the API's bearer key, the console's session). Resumes after the ``Last-Event-ID``
    header (or ``after``), otherwise starts with the next event; ``wanted`` and ``connection``
    filter, ``render`` makes each frame's data, and ``still_allowed`` (asked before each batch
    and heartbeat) ends the stream when the caller may no longer read it."""
    resume = request.headers.get("last-event-id") or after
    client = _async_redis(request)
    if resume:
        start = _event_id(resume, "Last-Event-ID")
    else:
        last: Any = await client.xrevrange(events.stream_key(workspace), count=1)
        start = last[0][0].decode() if last else "0"
    heartbeat_ms = int(gateway_of(request).settings.gateway.events_heartbeat_seconds * 1000)
    return ServerSentEvent(_follow(client, workspace, start, wanted, connection, heartbeat_ms, render, still_allowed))


STREAM_RESPONSE = {
    200: ResponseSpec(
        data_container=events.AnyEvent, media_type="text/event-stream",
        description="Server-Sent Events: `id` is the event id, `event` its type, `data` the event (JSON)",
    )  # fmt: skip
}


@get("/v1/events/stream", operation_id="streamEvents", responses=STREAM_RESPONSE)
async def stream_events(
    request: Request, after: After = None, types: Types = None, connection: FromQuery[str | None] = None,
) -> ServerSentEvent:  # fmt: skip
    """Live events of the key's workspace as Server-Sent Events. Resumes after the
    ``Last-Event-ID`` header (or ``after``) without a gap or a repeat; otherwise starts with
    the next event. Sends a heartbeat comment when idle."""
    principal = authorize(request, EVENTS)
    wanted = _filters(gateway_of(request), principal.workspace, types, connection)
    return await event_stream(request, principal.workspace, after=after, wanted=wanted, connection=connection)


async def close(app: Any) -> None:
    """App shutdown: close the streams' Redis client."""
    client = getattr(app.state, "events_redis", None)
    if client is not None:
        await client.aclose()


ROUTES = [list_events, stream_events]
