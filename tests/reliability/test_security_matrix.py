"""Security matrix: every route against no key, malformed keys, an unknown key, a revoked key,
a key without the route's scope and a key of another workspace. None gets access, and none
can tell a record that exists from one that does not. Admin routes need the admin scope.

The route list is read from the running app, so a route added later is covered (or fails
here until this file knows a valid body for it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.settings import hash_key
from gateway import delivery
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config
from gateway.testing.simulator import Faults
from gateway.testing.workers import drain

from reliability_kit import SimHandle, serve_psas

READ, WRITE, ADMIN = "tickets:read", "tickets:write", "admin"
PUBLIC = ("/health", "/ready", "/schema")  # probes and the OpenAPI document need no key
WEBHOOKS = "/v1/webhooks/"
# Console pages take a session cookie, not a bearer key: tests/test_console.py holds their matrix
# (admin scope only, CSRF, another workspace's records answer 404).
CONSOLE = "/console"
# Answers that never end (Server-Sent Events) cannot be read whole with a valid key: the stream's
# own workspace isolation is tested in tests/test_events.py (another workspace sees nothing).
ENDLESS = {("GET", "/v1/events/stream")}


@dataclass
class Rig:
    api: TestClient
    gw: Gateway
    handles: list[SimHandle]
    keys: dict[str, str]
    ids: dict[str, str]  # path parameter -> a record of workspace alpha that exists
    alpha_markers: list[str]  # strings only alpha's records contain

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def build_rig(redis_client: redis.Redis) -> Iterator[Rig]:
    handles = serve_psas()
    by_name = {h.connection: h for h in handles}
    keys = {
        "alpha-admin": new_api_key(), "alpha-no-read": new_api_key(), "alpha-no-write": new_api_key(),
        "alpha-no-admin": new_api_key(), "alpha-revoked": new_api_key(), "beta-admin": new_api_key(),
    }
    alpha_conns = [
        connection_config(f"{h.connection}-a", h.sim.demo_connection(h.server.base_url), timeout_seconds=5.0)
        for h in handles
    ]
    cw = by_name["cw"]
    beta_conns = [connection_config("cw-b", cw.sim.demo_connection(cw.server.base_url), timeout_seconds=5.0)]
    alpha = workspace_config("alpha", alpha_conns, {
        keys["alpha-admin"]: ALL_SCOPES,
        keys["alpha-no-read"]: [WRITE, ADMIN],
        keys["alpha-no-write"]: [READ, ADMIN],
        keys["alpha-no-admin"]: [READ, WRITE],
    })
    alpha["api_keys"].append({"name": "old", "sha256": hash_key(keys["alpha-revoked"]), "scopes": ALL_SCOPES, "revoked": True})
    beta = workspace_config("beta", beta_conns, {keys["beta-admin"]: ALL_SCOPES})
    gw = Gateway(settings_from({"gateway": {"retry_base_seconds": 0.01}, "workspaces": [alpha, beta]}), redis_client)
    try:
        with TestClient(create_app(gw)) as api:
            admin = {"Authorization": f"Bearer {keys['alpha-admin']}"}
            ticket = cw.sim.sample_ticket_id()
            ok = api.post(f"/v1/tickets/cw-a:{ticket}/replies", json={"text": "alpha private reply"}, headers=admin)
            assert ok.status_code == 202, ok.text
            cw.sim.set_faults(Faults(error_rate=1.0, error_status=400, writes_only=True))
            dead = api.post(f"/v1/tickets/cw-a:{ticket}/replies", json={"text": "alpha dead letter"}, headers=admin)
            assert dead.status_code == 202, dead.text
            assert drain(gw, timeout=60)
            cw.sim.set_faults(Faults())
            dead_id = dead.json()["write_id"]
            assert gw.writes.get(dead_id).status == "dead"
            customers = api.get("/v1/customers", headers=admin)
            customer = "cw-a:1"
            if customers.status_code == 200:
                # One only alpha has (beta's ConnectWise shares the simulator's companies).
                listed = [c for c in customers.json().get("customers") or []
                          if c.get("links") and all(not l["connection"].startswith("cw-") for l in c["links"])]
                if listed:
                    customer = listed[0]["id"]
            subscription = delivery.create(gw, "alpha", "http://127.0.0.1:9/matrix", [])
            ids = {"ref": f"cw-a:{ticket}", "connection_id": "cw-a", "write_id": dead_id,
                   "customer_id": customer, "attachment_id": "424242", "sid": subscription.id}
            markers = ["cw-a", "at-a", "halo-a", ok.json()["write_id"], dead_id]
            yield Rig(api, gw, handles, keys, ids, markers)
    finally:
        gw.close()
        for h in handles:
            h.stop()


@pytest.fixture
def rig(redis_client: redis.Redis) -> Iterator[Rig]:
    yield from build_rig(redis_client)


MISSING = {"ref": "cw-a:987654321", "connection_id": "cw-zz", "write_id": "w_" + "0" * 32,
           "customer_id": "no-such-customer", "attachment_id": "987654321", "sid": "sub_" + "0" * 32}


def body_for(method: str, path: str, rig: Rig, ids: dict[str, str]) -> Any:
    """A body that is valid for the route, so only keys and ownership decide the answer."""
    if method != "POST":
        return None
    if path.endswith("/replies"):
        return {"text": "matrix probe"}
    if path.endswith("/status"):
        return {"status_id": rig.handles[0].sim.valid_status_ids(ids["ref"].split(":", 1)[1])[0]
                if ids is rig.ids else "1"}
    if path.endswith("/time-entries"):
        return {"minutes": 5, "notes": "matrix probe"}
    if path == "/v1/tickets":
        return {"connection": ids["connection_id"], "summary": "matrix probe",
                "fields": rig.handles[0].sim.minimal_create_fields()}
    if path.endswith("/actions") or path.endswith("/alert-actions"):
        return {"action": "resolve"}
    if path.endswith("/retry") or path.endswith("/resync") or path.endswith("/enable"):
        return None
    if path == "/v1/admin/subscriptions":
        return {"url": "http://127.0.0.1:9/matrix", "types": []}
    raise AssertionError(f"the security matrix has no body for POST {path}: add one")


def scope_of(method: str, path: str) -> str:
    if path.startswith("/v1/admin") or path == "/metrics":
        return ADMIN
    return READ if method == "GET" else WRITE


def routes(rig: Rig) -> list[tuple[str, str]]:
    found = []
    for route in rig.api.app.routes:
        for method in sorted(getattr(route, "methods", ())):
            if method in {"HEAD", "OPTIONS"} or route.path.startswith((*PUBLIC, WEBHOOKS, CONSOLE)):
                continue
            found.append((method, route.path))
    return found


def concrete(path: str, ids: dict[str, str]) -> str:
    def fill(match: re.Match) -> str:
        name = match.group(1)
        assert name in ids, f"the security matrix has no value for path parameter {name!r}: add one"
        return ids[name]

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


def call(rig: Rig, method: str, path: str, headers: dict[str, str], body: Any) -> Any:
    return rig.api.request(method, path, headers=headers, json=body)


def normalized(response: Any, ids: dict[str, str]) -> tuple[int, str]:
    text = response.text
    for value in sorted(ids.values(), key=len, reverse=True):
        text = text.replace(value, "<id>")
    return response.status_code, text


def malformed_credentials(rig: Rig) -> dict[str, dict[str, str]]:
    good = rig.keys["alpha-admin"]
    return {
        "no key": {},
        "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
        "bearer without token": {"Authorization": "Bearer"},
        "bearer blank": {"Authorization": "Bearer    "},
        "valid key, wrong scheme": {"Authorization": f"Token {good}"},
        "valid key plus a character": {"Authorization": f"Bearer {good}x"},
        "valid key twice": {"Authorization": f"Bearer {good} {good}"},
        "key in another header": {"X-Api-Key": good},
        "huge token": {"Authorization": "Bearer " + "A" * 8000},
        "unknown key": {"Authorization": f"Bearer {new_api_key()}"},
        "revoked key": rig.auth("alpha-revoked"),
    }


def test_every_route_refuses_bad_keys_missing_scopes_and_other_workspaces_without_leaking(rig: Rig) -> None:
    writes_before = len(rig.gw.redis.keys("write:*"))
    failures: list[str] = []
    checked = 0
    for method, template in routes(rig):
        here, gone = concrete(template, rig.ids), concrete(template, MISSING)
        body_here, body_gone = body_for(method, template, rig, rig.ids), body_for(method, template, rig, MISSING)
        # 1. No valid key: 401, and the same answer whether the record exists or not.
        for name, headers in malformed_credentials(rig).items():
            a = call(rig, method, here, headers, body_here)
            b = call(rig, method, gone, headers, body_gone)
            checked += 2
            if a.status_code != 401 or normalized(a, rig.ids) != normalized(b, MISSING):
                failures.append(f"{method} {template} [{name}]: {normalized(a, rig.ids)} vs {normalized(b, MISSING)}")
        # 2. A key of this workspace without the route's scope: 403, no existence leak.
        scope = scope_of(method, template)
        lacking = {READ: "alpha-no-read", WRITE: "alpha-no-write", ADMIN: "alpha-no-admin"}[scope]
        a = call(rig, method, here, rig.auth(lacking), body_here)
        b = call(rig, method, gone, rig.auth(lacking), body_gone)
        checked += 2
        if a.status_code != 403 or normalized(a, rig.ids) != normalized(b, MISSING):
            failures.append(f"{method} {template} [without {scope}]: {a.status_code} vs {b.status_code} {a.text[:120]}")
        # 3. A key of another workspace with every scope: alpha's records look missing, and
        #    lists show none of alpha's records.
        if (method, template) in ENDLESS:
            continue
        a = call(rig, method, here, rig.auth("beta-admin"), body_here)
        b = call(rig, method, gone, rig.auth("beta-admin"), body_gone)
        checked += 2
        if "{" in template or body_here != body_gone:
            if a.status_code != 404 or normalized(a, rig.ids) != normalized(b, MISSING):
                failures.append(f"{method} {template} [other workspace]: {a.status_code} vs {b.status_code} {a.text[:160]}")
        else:
            leaked = [m for m in rig.alpha_markers if m in a.text]
            if a.status_code < 500 and leaked:
                failures.append(f"{method} {template} [other workspace]: shows {leaked}")
            if a.status_code >= 500:
                failures.append(f"{method} {template} [other workspace]: {a.status_code} {a.text[:160]}")
    # Filters naming alpha's records, asked by beta: 404, as for records that do not exist.
    beta = rig.auth("beta-admin")
    for path, params in [
        ("/v1/admin/audit", {"write_id": rig.ids["write_id"]}),
        ("/v1/admin/audit", {"ticket": rig.ids["ref"]}),
        ("/v1/tickets", {"connection": "cw-a"}),
    ]:
        response = rig.api.get(path, params=params, headers=beta)
        checked += 1
        if response.status_code != 404:
            failures.append(f"GET {path}?{params} [other workspace]: {response.status_code} {response.text[:160]}")
    print(f"\nsecurity matrix: {len(routes(rig))} routes, {checked} requests, {len(failures)} failures")
    assert not failures, "\n".join(failures)
    # Nobody without the right key managed to write, retry or discard anything.
    assert len(rig.gw.redis.keys("write:*")) == writes_before
    assert rig.gw.writes.get(rig.ids["write_id"]).status == "dead"


def test_admin_routes_need_the_admin_scope(rig: Rig) -> None:
    admin_routes = [(m, p) for m, p in routes(rig) if p.startswith("/v1/admin")]
    assert len(admin_routes) >= 5
    for method, template in admin_routes:
        path = concrete(template, rig.ids)
        response = call(rig, method, path, rig.auth("alpha-no-admin"), body_for(method, template, rig, rig.ids))
        assert response.status_code == 403, (method, template, response.text)
        assert "admin" in response.json()["detail"]
    assert rig.api.get("/v1/admin/dead-letters", headers=rig.auth("alpha-admin")).status_code == 200
