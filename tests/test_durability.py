"""The ``durability`` setting: what a 202 promises when Redis crashes or its replicas lag."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator

from gateway import durability
from gateway.events import WriteAcceptedEvent
from gateway.embedded_redis import EmbeddedRedis
from gateway.errors import ConfigError
from gateway.testing.conformance import Env, build_env
from gateway.testing.harness import settings_from
from gateway.testing.simulator import Faults
from gateway.testing.workers import drain
from gateway.writes import Accepted


def env_on(client: redis.Redis, **gateway: object) -> Iterator[Env]:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    yield from build_env(sim, client, gateway=gateway)


def notes_with(env: Env, ticket: str, text: str) -> list[dict]:
    return [n for n in env.sim.ticket_notes(ticket) if text == n["text"]]


@pytest.fixture
def fsync_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server started as the gateway starts its embedded one under ``fsync``."""
    server = EmbeddedRedis(tmp_path / "redis", appendfsync=durability.appendfsync_for("fsync")).start()
    yield server
    server.stop()


def test_with_fsync_a_sigkill_of_redis_right_after_a_burst_of_202s_loses_none(fsync_server: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(fsync_server.url)
    envs = env_on(client, durability="fsync")
    env = next(envs)
    try:
        durability.check_server(client, env.gw.settings)  # the promise holds on this server
        ticket = env.sim.sample_ticket_id()
        accepted = []
        for i in range(60):
            answer = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": f"burst {i}"}, key=f"burst-{i}")
            assert answer.status_code == 202
            accepted.append(answer.json()["write_id"])
        fsync_server.kill()  # at once, no shutdown: what the last 202 promised must be on disk
        down = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "while down"})
        assert down.status_code == 503 and down.headers["Retry-After"] == "1"  # never a 500
        fsync_server.start()
        assert all(env.write(write_id)["status"] == "queued" for write_id in accepted)
        env.drain()
        for i in range(60):
            assert len(notes_with(env, ticket, f"burst {i}")) == 1
    finally:
        envs.close()


def test_fsync_is_refused_on_a_redis_that_fsyncs_once_a_second(redis_client: redis.Redis) -> None:
    settings = settings_from({"gateway": {"durability": "fsync"}})
    with pytest.raises(ConfigError, match="appendfsync always"):
        durability.check_server(redis_client, settings)
    durability.check_server(redis_client, settings_from({"gateway": {"durability": "everysec"}}))


def test_gateway_serve_stops_with_one_message_when_fsync_cannot_be_kept(redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\ndurability = "fsync"\n')
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", "--port", "1"],
        env={**os.environ, "REDIS_URL": redis_server.url}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "durability" in done.stderr and "appendfsync always" in done.stderr


# --------------------------------------------------------------------------- replicated


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    primary = EmbeddedRedis(tmp_path / "primary").start()
    replica = EmbeddedRedis(tmp_path / "replica", extra_args=["--replicaof", "127.0.0.1", str(primary.port)]).start()
    replica_client = redis.Redis.from_url(replica.url)
    deadline = time.monotonic() + 20
    while replica_client.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not connect"
        time.sleep(0.05)
    yield primary, replica
    if replica.process:
        os.kill(replica.process.pid, signal.SIGCONT)
    replica.stop()
    primary.stop()


@contextlib.contextmanager
def stalled(replica: EmbeddedRedis) -> Iterator[None]:
    """The replica stays connected but confirms nothing while inside."""
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)


