"""Chaos: writes across ConnectWise, Autotask and HaloPSA while the vendors fail, workers are
SIGKILLed and Redis restarts. Counted at the simulators: every accepted write has exactly one
effect or sits in dead letters with its cause; none lost, none doubled; once the faults stop,
every dead letter retried through the admin API lands once.

``make chaos`` runs the 2,000-write run (slow); ``make test`` runs a 60-write slice with one
kill and no Redis restart.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis

from gateway import jobs
from gateway.core import Gateway
from gateway.embedded_redis import EmbeddedRedis
from gateway.models import TicketQuery
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from
from gateway.testing.simulator import Faults
from gateway.writes import WriteRecord

from reliability_kit import (
    Fleet,
    Planned,
    SimHandle,
    count_effects,
    expected_status_sets,
    gateway_tables,
    group_by_ticket,
    last_status_by_ticket,
    secrets_of,
    serve_psas,
    status_sets,
    submit,
    write_config,
)

TIMEOUT_SECONDS = 1.0  # the gateway's client timeout per vendor call (short on purpose)
KIND_WEIGHTS = {"reply": 30, "note": 22, "status": 15, "time_entry": 15, "create": 10, "reply_status": 8}
OPEN_CATEGORIES = {"new", "in_progress", "awaiting_customer"}


def chaos_faults(seed: int) -> Faults:
    """The issue's fault mix, on every request to the vendor routes."""
    return Faults(
        error_rate=0.10, error_status=503,
        throttle_rate=0.10, retry_after=1,
        drop_after_commit_rate=0.05,
        reset_rate=0.05,
        slow_rate=0.02, slow_seconds=TIMEOUT_SECONDS + 1.0,
        seed=seed,
    )


@dataclass
class ChaosRun:
    writes: int
    workers: int
    kill_every: float | None  # seconds between SIGKILLs; None: one kill mid-run
    restart_redis: bool
    deadline: float  # seconds for the faulty phase to settle
    extra_sweeper: float | None = None  # staleness for a test-side sweeper (fast slice only)
    tickets_per_psa: int = 8
    seed: int = 2026
    # Few attempts, so that some writes exhaust them under the faults and the dead-letter
    # retry is exercised (the default is 8).
    max_attempts: int = 3


# --------------------------------------------------------------------------- planning


def _plan(gw: Gateway, api: httpx.Client, headers: dict[str, str], handles: list[SimHandle], run: ChaosRun, tag: str) -> list[Planned]:
    rng = random.Random(run.seed)
    targets: list[tuple[SimHandle, str, list[str]]] = []
    current: dict[tuple[str, str], str] = {}
    for h in handles:
        page = gw.call(h.connection, "gateway_ticket_list", query=TicketQuery(open_only=True, page_size=50))
        ids = [t.vendor_id for t in page.tickets][: run.tickets_per_psa]
        assert ids, f"{h.connection}: no open tickets"
        for ticket in ids:
            statuses = api.get(f"/v1/tickets/{h.connection}:{ticket}/statuses", headers=headers)
            assert statuses.status_code == 200, statuses.text
            usable = [s["id"] for s in statuses.json() if s.get("category") in OPEN_CATEGORIES]
            targets.append((h, ticket, usable))
            current[(h.connection, ticket)] = h.sim.ticket_status_id(ticket)
    kinds = list(KIND_WEIGHTS)
    weights = [KIND_WEIGHTS[k] for k in kinds]
    planned: list[Planned] = []
    for i in range(run.writes):
        h, ticket, usable = targets[i % len(targets)]
        kind = rng.choices(kinds, weights)[0]
        others = [s for s in usable if s != current[(h.connection, ticket)]]
        if kind in {"status", "reply_status"} and not others:
            kind = "reply"
        marker = f"[chaos-{tag}-{i}]"
        key = f"{tag}-{i}"
        ref = f"{h.connection}:{ticket}"
        if kind == "create":
            body: dict[str, Any] = {"connection": h.connection, "summary": f"{marker} new ticket",
                                    "fields": h.sim.minimal_create_fields()}
            planned.append(Planned(marker, kind, h, "/v1/tickets", body, key))
            continue
        status_id = None
        if kind in {"status", "reply_status"}:
            status_id = rng.choice(others)
            current[(h.connection, ticket)] = status_id
        if kind == "status":
            path, body = f"/v1/tickets/{ref}/status", {"status_id": status_id}
        elif kind == "time_entry":
            path = f"/v1/tickets/{ref}/time-entries"
            body = {"minutes": rng.randint(5, 120), "notes": f"{marker} worked", "started_at": "2026-01-05T14:00:00Z"}
        else:
            path = f"/v1/tickets/{ref}/replies"
            body = {"text": f"{marker} {kind}", "internal": kind == "note"}
            if status_id is not None:
                body["status_id"] = status_id
        planned.append(Planned(marker, kind, h, path, body, key, ticket=ticket, status_id=status_id))
    return planned


