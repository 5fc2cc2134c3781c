"""Audit spans: kept in Redis with secrets scrubbed, and sent over OTLP when configured."""

from __future__ import annotations

import http.server
import threading

import pytest
import redis

from gateway import audit
from gateway.redact import Redactor


def test_spans_with_a_gateway_kind_are_kept_and_scrubbed(redis_client: redis.Redis) -> None:
    provider = audit.build_tracer_provider(redis_client, Redactor(["topsecret-value"]), "test")
    tracer = audit.tracer(provider)
    with tracer.start_as_current_span("vendor call", attributes={
        "gateway.kind": "vendor_call", "gateway.write_id": "w_1", "gateway.ticket": "cw:1",
        "gateway.request_payload": '{"note": "topsecret-value"}',
    }):
        pass
    with tracer.start_as_current_span("framework only"):
        pass
    provider.shutdown()
    records = audit.read_audit(redis_client, write_id="w_1")
    assert [r.name for r in records] == ["vendor call"]
    assert "topsecret-value" not in str(records[0].attributes)
    assert audit.read_audit(redis_client, ticket="cw:1")[0].span_id == records[0].span_id
    assert [r.name for r in audit.read_audit(redis_client)] == ["vendor call"]


class _Collector(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        _Collector.paths.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_spans_also_go_out_over_otlp_when_the_endpoint_is_set(redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        provider = audit.build_tracer_provider(redis_client, Redactor(), "test")
        with audit.tracer(provider).start_as_current_span("exported", attributes={"gateway.kind": "vendor_call"}):
            pass
        provider.force_flush()
        provider.shutdown()
    finally:
        server.shutdown()
    assert "/v1/traces" in _Collector.paths
