"""Process logging: plain text by default, one JSON object per line with
``GATEWAY_LOG_FORMAT=json``.

A JSON line carries the time, level, logger and message, the trace and span ids of the span the
line was logged in (so a line leads to its audit records), and the write id and connection
where there is one: from ``extra={"write_id": ..., "connection": ...}``, else from the current
span's ``gateway.*`` attributes (a write job's span and a vendor call's span carry both), else
from the call context. Secrets are scrubbed by ``gateway.redact.RedactingFilter``, which the
gateway attaches to every handler configured here, exception text included.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import IO, Any

from opentelemetry import trace

from gateway import context

FORMAT_ENV = "GATEWAY_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record, with trace, span, write and connection ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span()
        span_context = span.get_span_context()
        attributes: Any = getattr(span, "attributes", None) or {}
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        write_id = getattr(record, "write_id", None) or attributes.get("gateway.write_id") or context.get().write_id
        connection = getattr(record, "connection", None) or attributes.get("gateway.connection")
        if write_id:
            entry["write_id"] = write_id
        if connection:
            entry["connection"] = connection
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def configure(log_format: str | None = None, *, level: int = logging.WARNING, stream: IO[str] | None = None) -> None:
    """Give the root logger one handler (stderr, or ``stream``) in the chosen format (``text``
    or ``json``; default ``GATEWAY_LOG_FORMAT``). Safe to call again: the handler is replaced."""
    log_format = (log_format or os.environ.get(FORMAT_ENV) or "text").lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLogFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_gateway", False)]:
        root.removeHandler(old)
    handler._gateway = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def ensure_configured() -> None:
    """``configure()`` unless this process already did (spawned worker processes)."""
    if not any(getattr(h, "_gateway", False) for h in logging.getLogger().handlers):
        configure()


def is_json() -> bool:
    return (os.environ.get(FORMAT_ENV) or "").lower() == "json"
