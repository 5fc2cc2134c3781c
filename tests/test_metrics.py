"""``GET /metrics``: Prometheus text whose numbers move with the writes made through the API,
counted where the facts happen (API, worker, vendor client) and rendered from Redis."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway.testing.conformance import Env
from gateway.testing.simulator import Faults


def scrape(env: Env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the scrape, by (sample name, sorted labels)."""
    answer = env.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """The sum over samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def test_write_counters_latency_backlog_and_dead_letters_follow_the_writes(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    before = scrape(cw)
    assert value(before, "gateway_write_backlog", connection="conf") == 0
    assert value(before, "gateway_dead_letters", workspace="conformance") == 0

    ids = [cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": f"metric {i}"}).json()["write_id"] for i in range(3)]
    cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "metric 0"}, key="same")
    cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "metric 0"}, key="same")  # a resend: not a new write
    queued = scrape(cw)
    assert value(queued, "gateway_writes_total", connection="conf", kind="reply", outcome="accepted") == 4
    assert value(queued, "gateway_write_backlog", connection="conf") == 4

    cw.drain()
    landed = scrape(cw)
    assert all(cw.write(i)["status"] == "succeeded" for i in ids)
    assert value(landed, "gateway_writes_total", connection="conf", kind="reply", outcome="succeeded") == 4
    assert value(landed, "gateway_write_backlog", connection="conf") == 0
    assert value(landed, "gateway_write_latency_seconds_count", connection="conf") == 4
    assert value(landed, "gateway_write_latency_seconds_bucket", connection="conf", le="+Inf") == 4
    assert value(landed, "gateway_write_latency_seconds_sum", connection="conf") > 0
    vendor_2xx = sum(v for (n, ls), v in landed.items()
                     if n == "gateway_vendor_requests_total" and dict(ls)["status"].startswith("2"))
    assert vendor_2xx >= 4  # one POST per note at least (reads of the ticket too)

    cw.sim.set_faults(Faults(error_rate=1.0, error_status=400, methods=["POST"]))
    dead_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "refused"}).json()["write_id"]
    cw.drain()
    assert cw.write(dead_id)["status"] == "dead"
    after = scrape(cw)
    assert value(after, "gateway_writes_total", connection="conf", kind="reply", outcome="dead") == 1
    assert value(after, "gateway_dead_letters", workspace="conformance") == 1
    assert value(after, "gateway_vendor_requests_total", connection="conf", status="400") == 1

    cw.sim.set_faults(Faults())
    assert cw.post(f"/v1/admin/dead-letters/{dead_id}/retry").status_code == 202
    retried = scrape(cw)
    assert value(retried, "gateway_writes_total", connection="conf", kind="reply", outcome="retried") == 1
    assert value(retried, "gateway_dead_letters", workspace="conformance") == 0
    assert value(retried, "gateway_write_backlog", connection="conf") == 1


def test_429s_show_as_vendor_answers_and_pauses(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "warm the ticket cache"})
    cw.drain()
    cw.sim.set_faults(Faults(throttle_rate=1.0, retry_after=30, methods=["POST"]))
    write_id = cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "throttled"}).json()["write_id"]
    from gateway.hub import bind
    from gateway.jobs import run_write

    bind(cw.gw)
    run_write(write_id)  # one run: the vendor answers 429 and the write is deferred
    samples = scrape(cw)
    assert value(samples, "gateway_vendor_requests_total", connection="conf", status="429") == 1
    assert value(samples, "gateway_rate_limit_pauses_total", connection="conf") == 1
    assert 25 < value(samples, "gateway_rate_limit_paused_seconds", connection="conf") <= 30
    assert value(samples, "gateway_write_backlog", connection="conf") == 1


def test_sync_lag_appears_once_a_pull_finished(cw: Env) -> None:
    assert ("gateway_sync_lag_seconds", (("connection", "conf"),)) not in scrape(cw)
    cw.sync()
    lag = value(scrape(cw), "gateway_sync_lag_seconds", connection="conf")
    assert 0 <= lag < 60


def test_metrics_need_an_admin_key(cw: Env) -> None:
    assert cw.api.get("/metrics").status_code == 401
