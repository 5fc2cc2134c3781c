"""``gateway demo`` as a new user runs it: one command serves the API, workers and simulators,
and a reply posted twice with one Idempotency-Key lands once."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "GATEWAY_DEMO_KEY": "demo-test-key"}
    env.pop("REDIS_URL", None)
    env.pop("GATEWAY_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--workers", "1", "--data-dir", str(tmp_path / "demo")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    output = []
    deadline = time.monotonic() + 90
    while not any(line.startswith("API key:") for line in output):  # the banner
        try:
            output.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            pass
        if time.monotonic() > deadline or (proc.poll() is not None and lines.empty()):
            proc.kill()
            raise AssertionError("demo did not print its banner:\n" + "".join(output))
    client = httpx.Client(base_url=base, headers={"Authorization": "Bearer demo-test-key"}, timeout=10)
    yield client
    client.close()
    proc.terminate()
    proc.wait(timeout=30)


def wait_for(client: httpx.Client, write_id: str) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        write = client.get(f"/v1/writes/{write_id}").json()
        if write["status"] in {"succeeded", "dead"}:
            return write
        time.sleep(0.1)
    raise AssertionError(f"write {write_id} did not finish: {write}")


def test_the_demo_serves_and_one_idempotency_key_makes_one_note(demo: httpx.Client) -> None:
    plugins = {p["vendor"] for p in demo.get("/v1/plugins").json()["plugins"]}
    assert "connectwise" in plugins
    # The banner is printed once the demo is ready: the first request a user copies from it
    # finds every PSA's tickets, not an empty queue.
    assert demo.get("/ready").status_code == 200
    tickets = demo.get("/v1/tickets", params={"connection": "cw-main"}).json()["tickets"]
    assert tickets, "the banner was printed before the queue was filled"
    ref = tickets[0]["ref"]
    first = demo.post(f"/v1/tickets/{ref}/replies", json={"text": "demo reply"}, headers={"Idempotency-Key": "demo-1"})
    second = demo.post(f"/v1/tickets/{ref}/replies", json={"text": "demo reply"}, headers={"Idempotency-Key": "demo-1"})
    assert first.status_code == second.status_code == 202
    assert first.json()["write_id"] == second.json()["write_id"]
    assert wait_for(demo, first.json()["write_id"])["status"] == "succeeded"
    thread = demo.get(f"/v1/tickets/{ref}").json()["thread"]
    assert [e["text"] for e in thread].count("demo reply") == 1
