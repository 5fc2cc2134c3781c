"""Fair scheduling through the API, the runner and the ConnectWise simulator: a write that can
never land releases its ticket at once, values that could never land are refused at accept, and
a paused connection waits without holding workers or spinning."""

from __future__ import annotations

import pytest

from gateway import intake
from gateway.testing.conformance import Env
from gateway.testing.simulator import Faults
from gateway.testing.workers import drain
from gateway.writes import WriteStep


def _write_jobs(env: Env, write_id: str) -> int:
    records = env.get("/v1/admin/audit", params={"write_id": write_id}).json()
    return sum(1 for r in records if r["kind"] == "write_job")


def test_a_write_the_plugin_cannot_convert_is_dead_at_once_and_releases_its_ticket(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    ref = cw.ref(ticket)
    # A time entry whose payload the plugin cannot convert (as a write accepted by an older
    # gateway could be): no retry can help it.
    poison = intake.submit(
        cw.gw, workspace="conformance", connection=cw.connection, kind="time_entry", target=ref,
        steps=[WriteStep("time_entry", {"minutes": "many"})], request={"minutes": "many"}, idempotency_key=None,
    )
    reply = cw.post(f"/v1/tickets/{ref}/replies", {"text": "behind the poison"}).json()["write_id"]
    cw.drain()
    dead = cw.write(poison.write_id)
    assert dead["status"] == "dead"
    assert [a["outcome"] for a in dead["attempts"]] == ["error"], "retried as if transient"
    assert "failed before calling the vendor" in dead["error"]
    assert cw.write(reply)["status"] == "succeeded"
    assert len([n for n in cw.sim.ticket_notes(ticket) if "behind the poison" in n["text"]]) == 1


@pytest.mark.parametrize("started_at", ["0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"])
def test_a_time_entry_that_could_never_land_is_refused_at_accept(cw: Env, started_at: str) -> None:
    ticket = cw.sim.sample_ticket_id()
    answer = cw.post(f"/v1/tickets/{cw.ref(ticket)}/time-entries", {"minutes": 30, "started_at": started_at})
    assert answer.status_code == 422, answer.text
    assert answer.json()["extra"]["field"] == "started_at"
    assert cw.gw.writes.active_count() == 0


def test_reply_text_of_only_white_space_is_refused_at_accept(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    answer = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": " \n\t "})
    assert answer.status_code == 422, answer.text
    assert answer.json()["extra"]["field"] == "text"


def test_a_paused_connection_holds_no_worker_and_does_not_spin(cw: Env) -> None:
    tickets = [str(i) for i, t in cw.sim.tickets.items() if not t["closedFlag"]][:10]
    assert len(tickets) == 10
    cw.sim.set_faults(Faults(throttle_rate=1.0, retry_after=60, writes_only=True))
    writes = [cw.post(f"/v1/tickets/{cw.ref(t)}/replies", {"text": "while paused"}).json()["write_id"] for t in tickets]
    assert not drain(cw.gw, timeout=1.5), "writes landed through a 60 s Retry-After"
    # One write met the 429; the other nine never ran: the connection waits, not the workers.
    assert sum(_write_jobs(cw, w) for w in writes) == 1
    assert cw.sim.stats.get("throttled", 0) == 1
    view = next(c for c in cw.get("/v1/connections").json() if c["id"] == cw.connection)
    backlog = view["writes"]
    assert backlog["unfinished"] == 10 and backlog["queued"] == 10 and backlog["running"] == 0
    assert backlog["parked_seconds"] > 50 and view["paused_seconds"] > 50
    assert backlog["oldest_age_seconds"] >= 0


def test_a_worker_told_to_stop_as_it_takes_a_run_runs_it_and_leaves_no_slot_held(cw: Env) -> None:
    """SIGTERM the instant the scheduler hands a run out, when rq still counts the worker idle:
    the worker stops after running it, as after a stop while busy. (rq's stop raised there, and
    the run was off its connection's list with its slot leased until the lease ran out and the
    sweep found its write, up to a minute later.)"""
    import os
    import signal

    from gateway import hub
    from gateway.scheduler import Picked, Scheduler
    from gateway.worker import GatewayWorker

    class StopAsARunIsTaken(Scheduler):
        def pick(self) -> Picked:
            picked = super().pick()
            if picked.run_id is not None:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before this returns
            return picked

    ref = cw.ref(cw.sim.sample_ticket_id())
    write_id = cw.post(f"/v1/tickets/{ref}/replies", {"text": "taken as the stop came"}).json()["write_id"]
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    cw.gw.scheduler = StopAsARunIsTaken(cw.gw.redis)
    hub.bind(cw.gw)
    worker = GatewayWorker(["writes"], connection=cw.gw.redis)
    worker.gateway = cw.gw
    try:
        worker.work(burst=True, logging_level="WARNING")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert worker._shutdown_requested_date is not None, "the signal never came: the test proves nothing"
    assert cw.write(write_id)["status"] == "succeeded"
    assert cw.gw.redis.zcard(f"{{sched}}:run:{cw.connection}") == 0, "the connection's slot is still leased"
