"""The write pipeline's promises, through the API, rq and the ConnectWise simulator."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator
from redis.lock import Lock

from gateway import hub, jobs, scheduler
from gateway.testing.conformance import Env, build_env
from gateway.testing.simulator import Faults


def notes_with(env: Env, ticket: str, text: str) -> list[dict]:
    return [n for n in env.sim.ticket_notes(ticket) if text in n["text"]]


def other_status(env: Env, ticket: str) -> str:
    current = env.sim.ticket_status_id(ticket)
    return next(s for s in env.sim.valid_status_ids(ticket) if s != current)


def vendor_calls(env: Env, write_id: str) -> list[dict]:
    records = env.get("/v1/admin/audit", params={"write_id": write_id}).json()
    return [r for r in records if r["kind"] == "vendor_call"]


def test_when_the_note_landed_and_the_status_failed_a_retry_sends_only_the_status(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    target = other_status(cw, ticket)
    cw.sim.set_faults(Faults(error_rate=1.0, error_status=400, methods=["PATCH"]))
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "step tracked", "status_id": target}).json()["write_id"]
    cw.drain()
    write = cw.write(write_id)
    assert write["status"] == "dead"
    assert [s["state"] for s in write["steps"]] == ["done", "pending"]
    cw.sim.set_faults(Faults())
    assert cw.post(f"/v1/admin/dead-letters/{write_id}/retry").status_code == 202
    cw.drain()
    assert cw.write(write_id)["status"] == "succeeded"
    assert len(notes_with(cw, ticket, "step tracked")) == 1
    assert cw.sim.ticket_status_id(ticket) == target
    posts = [c for c in vendor_calls(cw, write_id) if c["attributes"]["http.request.method"] == "POST"]
    assert len(posts) == 1, "the note must not be sent again"


def test_writes_to_one_ticket_reach_the_vendor_in_acceptance_order(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    statuses = [s for s in cw.sim.valid_status_ids(ticket)]
    # Transient failures make early writes retry; later ones must still wait their turn.
    cw.sim.set_faults(Faults(error_rate=0.4, error_status=503, writes_only=True, seed=3))
    accepted = []
    for i in range(6):
        if i % 2 == 0:
            accepted.append(cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": f"ordered {i}"}).json()["write_id"])
        else:
            accepted.append(cw.post(f"/v1/tickets/{cw.ref(ticket)}/status", {"status_id": statuses[i % len(statuses)]}).json()["write_id"])
    cw.drain()
    landed = []
    for write_id in accepted:
        ok = [c for c in vendor_calls(cw, write_id)
              if c["attributes"]["http.request.method"] in {"POST", "PATCH"} and c["attributes"].get("http.response.status_code", 500) < 300]
        assert ok, f"{write_id} never landed"
        landed.append(min(c["started_at"] for c in ok))
    assert landed == sorted(landed)
    assert cw.sim.ticket_status_id(ticket) == statuses[5 % len(statuses)]


def test_a_write_whose_job_was_lost_is_found_by_the_sweeper(cw: Env, redis_client: redis.Redis) -> None:
    ticket = cw.sim.sample_ticket_id()
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "lost job"}).json()["write_id"]
    # As if its queued run were lost (a Redis restart without persistence of that key).
    redis_client.delete(f"{scheduler.PREFIX}list:{cw.ref(ticket).split(':')[0]}")
    assert jobs.sweep(cw.gw, older_than=0) == 1
    cw.drain()
    assert cw.write(write_id)["status"] == "succeeded"
    assert len(notes_with(cw, ticket, "lost job")) == 1


def test_a_duplicate_job_for_one_write_makes_one_note(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "enqueued twice"}).json()["write_id"]
    jobs.enqueue_write(cw.gw, write_id)  # rq runs a job id as often as it is enqueued
    cw.drain()
    assert len(notes_with(cw, ticket, "enqueued twice")) == 1


def test_a_step_left_sending_by_a_killed_worker_is_reconciled_not_resent(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    cw.sim.set_faults(Faults(drop_after_commit_rate=1.0, writes_only=True))
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "killed mid call"}).json()["write_id"]
    # One run: the note commits, the answer is lost; the run ends as a killed worker would.
    hub.bind(cw.gw)
    assert jobs.WriteRunner(cw.gw).run(write_id) == "retrying"
    cw.sim.set_faults(Faults())
    record = cw.gw.writes.get(write_id)
    assert record.steps[0].state == "sending"
    cw.drain()
    assert len(notes_with(cw, ticket, "killed mid call")) == 1
    assert any(a["outcome"] == "reconciled" for a in cw.write(write_id)["attempts"])


@pytest.mark.parametrize("enabled", [False, True])
def test_first_reply_moves_a_new_ticket_to_in_progress_only_when_enabled(redis_client: redis.Redis, enabled: bool) -> None:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    env_iter = build_env(sim, redis_client, workspace={"first_reply_sets_in_progress": enabled})
    env = next(env_iter)
    try:
        env.sync()
        tickets = env.get("/v1/tickets", params={"limit": 500}).json()["tickets"]
        ticket_id = next(t["vendor_id"] for t in tickets if t["status"]["category"] == "new")
        env.post(f"/v1/tickets/{env.ref(ticket_id)}/replies", {"text": "first reply"})
        env.drain()
        category = env.get(f"/v1/tickets/{env.ref(ticket_id)}").json()["status"]["category"]
        assert category == ("in_progress" if enabled else "new")
    finally:
        env_iter.close()


def test_one_trace_runs_from_the_api_request_to_the_vendor_call(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "traced"}).json()["write_id"]
    cw.drain()
    records = cw.get("/v1/admin/audit", params={"write_id": write_id}).json()
    kinds = {r["kind"] for r in records}
    assert {"api_write", "write_job", "vendor_call"} <= kinds
    assert len({r["trace_id"] for r in records}) == 1
    call = next(r for r in records if r["kind"] == "vendor_call" and r["attributes"]["http.request.method"] == "POST")
    attrs = call["attributes"]
    assert attrs["gateway.write_id"] == write_id and attrs["gateway.dedup_key"]
    assert attrs["gateway.workspace"] == "conformance" and attrs["gateway.connection"] == "conf"
    assert "traced" in attrs["gateway.request_payload"] and call["duration_ms"] >= 0
    assert attrs["http.response.status_code"] == 201


def test_dead_letters_are_listed_shown_and_discarded(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    cw.sim.set_faults(Faults(error_rate=1.0, error_status=400, writes_only=True))
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "doomed"}).json()["write_id"]
    cw.drain()
    listed = cw.get("/v1/admin/dead-letters").json()
    assert [d["write"]["id"] for d in listed] == [write_id]
    assert listed[0]["request"]["text"] == "doomed"
    assert "Simulated server error" in listed[0]["write"]["attempts"][-1]["error"]
    assert cw.api.delete(f"/v1/admin/dead-letters/{write_id}", headers=cw.headers).status_code == 204
    assert cw.get("/v1/admin/dead-letters").json() == []
    assert cw.write(write_id)["status"] == "discarded"
    admin = [r for r in cw.get("/v1/admin/audit", params={"write_id": write_id}).json() if r["kind"] == "admin"]
    assert admin and admin[0]["attributes"]["gateway.admin_action"] == "discard"


def test_retries_run_out_into_a_dead_letter_with_every_attempt(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    cw.sim.set_faults(Faults(error_rate=1.0, error_status=503, writes_only=True))
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "never lands"}).json()["write_id"]
    cw.drain(timeout=120)
    write = cw.write(write_id)
    assert write["status"] == "dead"
    failures = [a for a in write["attempts"] if a["outcome"] == "unavailable"]
    assert len(failures) == cw.gw.settings.gateway.max_attempts
    assert all(a["status"] == 503 for a in failures)


def test_a_retried_old_status_change_does_not_move_the_ticket_back(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    older, newer = [s for s in cw.sim.valid_status_ids(ticket) if s != cw.sim.ticket_status_id(ticket)][:2]
    cw.sim.set_faults(Faults(error_rate=1.0, error_status=400, methods=["PATCH"]))
    old_write = cw.post(f"/v1/tickets/{cw.ref(ticket)}/status", {"status_id": older}).json()["write_id"]
    cw.drain()
    assert cw.write(old_write)["status"] == "dead"
    cw.sim.set_faults(Faults())
    new_write = cw.post(f"/v1/tickets/{cw.ref(ticket)}/status", {"status_id": newer}).json()["write_id"]
    cw.drain()
    assert cw.sim.ticket_status_id(ticket) == newer
    # The operator retries the old dead letter after the newer status landed.
    assert cw.post(f"/v1/admin/dead-letters/{old_write}/retry").status_code == 202
    cw.drain()
    assert cw.sim.ticket_status_id(ticket) == newer, "the retry moved the ticket back"
    write = cw.write(old_write)
    assert write["status"] == "succeeded"
    assert write["attempts"][-1]["outcome"] == "superseded"
    assert new_write in write["steps"][0]["effect"]["detail"]


def test_a_caller_that_asks_for_no_sampling_is_audited_all_the_same(cw: Env) -> None:
    """The audit is made of spans: a ``traceparent`` whose flags say "not sampled" must not
    switch it off for the caller's write (the SDK's default sampler follows the parent)."""
    ticket = cw.sim.sample_ticket_id()
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    answer = cw.api.post(f"/v1/tickets/{cw.ref(ticket)}/replies", json={"text": "unsampled"},
                         headers={**cw.headers, "traceparent": unsampled})
    assert answer.status_code == 202
    write_id = answer.json()["write_id"]
    cw.drain()
    records = cw.get("/v1/admin/audit", params={"write_id": write_id}).json()
    assert {"api_write", "write_job", "vendor_call"} <= {r["kind"] for r in records}
    assert {r["trace_id"] for r in records} == {"0af7651916cd43dd8448eb211c80319c"}  # the caller's trace


def _run_picked(cw: Env, write_id: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[tuple[str, ...]]]:
    """Run the write the scheduler hands out next, as a worker would; the commands it sent
    outside pipelines (name and first argument)."""
    picked = cw.gw.scheduler.pick()
    assert picked.run_id is not None and picked.connection == cw.connection
    sent: list[tuple[str, ...]] = []
    original = cw.gw.redis.execute_command

    def execute_command(*args: Any, **options: Any) -> Any:
        sent.append(tuple(str(a) for a in args[:2]))
        return original(*args, **options)

    monkeypatch.setattr(cw.gw.redis, "execute_command", execute_command)
    hub.bind(cw.gw)
    return jobs.WriteRunner(cw.gw).run(write_id, run_id=picked.run_id, connection=picked.connection), sent


def test_a_run_the_scheduler_hands_out_reads_its_write_once_under_its_lock(
        cw: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Redis round trip before the vendor call is a wait for the worker, and on a busy
    machine a wait for a CPU too: a run names its connection, so it reads its write only after
    taking the write's lock, and a lock it has just taken is not extended again."""
    ticket = cw.sim.sample_ticket_id()
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "read once"}).json()["write_id"]
    outcome, sent = _run_picked(cw, write_id, monkeypatch)

    assert outcome == "succeeded"
    assert len(notes_with(cw, ticket, "read once")) == 1
    assert sent.count(("GET", f"write:{write_id}")) == 1
    assert [c for c in sent if c[0] == "SET" and c[1] == f"lock:write:{write_id}"], "the run took its lock"
    extend = Lock.lua_extend.sha  # registered by redis-py when the run took its lock
    assert ("EVALSHA", extend) not in sent, "a one-step write needs no second lease on its lock"


def test_a_run_renews_its_write_lock_before_each_later_step(cw: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's lease covers one step's vendor call: a second step (the status after the
    note) renews it first, so a slow first call cannot let another run take the write."""
    ticket = cw.sim.sample_ticket_id()
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies",
                       {"text": "two steps", "status_id": other_status(cw, ticket)}).json()["write_id"]
    outcome, sent = _run_picked(cw, write_id, monkeypatch)

    assert outcome == "succeeded"
    assert [s["state"] for s in cw.write(write_id)["steps"]] == ["done", "done"]
    assert sent.count(("EVALSHA", Lock.lua_extend.sha)) == 1
