"""The promise users notice most: with the vendor committing then dropping answers and
throttling, every accepted reply becomes exactly one note. The 200-reply run of the issue is
marked slow (``make test-all``); ``make test`` runs the same scenario with 40."""

from __future__ import annotations

from collections import Counter

import pytest

from gateway.testing.conformance import Env
from gateway.testing.simulator import Faults


def run_scenario(env: Env, count: int) -> None:
    env.sync()
    tickets = sorted({env.sim.sample_ticket_id()} | {t["vendor_id"] for t in env.get("/v1/tickets").json()["tickets"][:4]})
    env.sim.set_faults(Faults(drop_after_commit_rate=0.3, throttle_rate=0.1, retry_after=1, writes_only=True, seed=2026))
    texts = {}
    for i in range(count):
        ticket = tickets[i % len(tickets)]
        response = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": f"exactly-once {i}"}, key=f"eo-{i}")
        assert response.status_code == 202
        texts[f"exactly-once {i}"] = ticket
    env.drain(timeout=300)
    env.sim.set_faults(Faults())
    landed: Counter[str] = Counter()
    for ticket in set(texts.values()):
        for note in env.sim.ticket_notes(ticket):
            if note["text"].startswith("exactly-once "):
                landed[note["text"]] += 1
    assert env.sim.stats["dropped_after_commit"] > 0 and env.sim.stats["throttled"] > 0
    assert sorted(landed) == sorted(texts), "a reply was lost"
    assert max(landed.values()) == 1, f"doubled: {[t for t, n in landed.items() if n > 1]}"


def test_forty_replies_through_drops_and_throttling_make_forty_notes(cw: Env) -> None:
    run_scenario(cw, 40)


@pytest.mark.slow
def test_two_hundred_replies_through_drops_and_throttling_make_two_hundred_notes(cw: Env) -> None:
    run_scenario(cw, 200)
