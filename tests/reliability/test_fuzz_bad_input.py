"""Bad input gets a clear 4xx (``application/problem+json`` with a detail), never a 5xx:
oversize bodies, malformed JSON, wrong types, unknown references and hostile strings in every
field, against each PSA. A hostile string in a free-text field is content, so 202 is right
there; in a reference, an id or a picklist value it is a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from

from reliability_kit import SimHandle, gateway_tables, serve_psas

HOSTILE = [
    "'; DROP TABLE tickets;--", "<script>alert(1)</script>", "../../../../etc/passwd", "\x00nul", "\u202eevil",
    "${jndi:ldap://127.0.0.1:1/a}", "{{7*7}}", "%s%s%s%n", "😀" * 50, "A" * 300, " ", "null", "[]", "-1",
    "1 OR 1=1", "x\r\nSet-Cookie: a=b", "\\u0000", "0x7fffffff", "1e309", "cw:1",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from gateway.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("bad-input-redis")).start()
    handles = serve_psas()
    key = new_api_key()
    gw = Gateway(settings_from(gateway_tables(handles, {key: ALL_SCOPES}, timeout_seconds=5.0)),
                 redis.Redis.from_url(server.url))
    try:
        with TestClient(create_app(gw)) as api:
            yield {"api": api, "handles": {h.connection: h for h in handles},
                   "headers": {"Authorization": f"Bearer {key}"}}
    finally:
        gw.close()
        for h in handles:
            h.stop()
        server.stop()


def clear_4xx(response: Any, what: str) -> None:
    assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/problem+json"), what
    problem = response.json()
    assert problem["status"] == response.status_code and problem["title"] and problem["detail"], what


def not_a_server_error(response: Any, what: str) -> None:
    assert response.status_code < 500 or response.status_code == 501, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        clear_4xx(response, what)


def test_malformed_json_wrong_types_and_oversize_bodies_are_clear_400s_and_413s(served: dict[str, Any]) -> None:
    api, headers = served["api"], served["headers"]
    h: SimHandle = served["handles"]["cw"]
    ref = f"cw:{h.sim.sample_ticket_id()}"
    json_headers = {**headers, "Content-Type": "application/json"}
    malformed = [b"{", b'{"text": "x"', b"[]", b"null", b'"text"', b"\xff\xfe\x00", b"{'text': 'x'}",
                 b'{"text": "x", "text": 5}', b"", b"{" * 10_000]
    for path in (f"/v1/tickets/{ref}/replies", f"/v1/tickets/{ref}/status", f"/v1/tickets/{ref}/time-entries", "/v1/tickets"):
        for body in malformed:
            clear_4xx(api.post(path, content=body, headers=json_headers), f"{path} {body[:20]!r}")
    wrong_types = {
        f"/v1/tickets/{ref}/replies": [{"text": 5}, {"text": "x", "internal": "yes"}, {"text": "x", "status_id": []},
                                      {"text": ""}, {"text": "x" * 70_000}, {"text": "x", "extra": 1}, {}],
        f"/v1/tickets/{ref}/status": [{"status_id": 5}, {"status_id": None}, {"status_id": ""}, {"status_id": "1" * 201}, {}],
        f"/v1/tickets/{ref}/time-entries": [{"minutes": "five"}, {"minutes": 0}, {"minutes": 10**9}, {"minutes": 1.5},
                                           {"minutes": 5, "started_at": "yesterday"}, {"minutes": 5, "billable": "no"}],
        "/v1/tickets": [{"connection": 5, "summary": "x"}, {"connection": "cw", "summary": ""},
                        {"connection": "cw", "summary": "x", "fields": "x"}, {"connection": "cw"},
                        {"connection": "cw", "summary": "x" * 501}],
        "/v1/alerts/cw:1/actions": [{"action": "explode"}, {"action": 1}, {}],
    }
    for path, bodies in wrong_types.items():
        for body in bodies:
            clear_4xx(api.post(path, json=body, headers=headers), f"{path} {str(body)[:60]}")
    # Bodies past the framework's limit: a clear 413, not a dropped connection or a 500.
    huge = b'{"status_id": "' + b"1" * (11 * 1024 * 1024) + b'"}'
    response = api.post(f"/v1/tickets/{ref}/status", content=huge, headers=json_headers)
    clear_4xx(response, "11 MB status body")
    assert response.status_code == 413
    # Query parameters of the wrong type.
    for path, params in [("/v1/tickets", {"limit": "many"}), ("/v1/admin/dead-letters", {"offset": "x"}),
                         ("/v1/admin/audit", {"limit": "-"}), ("/v1/connections/cw/ticket-form", {"refresh": "perhaps"})]:
        clear_4xx(api.get(path, params=params, headers=headers), f"{path} {params}")
    # Numbers past 64 bits (schemathesis found a 500 here: Redis refuses such an index).
    for path, params in [("/v1/admin/dead-letters", {"offset": str(10**20)}), ("/v1/admin/dead-letters", {"limit": str(-10**20)}),
                         ("/v1/admin/dead-letters", {"limit": str(10**20), "offset": str(2**63)}),
                         ("/v1/admin/audit", {"limit": str(10**30)}), ("/v1/tickets", {"limit": str(10**30)})]:
        not_a_server_error(api.get(path, params=params, headers=headers), f"{path} {params}")
    # Idempotency keys out of bounds.
    clear_4xx(api.post(f"/v1/tickets/{ref}/replies", json={"text": "x"}, headers={**headers, "Idempotency-Key": "k" * 256}),
              "a 256-character Idempotency-Key")


UNKNOWN_REFS = ["999999999", "0", "-1", "abc", "1.5", "1e3", " 1", "1 ", "%00", "1;2", "1,2"]


@pytest.mark.parametrize("connection", [
    "cw", "at",
    "halo",
])
def test_unknown_and_hostile_references_are_clear_4xx(served: dict[str, Any], connection: str) -> None:
    api, headers = served["api"], served["headers"]
    ids = UNKNOWN_REFS + [v for v in HOSTILE if "/" not in v and "\r" not in v and "\x00" not in v]
    for vendor_id in ids:
        ref = f"{connection}:{vendor_id}"
        for response, what in [
            (api.get(f"/v1/tickets/{ref}", headers=headers), f"GET ticket {ref!r}"),
            (api.get(f"/v1/tickets/{ref}/statuses", headers=headers), f"GET statuses {ref!r}"),
            (api.post(f"/v1/tickets/{ref}/replies", json={"text": "x"}, headers=headers), f"reply to {ref!r}"),
            (api.post(f"/v1/tickets/{ref}/status", json={"status_id": "1"}, headers=headers), f"status of {ref!r}"),
            (api.post(f"/v1/tickets/{ref}/time-entries", json={"minutes": 5}, headers=headers), f"time on {ref!r}"),
        ]:
            clear_4xx(response, what)
    for bad in ("no-colon", f"{connection}:", f":{connection}", "nope:1"):
        clear_4xx(api.get(f"/v1/tickets/{bad}", headers=headers), f"GET ticket {bad!r}")
    for write_id in ("w_nope", "x", "w_" + "f" * 32, "w_../../x"):
        clear_4xx(api.get(f"/v1/writes/{write_id}", headers=headers), f"write {write_id!r}")


@pytest.mark.parametrize("connection", ["cw", "at", "halo"])
def test_hostile_strings_in_every_field_are_content_or_a_clear_4xx(served: dict[str, Any], connection: str) -> None:
    api, headers = served["api"], served["headers"]
    h: SimHandle = served["handles"][connection]
    ref = f"{connection}:{h.sim.sample_ticket_id()}"
    for value in HOSTILE:
        cases = [
            (f"/v1/tickets/{ref}/replies", {"text": value}),
            (f"/v1/tickets/{ref}/replies", {"text": "x", "internal": True, "status_id": value}),
            (f"/v1/tickets/{ref}/status", {"status_id": value}),
            (f"/v1/tickets/{ref}/time-entries", {"minutes": 5, "notes": value, "member": value}),
            ("/v1/tickets", {"connection": connection, "summary": value, "description": value,
                             "customer_id": value, "fields": {**h.sim.minimal_create_fields(), "summary": value}}),
            ("/v1/tickets", {"connection": connection, "summary": "x", "fields": {value: value}}),
            ("/v1/tickets", {"connection": value, "summary": "x"}),
            ("/v1/tickets", {"connection": connection, "summary": "x", "alert": value,
                             "fields": h.sim.minimal_create_fields()}),
        ]
        for path, body in cases:
            not_a_server_error(api.post(path, json=body, headers=headers), f"{path} {str(body)[:80]}")
        # Picklist-checked fields never accept the hostile value.
        clear_4xx(api.post(f"/v1/tickets/{ref}/status", json={"status_id": value}, headers=headers), f"status {value!r}")
        for path, params in [("/v1/tickets", {"q": value, "connection": connection}), ("/v1/admin/audit", {"ticket": value}),
                             ("/v1/admin/audit", {"write_id": value}), ("/v1/tickets", {"cursor": value})]:
            not_a_server_error(api.get(path, params=params, headers=headers), f"GET {path} {params}")
        if not any(c in value for c in "\r\n\x00"):
            raw = {**headers, "Idempotency-Key": value.encode("utf-8")}  # sent as raw UTF-8 bytes
            not_a_server_error(api.post(f"/v1/tickets/{ref}/replies", json={"text": "idem"}, headers=raw),
                               f"Idempotency-Key {value!r}")
