"""``gateway demo`` shows the tools working together: Acme Corp in all five tools, tickets opened
from NinjaOne alerts showing the alert and its device's console link, acknowledge refused with
NinjaOne's reason, resolve landing once, and the customer's Hudu runbooks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    port = free_port()
    env = {**os.environ, "GATEWAY_DEMO_KEY": "demo-across-tools"}
    env.pop("REDIS_URL", None)
    env.pop("GATEWAY_CONFIG", None)
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--workers", "1", "--data-dir", str(data_dir)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer demo-across-tools"}, timeout=10)
    try:
        wait(lambda: client.get("/health").status_code == 200, "the demo did not start", swallow=True)
        yield client
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=30)


def wait(check: Any, message: str, *, timeout: float = 60.0, swallow: bool = False) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            if not swallow:
                raise
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(message)


def alert_with_ticket(demo: httpx.Client) -> tuple[str, str]:
    def find() -> tuple[str, str] | None:
        for item in demo.get("/v1/customers/acme/alerts").json()["alerts"]:
            if item["tickets"] and item["alert"]["ref"].startswith("ninja-main:"):
                return item["alert"]["ref"], item["tickets"][0]
        return None

    return wait(find, "the demo opened no ticket from a NinjaOne alert of Acme")


def test_the_demo_links_acme_in_all_five_tools(demo: httpx.Client) -> None:
    acme = demo.get("/v1/customers/acme").json()
    connections = {link["connection"]: link["matched_by"] for link in acme["links"]}
    assert {"cw-main", "at-main", "halo-main", "ninja-main", "hudu-main"} <= set(connections)
    assert connections["cw-main"] == "config"
    assert connections["ninja-main"] == "integration_id"
    assert connections["halo-main"] == "name"


def test_a_demo_ticket_from_an_alert_shows_it_and_resolves_it_once(demo: httpx.Client) -> None:
    alert_ref, ticket_ref = alert_with_ticket(demo)

    ticket = demo.get(f"/v1/tickets/{ticket_ref}").json()
    kinds = {r["kind"]: r for r in ticket["related"]}
    assert kinds["alert"]["ref"] == alert_ref
    assert "/#/deviceDashboard/" in kinds["device"]["url"]

    ack = demo.post(f"/v1/tickets/{ticket_ref}/alert-actions", json={"action": "acknowledge"})
    assert ack.status_code == 501 and "no acknowledge" in ack.json()["detail"]

    first = demo.post(f"/v1/tickets/{ticket_ref}/alert-actions", json={"action": "resolve"}, headers={"Idempotency-Key": "demo-resolve"})
    second = demo.post(f"/v1/tickets/{ticket_ref}/alert-actions", json={"action": "resolve"}, headers={"Idempotency-Key": "demo-resolve"})
    assert first.json()["write_id"] == second.json()["write_id"]
    write = wait(lambda: (w := demo.get(f"/v1/writes/{first.json()['write_id']}").json())["status"] in ("succeeded", "dead") and w,
                 "the resolve did not finish")  # fmt: skip
    assert write["status"] == "succeeded", write
    assert demo.get(f"/v1/alerts/{alert_ref}").json()["alert"]["active"] is False


def test_the_demo_customer_has_its_hudu_runbooks(demo: httpx.Client) -> None:
    runbooks = demo.get("/v1/customers/acme/runbooks").json()["runbooks"]
    hudu = [r for r in runbooks if r["ref"].startswith("hudu-main:")]
    assert len(hudu) == 3
    assert all(r["url"].startswith("http://127.0.0.1:") for r in hudu)
