"""The console's routes: sign-in, dead letters, writes and connections, as server-rendered HTML.

Reading works with JavaScript off. With it, the dead letters, write and connections pages
follow ``/console/events`` (the workspace's event log as Server-Sent Events, through the same
code as ``GET /v1/events/stream``) and fetch themselves again when an event concerns them. Every form posts a CSRF token and is checked against the
session and the request's origin (``session.py``). Retry, discard and resync ask for
confirmation: ``console.js`` asks in a dialog, and without JavaScript the server answers the
first post with a confirmation page. Retry and discard call the admin API's own functions.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from gateway import events, sync
from gateway.api.write_admin import discard_dead_letter_as, own_write, retry_dead_letter_as
from gateway.api.auth import Principal
from gateway.api.common import gateway_of, own_connection
from gateway.api.events import event_stream
from gateway.api.problems import ApiError
from gateway.console import health, views
from gateway.console.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGN_IN_COOKIE,
    ConsoleSession,
    CrossSiteRequest,
    Sessions,
    check_same_origin,
    check_token,
    cookie_options,
)
from gateway.core import Gateway
from gateway.settings import hash_key
from gateway.writes import TERMINAL

log = logging.getLogger("gateway.console")

HOME = "/console/dead-letters"
MAX_FORM_FIELD = 4096


class SignInRequired(Exception):
    """No live session (or its key lost the ``admin`` scope)."""


def _sessions(request: Request) -> Sessions:
    return Sessions(gateway_of(request).redis, request.app.state.keyring)


def _signed_in(request: Request) -> tuple[ConsoleSession, Principal]:
    found = _sessions(request).find(request)
    if found is None:
        raise SignInRequired
    return found


def _page(request: Request, name: str, session: ConsoleSession | None, principal: Principal | None,
          status_code: int = 200, **context: Any) -> Template:
    return Template(f"{name}.html", status_code=status_code, context={
        "principal": principal, "csrf": session.csrf if session else None, "path": request.url.path, **context,
    })


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v[:MAX_FORM_FIELD] for k, v in form.items() if isinstance(v, str)}


async def _checked_post(request: Request) -> tuple[ConsoleSession, Principal, dict[str, str]]:
    """A signed-in form post from this origin with this session's CSRF token."""
    check_same_origin(request)
    session, principal = await anyio.to_thread.run_sync(_signed_in, request)
    form = await _form(request)
    check_token(session.csrf, form.get("csrf"))
    return session, principal, form


