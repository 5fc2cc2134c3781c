"""Autotask's limits as the simulator enforces them, and the plugin's defaults that respect them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.errors import VendorRateLimited
from gateway.plugins import load_plugins
from gateway.models import Capability
from gateway_autotask import hooks
from gateway_autotask.client import AutotaskClient
from gateway_autotask.simulator import AutotaskSimulator


def raw_client(sim: AutotaskSimulator) -> httpx.Client:
    headers = {"ApiIntegrationCode": sim.DEMO_INTEGRATION_CODE, "UserName": sim.DEMO_USERNAME, "Secret": sim.DEMO_SECRET}
    return httpx.Client(headers=headers, timeout=10)


def test_vendor_info_keeps_to_half_the_hourly_threshold_and_three_threads() -> None:
    loaded = load_plugins()
    info = loaded.vendors["autotask"]
    assert Capability.REPLY_WITH_STATUS not in info.capabilities
    assert {Capability.TICKET_READ, Capability.REPLY, Capability.INTERNAL_NOTE, Capability.STATUS, Capability.CREATE_TICKET,
            Capability.TIME_ENTRY, Capability.ATTACHMENT, Capability.WEBHOOK} <= info.capabilities
    (window,) = info.default_rate_limit.windows
    assert (window.requests, window.per_seconds) == (10_000, 3600.0)
    assert info.default_rate_limit.headroom == 0.5
    assert info.default_rate_limit.concurrency == 3
    assert info.attachment_cap_bytes == 6 * 1024 * 1024
    assert info.secret_settings == ("secret", "integration_code")


def test_a_fourth_concurrent_call_to_one_endpoint_hits_the_thread_threshold(sim: AutotaskSimulator, running) -> None:
    sim.processing_seconds = 0.3
    url = f"{running.base_url}/atservicesrest/v1.0/Tickets/7800"
    with raw_client(sim) as http, ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: http.get(url), range(5)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 200, 429, 429]
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json() == {"errors": ["Thread Threshold Exceeded: The Autotask API thread threshold of 3 threads has been exceeded."]}
    assert refused.headers["retry-after"] == "1"


def test_the_thread_cap_is_per_object_endpoint(sim: AutotaskSimulator, running) -> None:
    sim.processing_seconds = 0.3
    base = f"{running.base_url}/atservicesrest/v1.0"
    urls = [f"{base}/Tickets/7800"] * 3 + [f"{base}/Companies/175"] * 3
    with raw_client(sim) as http, ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(http.get, urls))
    assert [a.status_code for a in answers] == [200] * 6


def test_client_sees_the_thread_threshold_as_rate_limited(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    client.zone  # noqa: B018 - discover first, so only ticket calls run concurrently
    sim.processing_seconds = 0.3
    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(client.ticket, "7800") for _ in range(5)]
    errors = [f.exception() for f in futures if f.exception() is not None]
    assert len(errors) == 2
    assert all(isinstance(e, VendorRateLimited) and e.status == 429 and e.retry_after == 1 for e in errors)
    assert "Thread Threshold Exceeded" in str(errors[0])


def test_gateway_concurrency_keeps_autotask_under_its_thread_cap(make_connection, runtime, sim: AutotaskSimulator) -> None:
    client = hooks.gateway_connect(make_connection(runtime=runtime, rate_limit=hooks.DEFAULT_RATE_LIMIT))
    try:
        client.zone  # noqa: B018
        sim.processing_seconds = 0.3
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(client.ticket, "7800") for _ in range(6)]
        outcomes = [f.exception() for f in futures]
    finally:
        client.close()
    assert sim.stats["thread_threshold_exceeded"] == 0
    assert sum(1 for e in outcomes if e is None) >= 3
    # The calls the gateway held back were refused locally (no vendor status): a worker defers them.
    assert all(isinstance(e, VendorRateLimited) and e.status is None for e in outcomes if e is not None)


def test_latency_is_added_from_half_the_threshold_and_calls_stop_at_it(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    client.zone  # noqa: B018
    sim.hourly_threshold = 8
    sim.latency_scale = 0.2  # 0.1 s from 50 %, 0.2 s from 75 %
    usage = client.threshold()  # counts itself: ThresholdInformation is not exempt
    assert (usage["externalRequestThreshold"], usage["requestThresholdTimeframe"], usage["currentTimeframeRequestCount"]) == (8, 60, 1)
    timings = []
    for _ in range(7):
        start = time.perf_counter()
        client.ticket("7800")
        timings.append(time.perf_counter() - start)
    assert (sim.stats["latency_50"], sim.stats["latency_75"]) == (2, 2)
    assert min(timings[3:5]) >= 0.1 and min(timings[5:7]) >= 0.2
    with pytest.raises(VendorRateLimited) as caught:
        client.ticket("7800")
    assert caught.value.status == 429 and caught.value.retry_after and caught.value.retry_after > 1
    assert "API Threshold Exceeded" in str(caught.value)


def test_threshold_window_rolls(client: AutotaskClient, sim: AutotaskSimulator) -> None:
    client.zone  # noqa: B018
    sim.hourly_threshold = 2
    sim.threshold_window_seconds = 0.5
    sim.latency_scale = 0
    client.ticket("7800")
    client.ticket("7800")
    with pytest.raises(VendorRateLimited):
        client.ticket("7800")
    time.sleep(0.6)
    assert client.ticket("7800") is not None
