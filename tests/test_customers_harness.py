"""A gateway wired to all five tools at once: the three PSA simulators, NinjaOne and Hudu.

``conformance.build_env`` wires one simulator; customers across tools and inline actions need
every tool. ``serve_tools`` starts the five simulators (seeded with their demo data plus the
cross-tool records below) once per test module; ``build_tools`` assembles a fresh gateway
(its own config, a real redis-server, rq jobs run in-process by ``drain``) around them per
test. Other test files load this module by path, since ``tests/`` is not a package.

Cross-tool demo records added on top of each simulator's own seed:

- HaloPSA clients "Acme Corp", "Globex" and "Initech" (its own demo clients have other names);
- a configuration item of NinjaOne device ACME-FS01 on a ConnectWise Acme ticket (by serial), on
  an Autotask ACME ticket (host name only) and a Halo asset on an Acme ticket (serial).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from gateway_autotask.simulator import AutotaskSimulator
from gateway_connectwise.simulator import ConnectWiseSimulator
from gateway_halopsa.simulator import HaloSimulator
from gateway_hudu.simulator import HuduSimulator
from gateway_ninjaone.simulator import NinjaOneSimulator
from litestar.testing import TestClient

from gateway import links
from gateway.core import Gateway
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config
from gateway.testing.simulator import Faults, RunningServer, Simulator
from gateway.testing.workers import drain

CONNECTIONS = {"cw": "connectwise", "at": "autotask", "halo": "halopsa", "ninja": "ninjaone", "hudu": "hudu"}
HALO_CUSTOMERS = {"Acme Corp": 21, "Globex": 22, "Initech": 23}


@dataclass
class Served:
    """The five simulators, served on loopback, and the records the tests look for."""

    sims: dict[str, Simulator]
    servers: dict[str, RunningServer]
    facts: dict[str, Any] = field(default_factory=dict)

    def sim(self, connection: str) -> Any:
        return self.sims[connection]

    def clear_faults(self) -> None:
        for sim in self.sims.values():
            sim.set_faults(Faults())


def serve_tools() -> Served:
    """Start and seed the five simulators (callers stop them with ``stop_tools``)."""
    sims: dict[str, Simulator] = {
        "cw": ConnectWiseSimulator(), "at": AutotaskSimulator(), "halo": HaloSimulator(),
        "ninja": NinjaOneSimulator(), "hudu": HuduSimulator(),
    }  # fmt: skip
    for sim in sims.values():
        sim.seed_demo()
    served = Served(sims, {name: sim.serve_in_thread() for name, sim in sims.items()})
    served.facts.update(seed_cross_tool(sims))
    return served


def stop_tools(served: Served) -> None:
    for server in served.servers.values():
        server.stop()


def seed_cross_tool(sims: dict[str, Any]) -> dict[str, Any]:
    """The records that tie the tools' demo data together; returns what tests look up."""
    ninja: NinjaOneSimulator = sims["ninja"]
    acme_org = ninja.organization_named("Acme Corp")["id"]
    fs01 = next(d for d in ninja.devices_of(acme_org) if d["systemName"] == "ACME-FS01")
    serial = fs01["system"]["serialNumber"]
    halo: HaloSimulator = sims["halo"]
    for name, client_id in HALO_CUSTOMERS.items():
        halo.add_client(name, client_id)
    halo_ticket = halo.add_ticket("File server disk nearly full", client_id=HALO_CUSTOMERS["Acme Corp"])
    halo.add_asset(HALO_CUSTOMERS["Acme Corp"], "ACME-FS01", serial=serial, ticket_id=halo_ticket)
    cw: ConnectWiseSimulator = sims["cw"]
    cw_ticket = next(t["id"] for t in cw.tickets.values() if t["company"]["id"] == 250)
    cw.add_configuration(250, "ACME-FS01", serial=serial, ticket_id=cw_ticket)
    at: AutotaskSimulator = sims["at"]
    at_ticket = next(i for i, t in sorted(at.store.records["Tickets"].items()) if t["companyID"] == 175)
    at.add_configuration_item(175, "Acme file server", hostname="ACME-FS01", ticket_id=at_ticket)
    return {
        "fs01": fs01, "acme_org": acme_org, "cw_ci_ticket": f"cw:{cw_ticket}", "at_ci_ticket": f"at:{at_ticket}",
        "halo_ci_ticket": f"halo:{halo_ticket}",
    }  # fmt: skip


@dataclass
class Tools:
    """One gateway over the five served tools, for one test."""

    served: Served
    gw: Gateway
    api: TestClient
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def sim(self, connection: str) -> Any:
        return self.served.sims[connection]

    def base_url(self, connection: str) -> str:
        return self.served.servers[connection].base_url

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.api.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, body: Any = None, key: str | None = None) -> Any:
        headers = dict(self.headers)
        if key:
            headers["Idempotency-Key"] = key
        return self.api.post(path, json=body, headers=headers)

    def drain(self, timeout: float = 60.0) -> None:
        assert drain(self.gw, timeout=timeout), "writes did not finish in time"

    def write(self, write_id: str) -> dict[str, Any]:
        response = self.get(f"/v1/writes/{write_id}")
        assert response.status_code == 200, response.text
        return response.json()


def build_tools(
    served: Served,
    redis_client: redis.Redis,
    *,
    customers: list[dict[str, Any]] | None = None,
    workspace: dict[str, Any] | None = None,
    scopes: list[str] | None = None,
) -> Iterator[Tools]:
    """A gateway with one connection per served tool; ``customers`` is the workspace's
    ``[[workspaces.customers]]``."""
    key = new_api_key()
    connections = [
        connection_config(conn_id, served.sims[conn_id].demo_connection(served.servers[conn_id].base_url))
        for conn_id in CONNECTIONS
    ]
    extra: dict[str, Any] = dict(workspace or {})
    if customers:
        extra["customers"] = customers
    settings = settings_from({
        "gateway": {"retry_base_seconds": 0.01, "max_attempts": 8},
        "workspaces": [workspace_config("tools", connections, {key: scopes or ALL_SCOPES}, **extra)],
    })  # fmt: skip
    gw = Gateway(settings, redis_client)
    links.install(gw)  # what Gateway construction does once the core registers it
    from gateway.api.app import create_app

    try:
        with TestClient(create_app(gw)) as api:
            yield Tools(served, gw, api, key)
    finally:
        served.clear_faults()
        gw.close()


# --------------------------------------------------------------------------- the harness itself


def test_the_harness_connects_one_gateway_to_all_five_tools(redis_client: redis.Redis) -> None:
    served = serve_tools()
    try:
        for tools in build_tools(served, redis_client):
            listed = {c["id"]: c["vendor"] for c in tools.get("/v1/connections").json()}
            assert listed == CONNECTIONS
    finally:
        stop_tools(served)
