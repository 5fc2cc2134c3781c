"""The HTTP API: keys and scopes, workspace isolation, clear errors, reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.testing.conformance import Env
from gateway.testing.harness import connection_config, settings_from, workspace_config
from gateway.settings import hash_key

KEYS = {
    "reader": ["tickets:read"],
    "writer": ["tickets:read", "tickets:write"],
    "admin": ["tickets:read", "tickets:write", "admin"],
    "other-ws": ["tickets:read", "tickets:write", "admin"],
}


@pytest.fixture
def two_workspaces(redis_client: redis.Redis) -> Iterator[tuple[TestClient, ConnectWiseSimulator]]:
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    server = sim.serve_in_thread()
    conn = sim.demo_connection(server.base_url)
    tables = {"workspaces": [
        workspace_config("alpha", [connection_config("cw-a", conn)],
                         {"reader": KEYS["reader"], "writer": KEYS["writer"], "admin": KEYS["admin"]}),
        workspace_config("beta", [connection_config("cw-b", conn)], {"other-ws": KEYS["other-ws"]}),
    ]}
    tables["workspaces"][0]["api_keys"].append({"name": "old", "sha256": hash_key("revoked"), "scopes": KEYS["admin"], "revoked": True})
    gw = Gateway(settings_from(tables), redis_client)
    with TestClient(create_app(gw)) as client:
        yield client, sim
    gw.close()
    server.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_key_malformed_key_unknown_key_and_revoked_key_are_401(two_workspaces) -> None:
    client, _ = two_workspaces
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}, auth("nope"), auth("revoked")):
        response = client.get("/v1/plugins", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers.get("www-authenticate") == "Bearer"


def test_a_key_without_the_scope_is_403(two_workspaces) -> None:
    client, sim = two_workspaces
    ticket = sim.sample_ticket_id()
    assert client.post(f"/v1/tickets/cw-a:{ticket}/replies", json={"text": "x"}, headers=auth("reader")).status_code == 403
    assert client.get("/v1/admin/dead-letters", headers=auth("writer")).status_code == 403
    assert client.get("/v1/admin/audit", headers=auth("writer")).status_code == 403
    assert client.get("/v1/admin/dead-letters", headers=auth("admin")).status_code == 200


def test_another_workspaces_records_look_like_missing_ones(two_workspaces) -> None:
    client, sim = two_workspaces
    ticket = sim.sample_ticket_id()
    write = client.post(f"/v1/tickets/cw-a:{ticket}/replies", json={"text": "mine"}, headers=auth("writer")).json()
    foreign = client.get(f"/v1/tickets/cw-a:{ticket}", headers=auth("other-ws"))
    missing = client.get("/v1/tickets/cw-zz:1", headers=auth("other-ws"))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["title"] == missing.json()["title"]
    assert client.get(f"/v1/writes/{write['write_id']}", headers=auth("other-ws")).status_code == 404
    assert client.post(f"/v1/tickets/cw-a:{ticket}/replies", json={"text": "x"}, headers=auth("other-ws")).status_code == 404
    assert client.get("/v1/connections/cw-a/ticket-form", headers=auth("other-ws")).status_code == 404
    assert client.get("/v1/admin/audit", params={"write_id": write["write_id"]}, headers=auth("other-ws")).status_code == 404
    assert [c["id"] for c in client.get("/v1/connections", headers=auth("other-ws")).json()] == ["cw-b"]


def test_bad_bodies_get_clear_400s(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    path = f"/v1/tickets/{cw.ref(ticket)}/replies"
    cases = [
        (b"{not json", "application/json"),
        (b'{"text": 5}', "application/json"),
        (b'{"text": ""}', "application/json"),
        (b'{"text": "x", "colour": "red"}', "application/json"),
    ]
    for body, content_type in cases:
        response = cw.api.post(path, content=body, headers={**cw.headers, "Content-Type": content_type})
        assert response.status_code == 400, (body, response.text)
        assert response.json()["detail"]
    status = cw.post(f"/v1/tickets/{cw.ref(ticket)}/status", {"status_id": 5})
    assert status.status_code == 400
    time = cw.post(f"/v1/tickets/{cw.ref(ticket)}/time-entries", {"minutes": 0})
    assert time.status_code == 400 and "minutes" in time.json()["detail"]


def test_bad_and_unknown_references(cw: Env) -> None:
    assert cw.get("/v1/tickets/no-colon").status_code == 400
    assert cw.get("/v1/tickets/conf:999999").status_code == 404
    assert cw.post("/v1/tickets/conf:999999/replies", {"text": "x"}).status_code == 404
    assert cw.get("/v1/writes/w_doesnotexist").status_code == 404
    too_long = cw.post(f"/v1/tickets/{cw.ref(cw.sim.sample_ticket_id())}/replies", {"text": "x"}, key="k" * 300)
    assert too_long.status_code == 400


def test_an_attachment_over_connectwise_10_mb_cap_is_413_naming_the_cap(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    response = cw.api.post(
        f"/v1/tickets/{cw.ref(ticket)}/replies", headers=cw.headers, data={"text": "big"},
        files={"files": ("big.bin", b"\0" * int(10.5 * 1024 * 1024), "application/octet-stream")},
    )
    assert response.status_code == 413
    problem = response.json()
    assert "10,485,760 bytes" in problem["detail"] and "connectwise" in problem["detail"]
    assert problem["extra"]["cap_bytes"] == 10 * 1024 * 1024


def test_plugins_and_health_show_what_is_installed(cw: Env) -> None:
    plugins = cw.get("/v1/plugins").json()
    connectwise = next(p for p in plugins["plugins"] if p["vendor"] == "connectwise")
    assert "reply" in connectwise["capabilities"] and "reply_with_status" not in connectwise["capabilities"]
    assert connectwise["attachment_cap_bytes"] == 10 * 1024 * 1024
    health = cw.api.get("/health").json()
    assert health["redis"] is True


def test_a_ticket_reads_with_its_thread_and_internal_notes_marked(cw: Env) -> None:
    ticket = cw.sim.sample_ticket_id()
    cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "visible to the customer"})
    cw.post(f"/v1/tickets/{cw.ref(ticket)}/replies", {"text": "techs only", "internal": True})
    cw.drain()
    body = cw.get(f"/v1/tickets/{cw.ref(ticket)}").json()
    assert body["ref"] == cw.ref(ticket) and body["status"]["category"]
    entries = {e["text"]: e["internal"] for e in body["thread"]}
    assert entries["visible to the customer"] is False and entries["techs only"] is True


def test_the_queue_lists_synced_tickets_of_every_psa_connection(cw: Env) -> None:
    cw.sync()
    body = cw.get("/v1/tickets", params={"limit": 500}).json()
    assert body["tickets"] and all(t["connection"] == "conf" for t in body["tickets"])
    open_only = cw.get("/v1/tickets", params={"category": ["new", "in_progress", "awaiting_customer"], "limit": 500}).json()
    assert open_only["tickets"] and all(t["status"]["category"] not in {"closed", "resolved"} for t in open_only["tickets"])


def test_the_openapi_schema_is_served(cw: Env) -> None:
    schema = cw.api.get("/schema/openapi.json").json()
    assert "/v1/tickets/{ref}/replies" in schema["paths"]
    assert schema["paths"]["/v1/tickets/{ref}/replies"]["post"]["operationId"] == "createReply"