def _safe_next(target: str | None) -> str:
    """Only a console path of this gateway (never ``//host`` or another scheme)."""
    if target and target.startswith("/console/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


# --------------------------------------------------------------------------- sign-in


@get("/", sync_to_thread=True, name="console-sign-in")
def sign_in_page(request: Request, next: FromQuery[str | None] = None) -> Response[Any]:
    """The sign-in form (or the dead letters, when already signed in)."""
    found = _sessions(request).find(request)
    if found is not None:
        return Redirect(_safe_next(next), status_code=303)
    return _sign_in_form(request, next=next)


def _sign_in_form(request: Request, *, next: str | None = None, error: str | None = None,
                  status_code: int = 200) -> Template:
    token = secrets.token_urlsafe(32)
    page = _page(request, "sign_in", None, None, status_code=status_code, sign_in_csrf=token,
                 next=_safe_next(next), error=error, signed_out=request.query_params.get("signed_out") == "1")
    page.set_cookie(SIGN_IN_COOKIE, token, **cookie_options(request, 3600))  # type: ignore[arg-type]
    return page


@post("/sign-in", name="console-sign-in-post")
async def sign_in(request: Request) -> Response[Any]:
    """Open a session for an API key with the ``admin`` scope."""
    check_same_origin(request)
    form = await _form(request)
    check_token(request.cookies.get(SIGN_IN_COOKIE), form.get("csrf"))
    key = form.get("key", "").strip()
    digest = hash_key(key) if key else ""
    principal = request.app.state.keyring.holder(digest) if key else None
    next_path = _safe_next(form.get("next"))
    if principal is None:
        return _sign_in_form(request, next=next_path, status_code=401,
                             error="That API key is not valid (unknown or revoked).")
    if "admin" not in principal.scopes:
        return _sign_in_form(request, next=next_path, status_code=403,
                             error=f"The key “{principal.key_name}” does not have the admin scope. "
                                   "The console needs a key with the admin scope.")
    token = await anyio.to_thread.run_sync(_sessions(request).open, digest)
    response = Redirect(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, **cookie_options(request, SESSION_SECONDS))  # type: ignore[arg-type]
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@post("/sign-out", name="console-sign-out")
async def sign_out(request: Request) -> Response[Any]:
    """End the session."""
    await _checked_post(request)
    await anyio.to_thread.run_sync(_sessions(request).close, request)
    response = Redirect("/console?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# --------------------------------------------------------------------------- dead letters


@get("/dead-letters", sync_to_thread=True, name="console-dead-letters")
def dead_letters_page(request: Request, connection: FromQuery[str] = "", kind: FromQuery[str] = "",
                      cause: FromQuery[str] = "") -> Template:
    """Dead letters of the workspace, newest first, filtered by connection, kind and cause."""
    session, principal = _signed_in(request)
    gw = gateway_of(request)
    live_after = gw.events.last_id(principal.workspace)  # before reading: no event falls in between
    filters = views.Filters(connection[:200], kind[:200], cause[:200])
    rows, choices = views.dead_letters(gw, principal, filters)
    return _page(request, "dead_letters", session, principal, rows=rows, choices=choices, filters=filters,
                 nav="dead-letters", live_after=live_after)


@get("/dead-letters/{write_id:str}", sync_to_thread=True, name="console-dead-letter")
def dead_letter_page(request: Request, write_id: FromPath[str]) -> Response[Any]:
    """One dead letter: its request, attempts and timeline, with retry and discard."""
    session, principal = _signed_in(request)
    gw = gateway_of(request)
    live_after = gw.events.last_id(principal.workspace)
    detail = views.write_detail(gw, principal, write_id)
    if detail.view.status != "dead":
        return Redirect(f"/console/writes/{quote(write_id)}", status_code=303)
    return _page(request, "write", session, principal, detail=detail, nav="dead-letters", dead=True,
                 live_after=live_after)


def _confirm(request: Request, session: ConsoleSession, principal: Principal, *, action: str, question: str,
             back: str, button: str) -> Template:
    return _page(request, "confirm", session, principal, action=action, question=question, back=back, button=button)


async def _dead_letter_action(request: Request, write_id: str, verb: str,
                              act: Callable[[Gateway, Principal, str], Any]) -> Response[Any]:
    session, principal, form = await _checked_post(request)
    gw = gateway_of(request)
    if form.get("confirmed") != "yes":
        record = await anyio.to_thread.run_sync(own_write, gw, principal, write_id)
        views.require_dead(record)
        question = {
            "retry": f"Send write {record.id} to {record.connection} again? Steps that already landed are not "
                     "sent twice; an unknown outcome is reconciled with the vendor first.",
            "discard": f"Give up on write {record.id} for good? It stays readable but is never sent.",
        }[verb]
        return _confirm(request, session, principal, action=f"/console/dead-letters/{quote(write_id)}/{verb}",
                        question=question, back=f"/console/dead-letters/{quote(write_id)}", button=verb.capitalize())
    await anyio.to_thread.run_sync(act, gw, principal, write_id)
    return Redirect(f"/console/writes/{quote(write_id)}?{urlencode({'done': verb})}", status_code=303)


@post("/dead-letters/{write_id:str}/retry", name="console-retry")
async def retry(request: Request, write_id: FromPath[str]) -> Response[Any]:
    """Retry a dead letter (the admin API's retry), after confirmation."""
    return await _dead_letter_action(request, write_id, "retry", retry_dead_letter_as)


@post("/dead-letters/{write_id:str}/discard", name="console-discard")
async def discard(request: Request, write_id: FromPath[str]) -> Response[Any]:
    """Discard a dead letter (the admin API's discard), after confirmation."""
    return await _dead_letter_action(request, write_id, "discard", discard_dead_letter_as)


# --------------------------------------------------------------------------- writes


@get("/writes", sync_to_thread=True, name="console-writes")
def writes_page(request: Request, q: FromQuery[str] = "") -> Template:
    """Look a write up by id, Idempotency-Key or ticket reference."""
    session, principal = _signed_in(request)
    found = views.find_writes(gateway_of(request), principal, q) if q else []
    return _page(request, "writes", session, principal, q=q[:300], found=found, nav="writes")


@get("/writes/{write_id:str}", sync_to_thread=True, name="console-write")
def write_page(request: Request, write_id: FromPath[str], done: FromQuery[str] = "") -> Template:
    """One write: status, request, attempts and timeline; follows the write until it finishes
    (the event stream, or a refresh without JavaScript)."""
    session, principal = _signed_in(request)
    gw = gateway_of(request)
    live_after = gw.events.last_id(principal.workspace)
    detail = views.write_detail(gw, principal, write_id)
    return _page(request, "write", session, principal, detail=detail, nav="writes",
                 dead=detail.view.status == "dead", done=done if done in {"retry", "discard"} else "",
                 pending=detail.view.status not in TERMINAL, live_after=live_after)


# --------------------------------------------------------------------------- connections


@get("/connections", sync_to_thread=True, name="console-connections")
def connections_page(request: Request, resynced: FromQuery[str] = "") -> Template:
    """Per connection: vendor, sync lag and backlog, rate budget, 429 pause, last error."""
    session, principal = _signed_in(request)
    gw = gateway_of(request)
    live_after = gw.events.last_id(principal.workspace)
    rows = health.connections(gw, principal)
    return _page(request, "connections", session, principal, rows=rows, nav="connections",
                 resynced=resynced if any(r.id == resynced for r in rows) else "", chart=health,
                 live_after=live_after)


@post("/connections/{connection_id:str}/resync", name="console-resync")
async def resync(request: Request, connection_id: FromPath[str]) -> Response[Any]:
    """Rebuild a connection's tickets (the admin API's resync), after confirmation."""
    session, principal, form = await _checked_post(request)
    gw = gateway_of(request)
    own_connection(gw, principal, connection_id, f"connection {connection_id}")
    if form.get("confirmed") != "yes":
        return _confirm(request, session, principal, action=f"/console/connections/{quote(connection_id)}/resync",
                        question=f"Drop the tickets of {connection_id} from the store and fetch them all again?",
                        back="/console/connections", button="Resync")
    await anyio.to_thread.run_sync(sync.resync, gw, connection_id)
    return Redirect(f"/console/connections?{urlencode({'resynced': connection_id})}", status_code=303)


# --------------------------------------------------------------------------- live updates

# What the pages follow: a write's outcome and the operator actions on it, a connection's trouble.
LIVE_TYPES = frozenset({
    "write.succeeded", "write.dead_lettered", "write.retried", "write.discarded",
    "connection.paused", "connection.recovered", "connection.auth_failed", "connection.sync_failed",
})
_frame = msgspec.json.Encoder()


def live_frame(event: events.Event) -> str:
    """What a page needs to know: which write or connection changed. The page then fetches
    itself again, so everything it shows is rendered (and escaped) on the server."""
    return _frame.encode({"write": event.write, "connection": event.connection}).decode()


@get("/events", name="console-events")
async def live_events(request: Request, after: FromQuery[str | None] = None) -> Response[Any]:
    """The session's workspace's events as Server-Sent Events (see ``LIVE_TYPES``), from the
    event id the page was rendered at; ends when the session does."""
    sessions = _sessions(request)
    found = await anyio.to_thread.run_sync(sessions.find, request)
    if found is None:
        return Response("Sign in again.", status_code=401, media_type="text/plain")
    _, principal = found

    async def still_signed_in() -> bool:
        again = await anyio.to_thread.run_sync(sessions.find, request)
        return again is not None and again[1].workspace == principal.workspace

    return await event_stream(request, principal.workspace, after=after, wanted=LIVE_TYPES, render=live_frame,
                              still_allowed=still_signed_in)


# --------------------------------------------------------------------------- errors


def console_error(request: Request, exc: Exception) -> Response[Any]:
    """Errors as pages: sign-in for a missing session, 403 for a cross-site post, the problem's
    status otherwise; never a stack trace or a secret."""
    if isinstance(exc, SignInRequired):
        if request.method == "GET":
            return Redirect(f"/console?{urlencode({'next': request.url.path})}", status_code=303)
        return Redirect("/console", status_code=303)
    found = None
    try:
        found = _sessions(request).find(request)
    except Exception:  # Redis down: the error page still renders
        pass
    session, principal = found if found else (None, None)
    if isinstance(exc, CrossSiteRequest):
        return _page(request, "error", session, principal, status_code=403, title="Refused",
                     detail=f"{exc} Reload the page and send the form again.")
    if isinstance(exc, ApiError):
        problem = exc.problem
        return _page(request, "error", session, principal, status_code=problem.status, title=problem.title,
                     detail=problem.detail, action=problem.action)
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return _page(request, "error", session, principal, status_code=exc.status_code,
                     title="Bad request" if exc.status_code == 400 else str(exc.detail), detail=str(exc.detail))
    log.exception("console error on %s %s", request.method, request.url.path)
    return _page(request, "error", session, principal, status_code=500, title="Internal error",
                 detail="The gateway failed; the error is logged.")


ROUTES = [sign_in_page, sign_in, sign_out, dead_letters_page, dead_letter_page, retry, discard,
          writes_page, write_page, connections_page, resync, live_events]