# --------------------------------------------------------------------------- observing


def _records(client: redis.Redis, ids: list[str]) -> dict[str, WriteRecord]:
    out: dict[str, WriteRecord] = {}
    decoder = msgspec.json.Decoder(WriteRecord)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for write_id, raw in zip(chunk, client.mget([f"write:{i}" for i in chunk])):
            if raw:
                out[write_id] = decoder.decode(raw)
    return out


def _wait_terminal(client: redis.Redis, ids: list[str], deadline: float, tick: Any = None) -> dict[str, WriteRecord]:
    records: dict[str, WriteRecord] = {}
    last_report = time.monotonic()
    while True:
        try:
            records = _records(client, ids)
            if len(records) == len(ids) and all(r.terminal for r in records.values()):
                return records
        except redis.RedisError:
            pass
        if time.monotonic() - last_report > 30:
            last_report = time.monotonic()
            states = Counter(r.status for r in records.values())
            print(f"  chaos: {dict(states)} of {len(ids)}", flush=True)
        if time.monotonic() > deadline:
            return records
        if tick is not None:
            tick()
        time.sleep(0.5)


class Chaos(threading.Thread):
    """SIGKILLs a worker every few seconds (or once), restarts Redis once at 40 % submitted,
    and (fast slice only) sweeps from the test process with a short staleness."""

    def __init__(self, fleet: Fleet, server: EmbeddedRedis, run: ChaosRun, progress: Any, sweeper_gw: Gateway | None) -> None:
        super().__init__(daemon=True, name="chaos")
        self.fleet, self.server, self.run_, self.progress, self.sweeper_gw = fleet, server, run, progress, sweeper_gw
        self.stopping = threading.Event()
        self.redis_restarts = 0
        self.rng = random.Random(run.seed + 1)
        self.errors: list[str] = []

    def run(self) -> None:
        last_kill = time.monotonic()
        killed_once = False
        while not self.stopping.wait(0.25):
            try:
                self.fleet.revive_crashed()
                if self.run_.kill_every is not None and time.monotonic() - last_kill >= self.run_.kill_every:
                    self.fleet.kill_worker(self.rng.randrange(self.run_.workers))
                    last_kill = time.monotonic()
                elif self.run_.kill_every is None and not killed_once and self.progress() >= 0.5:
                    time.sleep(0.5)  # let jobs be mid-flight
                    self.fleet.kill_worker(self.rng.randrange(self.run_.workers))
                    killed_once = True
                if self.run_.restart_redis and not self.redis_restarts and self.progress() >= 0.4:
                    self.server.restart()
                    self.redis_restarts += 1
                if self.sweeper_gw is not None and self.run_.extra_sweeper is not None:
                    jobs.sweep(self.sweeper_gw, older_than=self.run_.extra_sweeper)
            except Exception as exc:  # keep the chaos going; report at the end
                self.errors.append(repr(exc))


# --------------------------------------------------------------------------- the run


