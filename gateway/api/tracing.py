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

The span itself is ``RecordedSpan``, not the SDK's. The SDK's span checks each attribute and
takes a lock on every call, and makes locks, deques and limits per span whether or not anything
uses them: its start, two attribute calls and end cost about 33 µs on our machines, a
twentieth of the 202 path's CPU; ``RecordedSpan``'s about 9 µs. It keeps the attributes in a
dict (a value other than a string, number or boolean goes through the SDK's own check) and,
when it ends, hands the tracer's span processors (the audit, OTLP, whatever a test added) the
``ReadableSpan`` the SDK would have: same ids, parent, kind, name, times, attributes, events
and status (``tests/test_request_span.py`` holds the two side by side).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util.types import Attributes

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


_PLAIN = frozenset({str, bool, int, float})
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class RecordedSpan(trace.Span):
    """A request's server span (see the module): its attributes in a plain dict, handed to the
    tracer's span processors as a ``ReadableSpan`` when it ends."""

    def __init__(self, tracer: SdkTracer, scope: InstrumentationScope, name: str, parent: SpanContext | None,
                 kind: SpanKind) -> None:
        self._tracer = tracer
        self._scope = scope
        self._name = name
        self._parent = parent
        self._kind = kind
        self._context = SpanContext(
            parent.trace_id if parent is not None else tracer.id_generator.generate_trace_id(),
            tracer.id_generator.generate_span_id(), is_remote=False, trace_flags=_SAMPLED,
            trace_state=parent.trace_state if parent is not None else None,
        )
        self._attributes: dict[str, Any] = {}
        self._events: list[Event] = []
        self._status = Status(StatusCode.UNSET)
        self._start = time.time_ns()
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: Any) -> None:
        self.set_attributes({key: value})

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._ended:
            return
        for key, value in attributes.items():
            if type(value) in _PLAIN:  # what the gateway sets: kept as it is
                self._attributes[key] = value
            else:  # anything else as the SDK in use takes it (kept, converted or dropped)
                cleaned = BoundedAttributes(attributes={key: value})
                if key in cleaned:
                    self._attributes[key] = cleaned[key]

    def add_event(self, name: str, attributes: Attributes = None, timestamp: int | None = None) -> None:
        if not self._ended:
            self._events.append(Event(name, attributes, timestamp or time.time_ns()))

    def record_exception(self, exception: BaseException, attributes: Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        """An ``exception`` event as the SDK records it, without the stack trace: spans leave
        the process over OTLP, and a frame's text may hold a secret."""
        found = {"exception.type": type(exception).__qualname__, "exception.message": str(exception),
                 "exception.escaped": str(escaped)}
        self.add_event("exception", {**found, **(attributes or {})}, timestamp)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        new = status if isinstance(status, Status) else Status(status, description)
        # as the SDK: OK is final, and UNSET changes nothing
        if not (self._ended or self._status.status_code is StatusCode.OK or new.status_code is StatusCode.UNSET):
            self._status = new

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = name

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        self._tracer.span_processor.on_end(ReadableSpan(
            self._name, self._context, self._parent, self._tracer.resource, self._attributes, self._events,
            kind=self._kind, status=self._status, start_time=self._start, end_time=end_time or time.time_ns(),
            instrumentation_scope=self._scope,
        ))


class RequestSpan:
    """ASGI middleware: one server span per HTTP request (see the module). A route declared
    ``opt={"quiet": True}`` (reads answered from Redis alone, which audit nothing) gets its span
    only when someone can see it: traces are exported (``exported``) or the caller sent a trace
    context."""

    def __init__(self, app: ASGIApp, tracer: trace.Tracer, *, exported: bool) -> None:
        self.app = app
        self.tracer = tracer
        self.exported = exported
        # RecordedSpan with the SDK's tracer (the gateway's); any other tracer makes its own spans
        self._sdk = tracer if isinstance(tracer, SdkTracer) else None
        if self._sdk is not None:
            info = self._sdk.instrumentation_info
            self._scope = InstrumentationScope(info.name, info.version)

    def _start(self, name: str, parent: context.Context | None) -> trace.Span:
        if self._sdk is None:
            return self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
        found = trace.get_current_span(parent).get_span_context()  # an invalid one when there is none
        span = RecordedSpan(self._sdk, self._scope, name, found if found.is_valid else None, SpanKind.SERVER)
        self._sdk.span_processor.on_start(span, parent_context=parent)
        return span

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
        # The request's attributes go in with its status at the end, in one call.
        span = self._start(f"{method} {route}", parent)
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