def test_replicated_answers_202_only_once_the_replica_has_the_write_else_503_and_withdraws_it(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    primary, replica = primary_and_replica
    client = redis.Redis.from_url(primary.url)
    on_replica = redis.Redis.from_url(replica.url)
    envs = env_on(client, durability="replicated", replicas=1, replica_timeout_ms=200)
    env = next(envs)
    try:
        ticket = env.sim.sample_ticket_id()
        ok = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "replicated"})
        assert ok.status_code == 202
        assert on_replica.exists(f"write:{ok.json()['write_id']}")  # there before the 202

        writes_before = len(client.keys("write:*"))
        os.kill(replica.process.pid, signal.SIGSTOP)  # connected, but confirms nothing
        try:
            refused = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "lagging"}, key="lag-1")
            anonymous = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "no key"})
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        problem = refused.json()
        assert "0 of 1 Redis replica(s) confirmed" in problem["detail"] and "withdrawn" in problem["detail"]
        assert problem["extra"]["idempotency_key"] == "lag-1" and "Idempotency-Key: lag-1" in problem["action"]
        # Not half-accepted: no record, no dedup key, no place in the ticket's chain, no job.
        assert len(client.keys("write:*")) == writes_before
        assert not client.exists("dedup:conformance:lag-1")
        assert client.lrange(f"chain:conf:{ticket}", 0, -1) in ([], [ok.json()["write_id"].encode()])
        assert env.gw.queue.count <= 1
        # Announced only once the replicas had it: the withdrawn writes never were.
        announced = [e.write for e in env.gw.events.read("conformance", limit=100).events
                     if isinstance(e, WriteAcceptedEvent)]
        assert announced == [ok.json()["write_id"]]
        # A caller that sent no key is given the one the gateway stamped.
        assert anonymous.status_code == 503
        stamped = anonymous.json()["extra"]["idempotency_key"]
        assert stamped.startswith("gw-")

        again = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "lagging"}, key="lag-1")
        again_anonymous = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "no key"}, key=stamped)
        assert again.status_code == again_anonymous.status_code == 202
        env.drain()
        for text in ("replicated", "lagging", "no key"):
            assert len(notes_with(env, ticket, text)) == 1
    finally:
        envs.close()


def test_replicated_a_worker_whose_sending_mark_the_replicas_miss_tries_again_later(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    """Before a vendor call the worker waits for the replicas to have the step's sending mark;
    when they do not answer, nothing was sent: the write is retried, not dead-lettered."""
    primary, replica = primary_and_replica
    envs = env_on(redis.Redis.from_url(primary.url), durability="replicated", replicas=1, replica_timeout_ms=200)
    env = next(envs)
    try:
        ticket = env.sim.sample_ticket_id()
        ok = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "mark first"})
        assert ok.status_code == 202
        os.kill(replica.process.pid, signal.SIGSTOP)
        try:
            assert not drain(env.gw, timeout=1.0)
        finally:
            os.kill(replica.process.pid, signal.SIGCONT)
        held = env.write(ok.json()["write_id"])
        assert held["status"] == "queued", held
        assert {a["outcome"] for a in held["attempts"]} == {"not_replicated"}
        assert notes_with(env, ticket, "mark first") == []
        env.drain()
        assert env.write(ok.json()["write_id"])["status"] == "succeeded"
        assert len(notes_with(env, ticket, "mark first")) == 1
    finally:
        envs.close()


def test_settings_refuse_a_replica_count_below_one() -> None:
    with pytest.raises(ConfigError, match="gateway.replicas"):
        settings_from({"gateway": {"durability": "replicated", "replicas": 0}})


# --------------------------------------------------------------------------- Redis lost mid-run


def test_a_run_cut_off_by_a_redis_restart_is_handed_back_at_once_and_its_reply_lands_once(
    fsync_server: EmbeddedRedis,
) -> None:
    """Redis goes away while the vendor call is in flight: the reply lands, but the run can
    save nothing and dies holding the write's lock and its connection's slot. Once Redis is
    back, the worker hands the run back (lock, slot, the write queued again) before anything
    else: the write is reconciled now, not when its lock and lease run out minutes later."""
    client = redis.Redis.from_url(fsync_server.url)
    envs = env_on(client, durability="fsync")
    env = next(envs)
    try:
        ticket = env.sim.sample_ticket_id()
        write_id = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "cut off"}).json()["write_id"]
        env.sim.set_faults(Faults(latency_ms=1500))  # the call is slow: Redis dies during it
        watcher = redis.Redis.from_url(fsync_server.url)
        requests_before = env.sim.stats["requests"]

        def kill_redis_once_sending() -> None:
            # Once the step is marked sending and the vendor has the call (the simulator counts
            # it before its latency): killed any earlier, the run could lose Redis before the
            # call, and the write would rightly be sent, not reconciled.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                raw = watcher.get(f"write:{write_id}")
                if (raw and json.loads(raw)["steps"][0]["state"] == "sending"
                        and env.sim.stats["requests"] > requests_before):
                    fsync_server.kill()
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_redis_once_sending)
        killer.start()
        with contextlib.suppress(redis.exceptions.ConnectionError):
            drain(env.gw, timeout=5)
        killer.join()
        assert not fsync_server.process or fsync_server.process.poll() is not None, "Redis was never killed"
        fsync_server.start()
        env.sim.set_faults(Faults())
        assert client.exists(f"lock:write:{write_id}")  # the dead run's lock came back with Redis

        assert drain(env.gw, timeout=10), "the write waited for its dead run's lock"
        held = env.write(write_id)
        assert held["status"] == "succeeded"
        assert held["attempts"][-1]["outcome"] == "reconciled"  # found at the vendor, not sent again
        assert len(notes_with(env, ticket, "cut off")) == 1
        assert env.gw.scheduler.load(env.connection).running == 0
    finally:
        envs.close()