def run_chaos(tmp_path: Path, run: ChaosRun) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:6]
    server = EmbeddedRedis(tmp_path / "redis", aof=True).start()
    client = redis.Redis.from_url(server.url)
    handles = serve_psas()
    admin_key = new_api_key()
    tables = gateway_tables(handles, {admin_key: ALL_SCOPES}, timeout_seconds=TIMEOUT_SECONDS,
                            gateway={"max_attempts": run.max_attempts})
    config = write_config(tables, tmp_path / "gateway.toml")
    (tmp_path / "logs").mkdir()
    fleet = Fleet(config, server.url, tmp_path / "logs")
    local_gw = Gateway(settings_from(tables), client)  # planning, and the fast slice's extra sweeper
    sweeper_gw = local_gw if run.extra_sweeper is not None else None
    headers = {"Authorization": f"Bearer {admin_key}"}
    counts: dict[str, Any] = {"tag": tag}
    try:
        fleet.start_api()
        fleet.start_workers(run.workers)
        api = httpx.Client(base_url=fleet.api_url, timeout=10)
        planned = _plan(local_gw, api, headers, handles, run, tag)
        for n, h in enumerate(handles):
            h.sim.set_faults(chaos_faults(run.seed + n))

        # Submit: one loader thread per group of tickets, so each ticket's writes are sent
        # (and accepted) in plan order; creates spread over the loaders.
        loaders = 8
        lanes: list[list[Planned]] = [[] for _ in range(loaders)]
        for n, (_, group) in enumerate(sorted(group_by_ticket(planned).items(), key=lambda kv: str(kv[0]))):
            lanes[n % loaders].extend(group)
        for lane in lanes:
            lane.sort(key=lambda p: int(p.key.rsplit("-", 1)[1]))
        done = Counter()
        lock = threading.Lock()

        def load(lane: list[Planned]) -> None:
            with httpx.Client(base_url=fleet.api_url, timeout=10) as c:
                for p in lane:
                    submit(c, p, headers)
                    with lock:
                        done["n"] += 1

        chaos = Chaos(fleet, server, run, lambda: done["n"] / len(planned), sweeper_gw)
        chaos.start()
        started = time.monotonic()
        with ThreadPoolExecutor(loaders) as pool:
            list(pool.map(load, lanes))
        counts["submit_seconds"] = round(time.monotonic() - started, 1)
        accepted = [p for p in planned if p.write_id]
        refused = [p for p in planned if not p.write_id]
        ids = [p.write_id for p in accepted]
        kill_until = time.monotonic() + (20 if run.kill_every else 0)

        def tick() -> None:
            if time.monotonic() > kill_until:
                chaos.stopping.set()

        records = _wait_terminal(client, ids, time.monotonic() + run.deadline, tick)
        chaos.stopping.set()
        chaos.join(timeout=30)
        counts["settle_seconds"] = round(time.monotonic() - started, 1)

        # -- first count: with the faults still on ------------------------------------------
        effects = count_effects(accepted)
        by_id = {p.write_id: p for p in accepted}
        unfinished = [i for i in ids if i not in records or not records[i].terminal]
        succeeded = [i for i in ids if i in records and records[i].status == "succeeded"]
        dead = [i for i in ids if i in records and records[i].status == "dead"]
        marker_writes = [i for i in succeeded if by_id[i].kind != "status"]
        lost = [i for i in marker_writes if effects[by_id[i].marker] == 0]
        doubled = [i for i in ids if by_id[i].kind != "status" and effects.get(by_id[i].marker, 0) > 1]
        dead_without_cause = [i for i in dead if not records[i].error or not any(a.error for a in records[i].attempts)]
        dead_landed = [i for i in dead if by_id[i].kind != "status" and effects.get(by_id[i].marker, 0) == 1]
        stats = {h.connection: dict(h.sim.stats) for h in handles}
        counts.update(
            planned=len(planned), accepted=len(accepted), refused=len(refused),
            submit_retries=sum(p.submit_tries - 1 for p in planned),
            kinds=dict(Counter(p.kind for p in accepted)),
            succeeded=len(succeeded), dead=len(dead), unfinished=len(unfinished),
            lost=len(lost), doubled=len(doubled), dead_without_cause=len(dead_without_cause),
            dead_already_landed=len(dead_landed),
            worker_kills=fleet.kills, worker_crashes=fleet.crashes, crashed=fleet.crashed[:5],
            redis_restarts=chaos.redis_restarts,
            faults_at_vendors={k: sum(s.get(k, 0) for s in stats.values()) for k in
                               ("requests", "errors", "throttled", "dropped_after_commit", "reset", "slow")},
            chaos_errors=chaos.errors[:5],
        )
        assert not refused, f"writes never accepted: {[(p.kind, p.refused) for p in refused[:5]]}"
        assert not unfinished, f"{len(unfinished)} writes never finished (lost in the pipeline): {unfinished[:5]}"
        assert not lost, f"lost: {[(by_id[i].marker, records[i].status) for i in lost[:5]]}"
        assert not doubled, f"doubled: {[by_id[i].marker for i in doubled[:5]]}"
        assert not dead_without_cause, f"dead letters without a cause: {dead_without_cause[:5]}"

        # -- faults off: retry every dead letter through the admin API ---------------------------
        for h in handles:
            h.sim.set_faults(Faults())
        listed: list[dict[str, Any]] = []
        while True:
            page = api.get("/v1/admin/dead-letters", params={"limit": 500, "offset": len(listed)}, headers=headers)
            assert page.status_code == 200, page.text
            listed += page.json()
            if len(page.json()) < 500:
                break
        assert sorted(d["write"]["id"] for d in listed) == sorted(dead)
        for letter in listed:
            assert letter["write"]["error"], letter
            retried = api.post(f"/v1/admin/dead-letters/{letter['write']['id']}/retry", headers=headers)
            assert retried.status_code == 202, retried.text
        final = _wait_terminal(client, ids, time.monotonic() + 300)
        effects = count_effects(accepted)
        not_succeeded = [i for i in ids if final.get(i) is None or final[i].status != "succeeded"]
        wrong = {by_id[i].marker: effects[by_id[i].marker] for i in ids
                 if by_id[i].kind != "status" and effects[by_id[i].marker] != 1}
        committed = status_sets(handles)
        expected = expected_status_sets(accepted)
        # Writes to one ticket apply in acceptance order, but a dead letter leaves its chain
        # (so one stuck write does not block the ticket) and a retried one applies after the
        # ticket's later writes. A status write whose target the ticket already has (because
        # an earlier one dead-lettered) is rightly found by reconciliation and not sent. So a
        # ticket with d dead-lettered status writes may show up to 2d fewer status calls, or d
        # more (a retried write whose first call had landed); tickets without any, exactly.
        dead_status = Counter((by_id[i].handle.connection, by_id[i].ticket) for i in dead if by_id[i].changes_status)
        # A retried dead letter's status lands only if no status write accepted after it has
        # landed (an operator's retry never moves a ticket back): every ticket ends in the status
        # of its last accepted status write, dead-lettered and retried or not.
        final_expected = last_status_by_ticket(accepted)
        status_doubled = {k: (v, expected.get(k, 0)) for k, v in committed.items()
                          if v > expected.get(k, 0) + dead_status.get(k, 0)}
        status_missing = {k: (committed.get(k, 0), v) for k, v in expected.items()
                          if committed.get(k, 0) < v - 2 * dead_status.get(k, 0)}
        sims = {h.connection: h.sim for h in handles}
        final_status_wrong = {k: (want, sims[k[0]].ticket_status_id(k[1])) for k, want in final_expected.items()
                              if sims[k[0]].ticket_status_id(k[1]) != want}
        counts["status_calls_off_on_tickets_with_dead_letters"] = {
            f"{k[0]}:{k[1]}": f"{committed.get(k, 0)}/{v} ({dead_status[k]} dead)" for k, v in expected.items()
            if committed.get(k, 0) != v}
        counts.update(
            dead_letters_retried=len(listed),
            after_retry_succeeded=len(ids) - len(not_succeeded),
            exactly_once=sum(1 for i in ids if by_id[i].kind == "status" or effects[by_id[i].marker] == 1),
            status_calls_committed=sum(committed.values()), status_changes_expected=sum(expected.values()),
            final_status_wrong=len(final_status_wrong),
        )
        assert not not_succeeded, f"after retry, not succeeded: {[(i, final.get(i) and final[i].status) for i in not_succeeded[:5]]}"
        assert not wrong, f"effects not exactly once after retry: {list(wrong.items())[:10]}"
        assert not status_doubled, f"status set more often than written: {status_doubled}"
        assert not status_missing, f"status changes missing at the vendor: {status_missing}"
        assert not final_status_wrong, f"tickets not in their last written status: {final_status_wrong}"

        # -- nothing secret in any process output ------------------------------------------------
        fleet.stop()
        output = fleet.outputs()
        leaked = [s for s in secrets_of(handles) if s in output]
        counts["output_bytes_grepped"] = len(output)
        assert not leaked, "a configured secret appears in the gateway's process output"
        return counts
    finally:
        print("\nCHAOS COUNTS " + msgspec.json.encode(counts).decode())
        fleet.stop()
        local_gw.close()
        for h in handles:
            h.stop()
        client.close()
        server.stop()


@pytest.mark.timeout(600)
def test_chaos_slice_sixty_writes_one_kill_nothing_lost_or_doubled(tmp_path: Path) -> None:
    counts = run_chaos(tmp_path, ChaosRun(writes=60, workers=3, kill_every=None, restart_redis=False,
                                          deadline=120, extra_sweeper=3.0, tickets_per_psa=4))
    assert counts["worker_kills"] == 1
    assert counts["lost"] == counts["doubled"] == 0


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_chaos_two_thousand_writes_kills_and_a_redis_restart_nothing_lost_or_doubled(tmp_path: Path) -> None:
    counts = run_chaos(tmp_path, ChaosRun(writes=2000, workers=4, kill_every=4.0, restart_redis=True,
                                          deadline=20 * 60))
    assert counts["redis_restarts"] == 1 and counts["worker_kills"] >= 5
    assert counts["lost"] == counts["doubled"] == 0
