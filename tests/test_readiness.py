"""``GET /ready``: 503 until every PSA connection has finished its first backfill, then 200;
``/health`` is liveness and answers 200 throughout."""

from __future__ import annotations

from gateway.testing.conformance import Env


def test_ready_is_503_until_the_first_backfill_then_200_with_the_same_detail(cw: Env) -> None:
    before = cw.api.get("/ready")
    assert before.status_code == 503
    assert before.json()["connections"] == [{"id": "conf", "backfill_done": False}]
    assert before.json()["waiting_for"] == ["first backfill of conf"]
    assert cw.api.get("/health").status_code == 200  # alive all along
    assert cw.get("/v1/tickets").json()["tickets"] == []  # what a caller would have got

    cw.sync()

    after = cw.api.get("/ready")
    assert after.status_code == 200
    assert after.json()["ready"] is True and after.json()["redis"] is True
    assert after.json()["connections"] == [{"id": "conf", "backfill_done": True}]
    assert "connectwise" in after.json()["plugins"]
    assert cw.get("/v1/tickets").json()["tickets"], "ready, but the queue is empty"


def test_a_resync_after_the_first_backfill_keeps_the_api_ready(cw: Env) -> None:
    from gateway.sync import resync

    cw.sync()
    assert cw.api.get("/ready").status_code == 200
    resync(cw.gw, "conf")
    assert cw.api.get("/ready").status_code == 200
