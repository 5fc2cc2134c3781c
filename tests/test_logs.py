"""``GATEWAY_LOG_FORMAT=json``: one JSON object per line with trace and span ids, the write id
and connection where there is one, and never a configured secret."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway import logs
from gateway.embedded_redis import EmbeddedRedis
from gateway.redact import install_log_redaction
from gateway.testing.conformance import Env
from gateway.testing.harness import ALL_SCOPES, connection_config, to_toml, workspace_config
from gateway.testing.simulator import Faults


def secrets_of(env: Env) -> list[str]:
    sim = env.sim.demo_connection(env.server.base_url)
    return [str(v) for v in sim["secrets"].values()] + [sim["webhook_secret"]]


def test_a_worker_logs_a_dead_letter_as_one_json_line_with_its_ids(
    cw: Env, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    conn = connection_config("conf", cw.sim.demo_connection(cw.server.base_url))
    tables = {"gateway": {"durability": "everysec"},  # the session's test Redis fsyncs once a second
              "workspaces": [workspace_config("conformance", [conn], {cw.key: ALL_SCOPES})]}
    config.write_text(to_toml(tables))
    ticket = cw.sim.sample_ticket_id()
    cw.sim.set_faults(Faults(error_rate=1.0, error_status=400, methods=["POST"]))
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "will be refused"}).json()["write_id"]

    env = {**os.environ, "REDIS_URL": redis_server.url, "GATEWAY_LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "worker", "--burst"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert cw.write(write_id)["status"] == "dead"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    dead = [e for e in entries if "dead-lettered" in e["message"]]
    assert len(dead) == 1, done.stderr
    entry = dead[0]
    assert entry["write_id"] == write_id and entry["connection"] == "conf"
    assert entry["level"] == "warning" and entry["logger"] == "gateway.jobs"
    # The ids lead to the write's audit records: the line was logged in the write job's span.
    audit = cw.get("/v1/admin/audit", params={"write_id": write_id}).json()
    job = next(r for r in audit if r["kind"] == "write_job")
    assert (entry["trace_id"], entry["span_id"]) == (job["trace_id"], job["span_id"])
    for secret in secrets_of(cw):
        assert secret not in done.stderr + done.stdout


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_gateway", False)]:
        root.removeHandler(handler)


def test_secrets_in_a_message_or_a_traceback_never_reach_the_json_line(
    cw: Env, json_logs: io.StringIO
) -> None:
    install_log_redaction(cw.gw.redactor)
    secret = secrets_of(cw)[1]
    log = logging.getLogger("gateway.test")
    attributes = {"gateway.write_id": "w_123", "gateway.connection": "conf"}
    with cw.gw.tracer.start_as_current_span("write reply", attributes=attributes) as span:
        log.warning("vendor said: bad key %s", secret)
        try:
            raise RuntimeError(f"auth failed with {secret}")
        except RuntimeError:
            log.exception("call failed")
    log.warning("outside any write", extra={"connection": "conf"})
    out = json_logs.getvalue()
    assert secret not in out
    first, second, third = (json.loads(line) for line in out.splitlines())
    assert first["message"] == "vendor said: bad key [redacted]"
    assert "[redacted]" in second["exception"] and "RuntimeError" in second["exception"]
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert first["span_id"] == format(span.get_span_context().span_id, "016x")
    assert first["write_id"] == second["write_id"] == "w_123" and first["connection"] == "conf"
    assert "trace_id" not in third and "write_id" not in third and third["connection"] == "conf"
