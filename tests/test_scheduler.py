"""The fair scheduler, on a real Redis: who a free worker serves next."""

from __future__ import annotations

import time
from collections import Counter

import redis

from gateway.scheduler import Scheduler


def _picks(sched: Scheduler, n: int) -> list[str]:
    out = []
    for _ in range(n):
        picked = sched.pick()
        if picked.run_id is None:
            break
        out.append(picked.run_id)
        sched.finish(picked.connection or "", picked.run_id)
    return out


def _push_many(redis_client: redis.Redis, sched: Scheduler, conn: str, ws: str, count: int, cap: int = 2) -> None:
    with redis_client.pipeline(transaction=False) as pipe:
        for i in range(count):
            sched.push(conn, ws, cap, f"{conn}-{i}", client=pipe)
        pipe.execute()


def test_a_run_on_an_idle_connection_goes_next_whatever_another_connection_holds(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    _push_many(redis_client, sched, "busy", "ws1", 10_000)
    assert _picks(sched, 3) == ["busy-0", "busy-1", "busy-2"]
    sched.push("idle", "ws2", 2, "idle-0")
    assert _picks(sched, 2)[0] == "idle-0"


def test_a_run_on_an_idle_connection_of_the_same_workspace_goes_next(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    _push_many(redis_client, sched, "busy", "ws1", 10_000)
    _picks(sched, 50)
    sched.push("quiet", "ws1", 2, "quiet-0")
    assert "quiet-0" in _picks(sched, 2)


def test_workspaces_share_workers_equally_then_their_connections(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    for conn in ("a1", "a2", "a3"):  # workspace a has three busy connections
        _push_many(redis_client, sched, conn, "a", 100)
    _push_many(redis_client, sched, "b1", "b", 100)
    served = Counter(run.split("-")[0] for run in _picks(sched, 120))
    assert served["b1"] == 60  # half of all picks for workspace b
    assert served["a1"] == served["a2"] == served["a3"] == 20


def test_a_parked_connection_holds_no_worker_and_resumes_with_its_waiting_run_first(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    _push_many(redis_client, sched, "paused", "ws1", 5)
    _push_many(redis_client, sched, "other", "ws2", 3)
    first = sched.pick()
    assert first.run_id == "paused-0"
    sched.park("paused", time.time() + 0.3, first.run_id, requeue="paused-0-again")
    assert _picks(sched, 10) == ["other-0", "other-1", "other-2"]  # nothing of the parked one
    idle = sched.pick()
    assert idle.run_id is None and 0 < (idle.wake_in or 0) <= 0.3
    assert sched.load("paused").parked_for is not None
    time.sleep(0.35)
    assert _picks(sched, 2) == ["paused-0-again", "paused-1"]


def test_a_connection_runs_at_most_its_cap_at_once(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    _push_many(redis_client, sched, "slow", "ws1", 10, cap=2)
    _push_many(redis_client, sched, "fast", "ws2", 10, cap=2)
    held = []
    for _ in range(6):  # a hanging vendor: slow's runs never finish
        picked = sched.pick()
        assert picked.run_id is not None
        if picked.connection == "slow":
            held.append(picked.run_id)
        else:
            sched.finish("fast", picked.run_id)
    assert len(held) == 2
    assert sched.load("slow").running == 2
    sched.finish("slow", held[0])
    assert any(run.startswith("slow") for run in _picks(sched, 3))


def test_a_run_whose_worker_died_frees_its_slot_when_the_lease_ends(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client, lease_seconds=0.2)
    _push_many(redis_client, sched, "c", "ws1", 3, cap=1)
    assert sched.pick().run_id == "c-0"  # never finished: the worker was killed
    assert sched.pick().run_id is None
    time.sleep(0.25)
    assert sched.pick().run_id == "c-1"


def test_a_delayed_run_joins_the_front_of_its_connection_when_due(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    _push_many(redis_client, sched, "c", "ws1", 3)
    sched.defer("c", "ws1", 2, "retry", time.time() + 0.2)
    assert sched.load("c").delayed == 1
    assert sched.pick().run_id == "c-0"
    time.sleep(0.25)
    assert sched.pick().run_id == "retry"
    assert sched.load("c").delayed == 0


def test_a_push_rings_the_bell_for_a_blocked_worker(redis_client: redis.Redis) -> None:
    sched = Scheduler(redis_client)
    assert sched.wait_for_work(0.05, []) is None
    sched.push("c", "ws1", 1, "r1")
    assert sched.wait_for_work(1.0, []) is not None


def test_a_lease_its_worker_renews_keeps_the_slot_and_a_lease_left_alone_ends(redis_client: redis.Redis) -> None:
    """A living worker renews its runs' leases (a long vendor call keeps its slot); a killed one
    stops renewing, and its slot comes free after one lease, not after the job timeout."""
    sched = Scheduler(redis_client, lease_seconds=1.0)
    _push_many(redis_client, sched, "c", "ws1", 3, cap=1)
    assert sched.pick().run_id == "c-0"
    for _ in range(3):
        time.sleep(0.4)
        sched.renew("c", "c-0")
        assert sched.pick().run_id is None  # still running: 1.2 s in, on a 1 s lease
    time.sleep(1.1)  # renewals stopped: the worker is gone
    assert sched.pick().run_id == "c-1"
    sched.renew("c", "c-0")  # a late renewal does not take the freed slot back
    assert sched.load("c").running == 1
