"""Autotask: writes queued against one database stay under its documented limits on their
own: no 429 for the hourly threshold, no "Thread Threshold Exceeded", no added latency, with
four worker processes draining in parallel. ``make test`` runs 60 writes; the issue's 1,000
are marked slow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from gateway_autotask.simulator import AutotaskSimulator
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.embedded_redis import EmbeddedRedis
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, to_toml, workspace_config

# A database whose hourly threshold is 4,000 (scaled down from 10,000 so the test is short);
# the connection is configured to match, and keeps its default headroom and 3 calls in flight.
THRESHOLD = 4000


def run(count: int, redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    sim = AutotaskSimulator()
    sim.seed_demo()
    sim.hourly_threshold = THRESHOLD
    server = sim.serve_in_thread()
    key = new_api_key()
    conn = connection_config("at", sim.demo_connection(server.base_url),
                             rate_limit=[{"requests": THRESHOLD, "per_seconds": 3600.0}])
    # The session's test Redis fsyncs once a second (tests/test_durability.py covers "fsync").
    tables = {"gateway": {"durability": "everysec"}, "workspaces": [workspace_config("msp", [conn], {key: ALL_SCOPES})]}
    config = tmp_path / "gateway.toml"
    config.write_text(to_toml(tables))
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    gw = Gateway(settings_from(tables), client)
    env = {**os.environ, "REDIS_URL": redis_server.url}
    workers = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "worker", "--processes", "4"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        with TestClient(create_app(gw)) as api:
            headers = {"Authorization": f"Bearer {key}"}
            with sim.lock:
                tickets = [str(t["id"]) for t in sim.store.records["Tickets"].values() if t["status"] != 5][:10]
            ids = []
            for i in range(count):
                response = api.post(f"/v1/tickets/at:{tickets[i % len(tickets)]}/replies",
                                    json={"text": f"budget {i}"}, headers=headers)
                assert response.status_code == 202, response.text
                ids.append(response.json()["write_id"])
            deadline = time.monotonic() + 600
            while gw.writes.active_count() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert gw.writes.active_count() == 0, "writes did not finish"
            statuses = Counter(gw.writes.get(w).status for w in ids)
        assert statuses == {"succeeded": count}
        with sim.lock:
            notes = Counter(n["description"] for n in sim.store.records["TicketNotes"].values()
                            if str(n.get("description", "")).startswith("budget "))
        assert len(notes) == count and max(notes.values()) == 1
        assert sim.stats["threshold_exceeded"] == 0
        assert sim.stats["thread_threshold_exceeded"] == 0
        assert sim.stats["latency_50"] == sim.stats["latency_75"] == 0
    finally:
        os.killpg(workers.pid, signal.SIGTERM)
        workers.wait(timeout=30)
        gw.close()
        server.stop()


def test_60_autotask_writes_from_four_workers_stay_under_every_limit(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    run(60, redis_server, tmp_path)


@pytest.mark.slow
def test_1000_autotask_writes_from_four_workers_stay_under_every_limit(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    run(1000, redis_server, tmp_path)
