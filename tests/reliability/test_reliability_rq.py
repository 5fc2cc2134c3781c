"""rq's own failure modes, with a real worker process killed mid-call.

A SIGKILLed worker leaves its job in rq's started registry; rq's cleanup later files it as
abandoned in the failed registry. The gateway never replays that job: the write's record is
the truth, the sweeper (``jobs.sweep``) enqueues a fresh trigger, and the step left
``sending`` is reconciled with the vendor before anything is sent. And a job whose write has
succeeded does nothing when an operator requeues rq's failed registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from litestar.testing import TestClient
from rq.registry import FailedJobRegistry, StartedJobRegistry

from gateway import jobs
from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.embedded_redis import EmbeddedRedis
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from

from reliability_kit import Fleet, HangAfterCommit, gateway_tables, serve_psas, wait_for, write_config

NEEDLE = b"[killed-mid-call]"


@pytest.fixture
def rig(tmp_path: Path, redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[dict]:
    handles = serve_psas(["cw"])
    cw = handles[0]
    hang = HangAfterCommit(cw.sim.app.app, NEEDLE, hang=5)
    cw.sim.app.app = hang  # in front of the commit recorder
    key = new_api_key()
    tables = gateway_tables(handles, {key: ALL_SCOPES}, timeout_seconds=1.0)
    (tmp_path / "logs").mkdir()
    fleet = Fleet(write_config(tables, tmp_path / "gateway.toml"), redis_server.url, tmp_path / "logs")
    gw = Gateway(settings_from(tables), redis_client)
    try:
        with TestClient(create_app(gw)) as api:
            yield {"cw": cw, "hang": hang, "fleet": fleet, "gw": gw, "api": api,
                   "headers": {"Authorization": f"Bearer {key}"}}
    finally:
        fleet.stop()
        gw.close()
        cw.stop()


def _notes(cw, ticket: str) -> list[dict]:
    return [n for n in cw.sim.ticket_notes(ticket) if NEEDLE.decode() in n["text"]]


def _posts(cw) -> int:
    return sum(1 for method, _, body in cw.recorder.snapshot() if method == "POST" and NEEDLE.decode() in str(body))


def test_a_job_abandoned_by_a_killed_worker_is_reconciled_and_never_rerun_from_the_failed_registry(rig: dict) -> None:
    cw, hang, fleet, gw, api = rig["cw"], rig["hang"], rig["fleet"], rig["gw"], rig["api"]
    ticket = cw.sim.sample_ticket_id()
    fleet.start_worker(0)
    accepted = api.post(f"/v1/tickets/cw:{ticket}/replies", json={"text": f"{NEEDLE.decode()} reply"},
                        headers=rig["headers"])
    assert accepted.status_code == 202, accepted.text
    write_id = accepted.json()["write_id"]

    # The vendor commits the note; the worker is killed while it waits for the answer.
    assert hang.committed.wait(30), "the worker never sent the reply"
    fleet.kill_worker(0)
    started = StartedJobRegistry(queue=gw.queue)
    abandoned = started.get_job_ids()
    assert len(abandoned) == 1
    record = gw.writes.get(write_id)
    assert record is not None and record.steps[0].state == "sending"
    assert len(_notes(cw, ticket)) == 1 and _posts(cw) == 1

    # rq's own cleanup (run here as its maintenance would once the heartbeat lapses) files
    # the job as abandoned in the failed registry, and leaves it there: nothing requeues it.
    started.cleanup(timestamp=10**10)
    failed = FailedJobRegistry(queue=gw.queue)
    assert abandoned[0] in failed.get_job_ids()
    assert abandoned[0] not in gw.queue.get_job_ids()

    # The sweeper revives the write once its lock lapses (the dead worker cannot release it);
    # the new run reconciles the step it finds ``sending`` and sends nothing.
    wait_for(lambda: not gw.writes.is_locked(write_id), 30, "the dead worker's lock to lapse", tick=0.2)
    assert jobs.sweep(gw, older_than=0) == 1
    wait_for(lambda: gw.writes.get(write_id).terminal, 30, "the revived write to finish", tick=0.1)
    record = gw.writes.get(write_id)
    assert record.status == "succeeded"
    assert [a.outcome for a in record.attempts] == ["reconciled"]
    assert len(_notes(cw, ticket)) == 1 and _posts(cw) == 1, "the reply was sent again"
    assert abandoned[0] in failed.get_job_ids(), "the gateway replayed rq's failed job"

    # An operator requeues rq's failed registry: the job finds its write finished, does nothing.
    failed.requeue(abandoned[0])
    def ran() -> bool:
        job = gw.queue.fetch_job(abandoned[0])  # result_ttl=0: a finished job is deleted
        return job is None or job.get_status() in {"finished", "failed"}

    wait_for(ran, 30, "the requeued job to run", tick=0.1)
    after = gw.writes.get(write_id)
    assert after.status == "succeeded" and after.attempts == record.attempts
    assert len(_notes(cw, ticket)) == 1 and _posts(cw) == 1, "a succeeded write ran again from the failed registry"


def test_a_write_whose_run_died_after_it_landed_does_not_block_its_ticket(redis_client: redis.Redis) -> None:
    """The crash point between saving a write's outcome and popping it off its ticket's chain
    (a worker killed there, or a write listener raising) once left every later write of the
    ticket waiting forever: the sweeper saw a finished head and revived nothing."""
    from gateway_connectwise.simulator import ConnectWiseSimulator

    from gateway.testing.conformance import build_env
    from gateway.testing.workers import drain

    sim = ConnectWiseSimulator()
    sim.seed_demo()
    env_iter = build_env(sim, redis_client)
    env = next(env_iter)
    try:
        ticket = sim.sample_ticket_id()
        path = f"/v1/tickets/{env.ref(ticket)}/replies"
        first = env.post(path, {"text": "[chain] first"}).json()["write_id"]
        second = env.post(path, {"text": "[chain] second"}).json()["write_id"]
        died: list[str] = []

        def die_once(record) -> None:
            if not died:
                died.append(record.id)
                raise RuntimeError("the worker died here")

        env.gw.write_listeners.append(die_once)
        assert drain(env.gw, timeout=20), "the ticket's second write never ran"
        assert died == [first]
        assert env.write(first)["status"] == env.write(second)["status"] == "succeeded"
        for text in ("[chain] first", "[chain] second"):
            assert len([n for n in sim.ticket_notes(ticket) if n["text"] == text]) == 1
    finally:
        next(env_iter, None)
