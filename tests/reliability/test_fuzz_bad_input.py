"""Bad input gets a clear 4xx (``application/problem+json`` with a detail), never a 5xx:
oversize bodies, malformed JSON, wrong types, unknown references and hostile strings in every
field, against each PSA. A hostile string in a free-text field is content, so 202 is right
there; in a reference, an id or a picklist value it is a 4xx.

Four classes are also *generated* across every route of the OpenAPI document, with a key and
without one (hypothesis): bodies nested hundreds to thousands deep, vendor ids past Python's
integer-string limit, non-finite numbers (``nan``, ``inf``) in cursors and numeric fields, and
field values of a megabyte. Without a key every route but the public ones answers 401 before
reading the body; with one, nothing is a 5xx and no error is larger than a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import redis
from gateway_atera.simulator import AteraSimulator
from gateway_hudu.simulator import HuduSimulator
from gateway_itglue.simulator import ITGlueSimulator
from gateway_ninjaone.simulator import NinjaOneSimulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from

from hostile import BODY, CURSOR, HUGE_DIGITS, NON_FINITE, QUERY_VALUE, REFERENCE_IDS, nested
from reliability_kit import SimHandle, gateway_tables, serve_psas

HOSTILE = [
    "'; DROP TABLE tickets;--", "<script>alert(1)</script>", "../../../../etc/passwd", "\x00nul", "\u202eevil",
    "${jndi:ldap://127.0.0.1:1/a}", "{{7*7}}", "%s%s%s%n", "😀" * 50, "A" * 300, " ", "null", "[]", "-1",
    "1 OR 1=1", "x\r\nSet-Cookie: a=b", "\\u0000", "0x7fffffff", "1e309", "cw:1",
]


OTHER_TOOLS = {"ninja": NinjaOneSimulator, "atera": AteraSimulator, "hudu": HuduSimulator, "itglue": ITGlueSimulator}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from gateway.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("bad-input-redis")).start()
    handles = serve_psas()
    for name, simulator in OTHER_TOOLS.items():  # RMM and docs connections: alert and customer routes
        sim = simulator()
        sim.seed_demo()
        handles.append(SimHandle(name, sim, sim.serve_in_thread(), None))  # type: ignore[arg-type]
    key = new_api_key()
    gw = Gateway(settings_from(gateway_tables(handles, {key: ALL_SCOPES}, timeout_seconds=5.0)),
                 redis.Redis.from_url(server.url))
    try:
        with TestClient(create_app(gw)) as api:
            yield {"api": api, "handles": {h.connection: h for h in handles}, "gw": gw,
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


# --------------------------------------------------------------------------- every route, four classes

# No API key: probes, and the webhook (its signature is its credential).
PUBLIC_OPERATIONS = {"health", "ready", "receiveWebhook"}
CONNECTIONS = ["cw", "at", "halo", *OTHER_TOOLS]
VALID_BODIES = {  # a body each write route accepts, so only the reference is wrong
    "createReply": {"text": "x"}, "changeStatus": {"status_id": "1"}, "createTimeEntry": {"minutes": 5},
    "alertAction": {"action": "resolve"}, "ticketAlertAction": {"action": "resolve"},
}


# Answers that never end (Server-Sent Events): the in-process client reads a whole body and
# would wait forever. tests/test_events.py reads the stream over HTTP, its errors included.
ENDLESS = {("GET", "/v1/events/stream")}


def operations(api: TestClient) -> list[tuple[str, str, str, list[dict[str, Any]]]]:
    """Every operation of the OpenAPI document but the endless ones: (method, path template,
    operation id, parameters)."""
    spec = api.get("/schema/openapi.json").json()
    return [(method.upper(), path, op["operationId"], op.get("parameters", []))
            for path, ops in spec["paths"].items() for method, op in ops.items()
            if (method.upper(), path) not in ENDLESS]


def fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def vendor_calls(served: dict[str, Any]) -> int:
    return sum(h.sim.stats["requests"] for h in served["handles"].values())


def test_deeply_nested_bodies_are_a_400_naming_the_limit_and_need_a_key_first(served: dict[str, Any]) -> None:
    api, headers = served["api"], served["headers"]
    ref = f"cw:{served['handles']['cw'].sim.sample_ticket_id()}"
    values = {"ref": ref, "write_id": "w_" + "0" * 32, "connection_id": "cw", "customer_id": "cw:250"}
    posts = [(fill(path, values), op) for method, path, op, _ in operations(api) if method == "POST"]
    assert len(posts) >= 9
    for path, op in posts:
        bodies = [(nested(1_000, "array"), "application/json"), (nested(5_000, "object"), "application/json"),
                  (nested(3_000, "mixed"), "application/json"), (nested(65, "array"), "application/json"),
                  (nested(2_000, "array"), "text/plain")]  # Litestar decodes JSON whatever the type says
        for body, content_type in bodies:
            keyed = api.post(path, content=body, headers={**headers, "content-type": content_type})
            clear_4xx(keyed, f"{op} depth {body[:12]!r}")
            assert keyed.status_code == 400 and "64 levels" in keyed.json()["detail"], (op, keyed.text[:200])
            bare = api.post(path, content=body, headers={"content-type": content_type})
            assert bare.status_code == (400 if op in PUBLIC_OPERATIONS else 401), (op, bare.text[:200])
        # 64 levels is allowed: whatever the route says then, it is not about depth.
        fine = api.post(path, content=nested(64, "array"), headers={**headers, "content-type": "application/json"})
        assert "levels" not in fine.text, (op, fine.text[:200])


def test_references_whose_id_cannot_exist_are_404_without_a_vendor_call(served: dict[str, Any]) -> None:
    api, headers = served["api"], served["headers"]
    ref_operations = [(m, p, op) for m, p, op, params in operations(api) if any(x["name"] == "ref" for x in params)]
    assert len(ref_operations) >= 12
    impossible = ["9" * 4_301, "9" * 20_000, "nan", "inf", "-1", "²", "١٢", "9" * 20]
    int32 = ["2147483648", "1" + "0" * 10]  # past ConnectWise's, Halo's and NinjaOne's int32 ids
    api.get("/v1/connections/cw/ticket-form", headers=headers)  # the form a new ticket is checked against, cached
    before = vendor_calls(served)
    for connection in CONNECTIONS:
        for vendor_id in impossible + (int32 if connection in ("cw", "halo", "ninja") else []):
            ref = f"{connection}:{vendor_id}"
            for method, template, op in ref_operations:
                path = fill(template, {"ref": ref, "attachment_id": "1"})
                response = api.request(method, path, json=VALID_BODIES.get(op), headers=headers)
                clear_4xx(response, f"{op} {ref[:30]}")
                assert response.status_code in (400, 404), (op, ref[:30], response.status_code)
            attachment = api.get(f"/v1/tickets/{connection}:1/attachments/{'9' * 5_000}", headers=headers)
            assert attachment.status_code in (404, 501), attachment.text[:200]
            clear_4xx(api.get("/v1/admin/audit", params={"ticket": ref}, headers=headers), f"audit {ref[:30]}")
            linked = api.post("/v1/tickets", json={"connection": "cw", "summary": "x", "alert": ref,
                                                   "fields": served["handles"]["cw"].sim.minimal_create_fields()},
                              headers=headers)
            clear_4xx(linked, f"create ticket linked to {ref[:30]}")
    assert vendor_calls(served) == before, "an impossible id reached a vendor"


def test_a_rejected_value_is_named_and_cut_never_echoed_whole(served: dict[str, Any]) -> None:
    api, headers = served["api"], served["headers"]
    ref = f"cw:{served['handles']['cw'].sim.sample_ticket_id()}"
    huge = "x" * (5 * 1024 * 1024)
    form = api.get("/v1/connections/cw/ticket-form", headers=headers).json()
    picklist = next(f["name"] for f in form["fields"] if f.get("options") and f["name"] != "summary")
    fields = {**served["handles"]["cw"].sim.minimal_create_fields(), picklist: huge}
    cases = [
        ("a 5 MB form field", "POST", "/v1/tickets", {"json": {"connection": "cw", "summary": "x", "fields": fields}}, picklist),
        ("a 5 MB unknown field name", "POST", "/v1/tickets",
         {"json": {"connection": "cw", "summary": "x", "fields": {huge: 1}}}, "is not a field"),
        ("a 5 MB alert action", "POST", "/v1/alerts/ninja:1/actions", {"json": {"action": huge}}, "action"),
        ("a 5 MB status id", "POST", f"/v1/tickets/{ref}/status", {"json": {"status_id": huge}}, "status_id"),
        ("a 5 MB unknown body field", "POST", f"/v1/tickets/{ref}/status", {"json": {huge: 1}}, "unknown field"),
        ("a 5 MB multipart status id", "POST", f"/v1/tickets/{ref}/replies",
         {"data": {"text": "x", "status_id": huge}, "files": {"files": ("a.txt", b"a")}}, "status_id"),
        ("a 60 kB query value", "GET", "/v1/tickets", {"params": {"sort": huge[:60_000]}}, "sort"),
        ("a 60 kB reference", "GET", f"/v1/tickets/{huge[:60_000]}", {}, "reference"),
    ]
    for what, method, path, kwargs, named in cases:
        response = api.request(method, path, headers=headers, **kwargs)
        clear_4xx(response, what)
        assert len(response.content) < 4_000, f"{what}: a {len(response.content):,}-byte error"
        assert named in response.text, f"{what}: {response.text[:300]}"


def test_resync_is_refused_for_connections_that_keep_no_tickets(served: dict[str, Any]) -> None:
    api, headers = served["api"], served["headers"]
    for connection in OTHER_TOOLS:
        response = api.post(f"/v1/admin/connections/{connection}/resync", headers=headers)
        clear_4xx(response, f"resync {connection}")
        assert response.status_code == 409 and "PSA" in response.json()["detail"], response.text
    assert api.post("/v1/admin/connections/cw/resync", headers=headers).status_code == 202


# Generated: hypothesis picks the route and the hostile values (strategies in hostile.py).


def hostile_case(operation: tuple[str, str, str, list[dict[str, Any]]]) -> st.SearchStrategy[dict[str, Any]]:
    """A request to ``operation`` with every path parameter, some query parameters and (for a
    write) the body drawn from the hostile classes."""
    method, template, op, params = operation
    reference = st.one_of(st.tuples(st.sampled_from(CONNECTIONS), REFERENCE_IDS).map(":".join), REFERENCE_IDS)
    path = {p["name"]: (reference if p["name"] in ("ref", "customer_id") else st.one_of(HUGE_DIGITS, NON_FINITE))
            for p in params if p["in"] == "path"}
    query = [p["name"] for p in params if p["in"] == "query"]
    return st.fixed_dictionaries({
        "operation": st.just(operation),
        "path": st.fixed_dictionaries(path),
        "query": st.dictionaries(st.sampled_from(query), st.one_of(QUERY_VALUE, CURSOR), max_size=3) if query else st.just({}),
        "body": BODY if method == "POST" else st.none(),
    })


def check_hostile(served: dict[str, Any], case: dict[str, Any]) -> None:
    api = served["api"]
    method, template, op, _ = case["operation"]
    path = fill(template, case["path"])
    what = f"{method} {template} {str(case['path'])[:60]} {str(case['query'])[:60]} {(case['body'] or b'')[:40]!r}"
    for headers in (served["headers"], {}):
        if case["body"] is not None:
            headers = {**headers, "content-type": "application/json"}
        response = api.request(method, path, params=case["query"], content=case["body"], headers=headers)
        if not headers.get("Authorization") and op not in PUBLIC_OPERATIONS:
            assert response.status_code == 401, f"{what} without a key: {response.status_code}"
        if op == "ready" and response.status_code == 503:
            continue  # the documented answer of a gateway still on its first backfill
        not_a_server_error(response, what)
        assert len(response.content) < 16_000 or response.status_code < 400, f"{what}: a {len(response.content):,}-byte error"


def _fuzz_every_route(served: dict[str, Any], examples: int) -> None:
    ops = operations(served["api"])

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
    @given(case=st.sampled_from(ops).flatmap(hostile_case))
    def run(case: dict[str, Any]) -> None:
        check_hostile(served, case)

    run()


def test_generated_hostile_input_on_every_route_is_never_a_server_error(served: dict[str, Any]) -> None:
    _fuzz_every_route(served, examples=120)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_generated_hostile_input_many_examples_is_never_a_server_error(served: dict[str, Any]) -> None:
    _fuzz_every_route(served, examples=1_500)