def test_replicated_a_withdrawn_write_whose_run_was_queued_leaves_its_connection_free(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    """The first run of a write the replicas did not confirm is already queued when the write is
    withdrawn: that run finds no write, and must still give its connection's slot back (with one
    slot per connection, the connection's later writes would otherwise never run)."""
    primary, replica = primary_and_replica
    envs = env_on(redis.Redis.from_url(primary.url), durability="replicated", replicas=1, replica_timeout_ms=200,
                  writes_per_connection=1)
    env = next(envs)
    try:
        ticket = env.sim.sample_ticket_id()
        with stalled(replica):
            refused = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "withdrawn"})
        assert refused.status_code == 503 and refused.json()["extra"]["withdrawn"] is True
        assert env.gw.scheduler.load(env.connection).queued == 1  # its first run, still queued

        later = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "after it"})
        assert later.status_code == 202
        env.drain(timeout=10)
        assert env.write(later.json()["write_id"])["status"] == "succeeded"
        assert len(notes_with(env, ticket, "after it")) == 1 and notes_with(env, ticket, "withdrawn") == []
        assert env.gw.scheduler.load(env.connection).running == 0
    finally:
        envs.close()


def test_replicated_a_write_a_worker_finished_before_the_wait_gave_up_is_not_withdrawn(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    """The API's WAIT gives up just as the replica catches up, and a worker has already sent and
    finished the write: withdrawing it now would let the caller's resend make a second reply."""
    primary, _ = primary_and_replica
    envs = env_on(redis.Redis.from_url(primary.url), durability="replicated", replicas=1, replica_timeout_ms=200)
    env = next(envs)
    try:
        ticket = env.sim.sample_ticket_id()
        body = {"text": "finished first"}
        write_id = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", body, key="race-1").json()["write_id"]
        as_accepted = env.gw.writes.get(write_id)
        env.drain()
        with pytest.raises(durability.NotReplicated) as refused:
            durability.withdraw_unconfirmed(env.gw, as_accepted, Accepted(write_id, new=True, head=True, same_body=True), 0)
        assert refused.value.withdrawn is False
        resent = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", body, key="race-1")
        assert resent.status_code == 202 and resent.json()["write_id"] == write_id
        env.drain()
        assert len(notes_with(env, ticket, "finished first")) == 1
    finally:
        envs.close()


def test_replicated_a_resent_key_is_answered_202_only_once_the_replicas_confirm(
    primary_and_replica: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    """A resend finds its write by key; while the replicas confirm nothing, it is a 503 like any
    write (the write may be on the primary only), and a 202 with the same write once they do."""
    primary, replica = primary_and_replica
    envs = env_on(redis.Redis.from_url(primary.url), durability="replicated", replicas=1, replica_timeout_ms=200)
    env = next(envs)
    try:
        ticket = env.sim.sample_ticket_id()
        body = {"text": "resent"}
        first = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", body, key="resend-1")
        assert first.status_code == 202
        with stalled(replica):
            held_back = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", body, key="resend-1")
        assert held_back.status_code == 503 and held_back.json()["extra"]["withdrawn"] is False
        again = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", body, key="resend-1")
        assert again.status_code == 202 and again.json()["write_id"] == first.json()["write_id"]
        env.drain()
        assert len(notes_with(env, ticket, "resent")) == 1
    finally:
        envs.close()
