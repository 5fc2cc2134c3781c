"""One OpenTelemetry span per API request, and nothing per ASGI message.

``RequestSpan`` wraps every HTTP route: it continues the caller's trace when the request
carries W3C ``traceparent``/``tracestate`` headers, names the span by the route's template
(``POST /v1/tickets/{ref:str}/replies``: few names, whatever the ids), and sets the attributes
the audit and the console read: ``http.request.method``, ``url.path``, ``http.route`` and
``http.response.status_code`` (a 5xx also marks the span as an error). The handlers add the
audit attributes (``gateway.kind`` and the rest) to this span, which is the current one while
they run, threads included.

The queue's reads (``opt={"quiet": True}``: answered from Redis, auditing nothing) get a span
only when someone can see it: spans are exported over OTLP, or the caller sent a trace context.

It replaces the generic ASGI instrumentation, which opened a span per receive and send and read
every header on every request: on the 202 path that cost more CPU than the write itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from litestar.types import ASGIApp, Message, Receive, Scope, Send

_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")


def _carrier(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str] | None:
    """The trace headers of a request, or ``None`` when it has none (the common case)."""
    found = None
    for name, value in headers:
        if name in _TRACE_HEADERS:
            found = found or {}
            found[name.decode("latin-1")] = value.decode("latin-1")
    return found


def _quiet(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return bool(handler is not None and handler.opt.get("quiet"))


def _route(scope: Scope) -> str:
    handler = scope.get("route_handler")
    paths = getattr(handler, "paths", None)
    return min(paths) if paths else scope.get("path", "")


class RequestSpan:
    """ASGI middleware: one server span per HTTP request (see the module). A route declared
    ``opt={"quiet": True}`` (reads answered from Redis alone, which audit nothing) gets its span
    only when someone can see it: traces are exported (``exported``) or the caller sent a trace
    context."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, *, exported: bool) -> None:
        self.app = app
        self.tracer = tracer
        self.exported = exported

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = _carrier(scope.get("headers", ()))
        if carrier is None and not self.exported and _quiet(scope):
            await self.app(scope, receive, send)
            return
        parent = propagate.extract(carrier) if carrier else None
        method = scope.get("method", "")
        route = _route(scope)
        # The request's attributes go in with its status at the end: the SDK checks every
        # attribute of each call, so one call costs less than two.
        span = self.tracer.start_span(f"{method} {route}", context=parent, kind=SpanKind.SERVER)
        token = context.attach(trace.set_span_in_context(span, parent))
        status = 500  # no answer started: the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            span.set_attributes({"http.request.method": method, "url.path": scope.get("path", ""),
                                 "http.route": route, "http.response.status_code": status})
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            context.detach(token)
            span.end()


def request_spans(tracer: trace.Tracer, *, exported: bool) -> Any:
    """The middleware factory Litestar's ``middleware=[...]`` takes."""

    def factory(app: ASGIApp) -> ASGIApp:
        return RequestSpan(app, tracer, exported=exported)

    return factory
