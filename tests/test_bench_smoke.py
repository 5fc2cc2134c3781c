"""The benchmark kit measures what it says: its load generator, its vendor tap, its report lines.

The whole quick benchmark (``python -m bench --quick``) runs in the slow suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from bench.bare_app import create_bare_app
from bench.load import LoadSpec, http_post, start_load
from bench.rig import Rig
from bench.report import Figure
from bench.tap import VendorTap
from gateway.testing.simulator import serve_asgi_in_thread

REPO = Path(__file__).resolve().parent.parent


def test_a_missed_target_is_marked_and_a_met_one_is_not() -> None:
    slow = Figure(name="api_cost", value=100.0, unit="req/s", baseline=1000.0, target=0.5, comparison=">=")
    fast = Figure(name="api_cost", value=800.0, unit="req/s", baseline=1000.0, target=0.5, comparison=">=")
    assert slow.line() == "api_cost: 100 req/s (baseline 1000 req/s, ratio 0.10, target ratio >= 0.50) MISS"
    assert fast.line().endswith("target ratio >= 0.50)")
    assert (slow.met, fast.met) == (False, True)


def test_a_figure_waiting_for_the_queue_says_so() -> None:
    line = Figure(name="queue_reads_p50", skipped="needs the unified queue").line()
    assert line == "queue_reads_p50: skipped (needs the unified queue)"


def test_the_load_generator_counts_every_answer_of_a_real_server() -> None:
    server = serve_asgi_in_thread(create_bare_app())
    try:
        body = b'{"text":"hello"}'
        requests = [http_post("127.0.0.1", server.port, f"/v1/tickets/cw:{i}/replies", body) for i in range(5)]
        result = start_load(LoadSpec("127.0.0.1", server.port, requests, concurrency=4, count=200)).result(timeout=60)
    finally:
        server.stop()
    assert result.statuses == {202: 200}
    assert result.completed == result.answered == 200
    assert len(result.latencies) == 200


def test_the_tap_sees_each_vendor_write_and_its_answer() -> None:
    from gateway_connectwise.simulator import ConnectWiseSimulator

    sim = ConnectWiseSimulator()
    sim.seed_demo()
    tap = VendorTap(sim.app)
    server = serve_asgi_in_thread(tap)
    try:
        conn = sim.demo_connection(server.base_url)
        ticket = sim.sample_ticket_id()
        from gateway_connectwise.auth import ConnectWiseAuth

        secrets = conn["secrets"]
        auth = ConnectWiseAuth(conn["settings"]["company_id"], secrets["public_key"], secrets["private_key"],
                               secrets["client_id"])
        tap.capture_next()
        with httpx.Client(base_url=conn["base_url"], auth=auth) as client:
            client.get(f"/service/tickets/{ticket}")
            answer = client.post(f"/service/tickets/{ticket}/notes", json={"text": "hi", "internalAnalysisFlag": True})
        assert tap.wait_for(1, timeout=5)
    finally:
        server.stop()
    assert answer.status_code == 201
    assert (tap.ok, tap.reads, dict(tap.statuses)) == (1, 1, {201: 1})
    captured = tap.captured(timeout=1)
    assert captured is not None and json.loads(captured.body)["text"] == "hi"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_quick_benchmark_prints_every_figure_and_writes_its_results(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    names = {f["name"] for f in results["figures"]}
    assert {"rate_limit_utilisation", "rate_limit_429s", "isolation", "write_overhead_p50", "write_overhead_p99",
            "api_cost", "memory_api", "memory_worker", "audit_verify"} <= names
    assert not [f["line"] for f in results["figures"] if f["error"]]
    for figure in results["figures"]:
        assert figure["line"] in run.stdout
        if not figure["skipped"]:
            assert "target" in figure["line"]
    assert results["machine"]["nproc"] >= 1


@pytest.fixture
def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    """A benchmark rig with only its Redis, started as figure runs start it (AOF on)."""
    monkeypatch.delenv("REDIS_URL", raising=False)  # the rig sets it; the next tests get it back
    rig = Rig(tmp_path)
    rig.start_redis()
    yield rig
    rig.close()


def test_figure_4_rounds_share_no_cpu_with_an_aof_rewrite_and_say_what_they_appended(rig: Rig) -> None:
    client = rig.redis
    assert client is not None
    client.set("before", os.urandom(50_000))  # random: the rewrite compresses
    setting = "auto-aof-rewrite-percentage"
    assert client.config_get(setting)[setting] == "100"
    with rig.aof_rewrites_held() as appended:
        held = client.info("persistence")
        assert held["aof_base_size"] > 50_000, "the file was rewritten before the block"
        assert not held["aof_rewrite_in_progress"] and not held["aof_rewrite_scheduled"]
        assert client.config_get(setting)[setting] == "0"  # no rewrite of Redis's own meanwhile
        for i in range(100):
            client.set(f"during:{i}", "y" * 1000)
    assert client.config_get(setting)[setting] == "100"
    assert 100_000 <= appended["aof_bytes"] < 120_000


def test_memory_is_read_once_redis_has_freed_what_was_unlinked(rig: Rig) -> None:
    client = rig.redis
    assert client is not None
    empty = rig.settled_used_memory()
    for start in range(0, 200_000, 20_000):  # a sorted set that large is freed in the background
        client.zadd("big", {f"member-{i}": i for i in range(start, start + 20_000)})
    held = rig.settled_used_memory()
    assert held - empty > 10_000_000
    client.unlink("big")
    freed = held - rig.settled_used_memory()
    assert freed > 0.95 * (held - empty)
    assert int(client.info("memory")["lazyfree_pending_objects"]) == 0


def test_the_audit_figure_verifies_a_seeded_chain_against_hashing_it(redis_client: redis.Redis) -> None:
    from bench import fig_audit
    from gateway import audit_chain

    figure = fig_audit.measure(redis_client, 2000)
    assert figure.error is None and figure.details["records"] == 2000
    assert figure.value and figure.baseline and figure.ratio
    assert figure.line().startswith("audit_verify: ")
    assert redis_client.zcard(audit_chain.chain_key(fig_audit.WORKSPACE)) == 0  # it cleans up


def test_the_store_profile_prints_each_query_of_the_mix_with_its_time_in_redis(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.profile_store import main

    main(["--tickets", "600", "--calls", "3", "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert "600 tickets loaded" in lines[0] and "bytes a ticket" in lines[0]
    labels = ["one category", "another category, page 2", "one connection and category", "one customer",
              "two categories, page 3", "text", "vendor and text"]
    rows = {line[:30].strip(): line[30:].split() for line in lines[2:]}
    assert sorted(rows) == sorted(labels)
    for label in labels:
        script_us = rows[label][0]
        assert script_us.endswith("us") and int(script_us[:-2]) > 0  # the script ran inside Redis
        assert "mget" in " ".join(rows[label])  # and read the page's records
