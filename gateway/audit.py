"""Audit: every vendor call is an OpenTelemetry span, and the spans are kept in Redis.

``RedisAuditExporter`` stores each finished span that carries ``gateway.kind`` (vendor calls,
write jobs, admin actions) as an ``AuditRecord``, indexed by write id and by ticket reference,
so ``GET /v1/admin/audit`` can read them back. It is attached with an ``AuditProcessor``: a
vendor call's record is in Redis before the call returns, so a crash cannot lose it; the API's
request spans are stored in batches just after their answers. With
``OTEL_EXPORTER_OTLP_ENDPOINT`` set the same spans also go out over OTLP.

Each record also joins its workspace's hash chain (``gateway.audit_chain``), in the same
atomic step, so ``gateway audit verify`` can show whether any record was edited, removed or
reordered since.
Each vendor call also counts, in the same round trip, towards a per-minute sample of its
connection (``usage:{connection}:{minute}``: reads, writes and 429s, kept two hours) that the
operator console charts.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec
import redis
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from gateway.audit_chain import KEEP_RECORDS, UNSCOPED, AuditChain, ChainContended
from gateway.redact import Redactor

AUDIT_ALL = "audit:all"
KEEP_SECONDS = 14 * 24 * 3600
KEEP_GLOBAL = 200_000
INDEXES = (("gateway.write_id", "audit:write:"), ("gateway.ticket", "audit:ticket:"))
USAGE_KEEP_SECONDS = 2 * 3600

log = logging.getLogger(__name__)


def usage_key(connection: str, minute: int) -> str:
    """The per-minute call counts of ``connection`` (``minute`` = Unix time // 60)."""
    return f"usage:{connection}:{minute}"


class AuditRecord(msgspec.Struct, omit_defaults=True):
    """One audited span: a vendor call, a write job or an admin action."""

    trace_id: str
    span_id: str
    name: str
    kind: str
    started_at: datetime
    duration_ms: float
    attributes: dict[str, Any]
    parent_span_id: str | None = None
    error: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(AuditRecord)


def _record(span: ReadableSpan, found: dict[str, Any], redactor: Redactor) -> AuditRecord:
    """The record of ``span``, whose attributes are ``found``."""
    ctx = span.get_span_context()
    payload = redactor.payload
    attributes = {k: payload(v) for k, v in found.items()}
    start = span.start_time or 0
    end = span.end_time or start
    error = span.status.description if span.status and span.status.description else None
    return AuditRecord(
        trace_id=f"{ctx.trace_id:032x}",
        span_id=f"{ctx.span_id:016x}",
        parent_span_id=f"{span.parent.span_id:016x}" if span.parent else None,
        name=span.name,
        kind=str(attributes.get("gateway.kind", "")),
        started_at=datetime.fromtimestamp(start / 1e9, tz=timezone.utc),
        duration_ms=round((end - start) / 1e6, 3),
        attributes=attributes,
        error=redactor.scrub(error) if error else None,
    )


class RedisAuditExporter(SpanExporter):
    """Keeps gateway spans in Redis, chained per workspace and indexed for read-back; ignores
    framework-only spans."""

    def __init__(self, client: redis.Redis, redactor: Redactor, *, keep_records: int = KEEP_RECORDS) -> None:
        self.redis = client
        self.redactor = redactor
        self.chain = AuditChain(client, keep_records=keep_records)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        # One chain append per workspace for the whole batch (one span, or an API batch).
        chains: dict[str, list[tuple[bytes, list[str]]]] = {}
        calls: list[AuditRecord] = []
        for span in spans:
            # the span's own dict, copied in C (iterating the SDK's mapping costs a call a key)
            attributes = span.attributes
            found = attributes.copy() if attributes else {}
            if not found.get("gateway.kind"):
                continue
            record = _record(span, found, self.redactor)
            indexes = [prefix + str(record.attributes[attr]) for attr, prefix in INDEXES if record.attributes.get(attr)]
            workspace = str(record.attributes.get("gateway.workspace") or UNSCOPED)
            chains.setdefault(workspace, []).append((_encoder.encode(record), indexes))
            if record.kind == "vendor_call":
                calls.append(record)
        result = SpanExportResult.SUCCESS
        for workspace, items in chains.items():
            try:
                self.chain.append_many(workspace, items, newest_first=AUDIT_ALL, newest_first_cap=KEEP_GLOBAL,
                                       index_ttl=KEEP_SECONDS)
            except (redis.RedisError, ChainContended) as exc:
                log.warning("%d audit record(s) of %s not stored: %s", len(items), workspace, exc)
                result = SpanExportResult.FAILURE
        if calls:
            with self.redis.pipeline(transaction=False) as pipe:
                for record in calls:
                    _count_usage(pipe, record)
                pipe.execute()
        return result

    def shutdown(self) -> None:  # the Redis client belongs to the app
        return None


def _count_usage(pipe: redis.client.Pipeline, record: AuditRecord) -> None:
    connection = record.attributes.get("gateway.connection")
    if not connection:
        return
    key = usage_key(str(connection), int(record.started_at.timestamp() // 60))
    pipe.hincrby(key, "write" if record.attributes.get("gateway.write_id") else "read", 1)
    if record.attributes.get("http.response.status_code") == 429:
        pipe.hincrby(key, "throttled", 1)
    pipe.expire(key, USAGE_KEEP_SECONDS)


def read_audit(
    client: redis.Redis, *, write_id: str | None = None, ticket: str | None = None, limit: int = 200,
    pending: TracerProvider | None = None,
) -> list[AuditRecord]:
    """Audit records of one write or one ticket in time order, or the newest ones overall;
    ``pending``: a provider whose batched records (``AuditProcessor``) are stored first."""
    if pending is not None:
        pending.force_flush()
    if write_id:
        raw = client.lrange(f"audit:write:{write_id}", 0, limit - 1)
    elif ticket:
        raw = client.lrange(f"audit:ticket:{ticket}", 0, limit - 1)
    else:
        raw = list(reversed(client.lrange(AUDIT_ALL, 0, limit - 1)))
    return [_decoder.decode(r) for r in raw]


class AuditProcessor(SpanProcessor):
    """Audits each span as it ends, except the API's request spans (``SpanKind.SERVER``, one per
    request, ended on the event loop): those go in batches from a background thread, every
    ``BATCH_DELAY_MS``, so a request neither waits for nor pays a round trip of its own. A
    vendor call's record, and a job's, is in Redis before the call returns; an API request's
    follows its answer by at most about ``BATCH_DELAY_MS`` (the write it accepted was stored
    before the answer). ``force_flush`` stores what is pending (the audit read-backs call it)."""

    BATCH_DELAY_MS = 50

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self._now = SimpleSpanProcessor(exporter)
        # Made with the first request span: worker processes have none, and no batching thread.
        self._batched: BatchSpanProcessor | None = None
        self._lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is not SpanKind.SERVER:
            self._now.on_end(span)
            return
        if self._batched is None:
            with self._lock:
                if self._batched is None:
                    self._batched = BatchSpanProcessor(self._exporter, schedule_delay_millis=self.BATCH_DELAY_MS,
                                                       max_export_batch_size=256)
        self._batched.on_end(span)

    def shutdown(self) -> None:
        if self._batched is not None:
            self._batched.shutdown()
        self._now.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._batched.force_flush(timeout_millis) if self._batched is not None else True


def exports_traces() -> bool:
    """Whether spans also go out over OTLP (``OTEL_EXPORTER_OTLP_ENDPOINT`` is set)."""
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def build_tracer_provider(
    client: redis.Redis, redactor: Redactor, service: str, *, keep_records: int = KEEP_RECORDS
) -> TracerProvider:
    """A tracer provider that audits to Redis (each chain trimmed to ``keep_records``, 0: keep
    all), and to OTLP when the endpoint is configured. Every span is recorded: the audit is made
    of them, so neither a caller's ``traceparent`` that asks for no sampling nor
    ``OTEL_TRACES_SAMPLER`` may drop one (with the SDK's default, a parent-based sampler, a
    caller could switch off the audit of its own writes)."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=ALWAYS_ON)
    provider.add_span_processor(AuditProcessor(RedisAuditExporter(client, redactor, keep_records=keep_records)))
    if exports_traces():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracer(provider: TracerProvider | None = None) -> trace.Tracer:
    """The gateway's tracer, from ``provider`` or the global one."""
    return (provider or trace.get_tracer_provider()).get_tracer("msp-gateway")
