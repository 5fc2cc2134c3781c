"""The API's request span (``gateway.api.tracing.RecordedSpan``) behaves as the SDK's span would
for what callers of the OpenTelemetry API can do to it; ``test_hot_path`` checks what a request
leaves in the processors."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Status, StatusCode

from gateway.api.tracing import RequestSpan


def _both(act: Any) -> tuple[Any, Any]:
    """``act`` done to the SDK's span and to ours; the two finished spans."""
    seen = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(seen))
    tracer = provider.get_tracer("test")
    sdk = tracer.start_span("GET /x", kind=trace.SpanKind.SERVER)
    ours = RequestSpan(None, tracer, exported=False)._start("GET /x", None)  # type: ignore[arg-type]
    assert type(ours).__name__ == "RecordedSpan"
    for span in (sdk, ours):
        act(span)
        span.end()
    first, second = seen.get_finished_spans()
    return first, second


def test_it_keeps_converts_and_drops_attributes_as_the_sdk_does() -> None:
    def act(span: Any) -> None:
        span.set_attributes({"s": "text", "i": 3, "f": 1.5, "b": True, "none": None, "list": ["a", "b"],
                             "mixed": ["a", 1], "dict": {"a": 1}, "bytes_list": [b"x"]})
        span.set_attribute("later", "yes")

    sdk, ours = _both(act)
    assert {k: ours.attributes[k] for k in ("s", "i", "f", "b", "list", "later")} == {
        "s": "text", "i": 3, "f": 1.5, "b": True, "list": ("a", "b"), "later": "yes"}
    assert dict(sdk.attributes) == dict(ours.attributes)  # the rest: whatever this SDK version does


@pytest.mark.parametrize("steps, final", [
    ([Status(StatusCode.ERROR, "boom")], StatusCode.ERROR),
    ([Status(StatusCode.OK), Status(StatusCode.ERROR)], StatusCode.OK),  # OK is final
    ([Status(StatusCode.ERROR), Status(StatusCode.UNSET)], StatusCode.ERROR),  # UNSET changes nothing
])
def test_its_status_follows_the_sdks_rules(steps: list[Status], final: StatusCode) -> None:
    def act(span: Any) -> None:
        for status in steps:
            span.set_status(status)

    sdk, ours = _both(act)
    assert sdk.status.status_code is ours.status.status_code is final


def test_an_ended_span_takes_nothing_more_and_ends_once() -> None:
    seen = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(seen))
    span = RequestSpan(None, provider.get_tracer("test"), exported=False)._start("GET /x", None)  # type: ignore[arg-type]
    span.record_exception(ValueError("bad input"))
    span.end()
    span.set_attribute("late", 1)
    span.update_name("renamed")
    span.end()
    [finished] = seen.get_finished_spans()
    assert finished.name == "GET /x" and "late" not in finished.attributes and not span.is_recording()
    [event] = finished.events
    assert event.name == "exception" and event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "bad input" and "exception.stacktrace" not in event.attributes
