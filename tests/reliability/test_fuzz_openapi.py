"""schemathesis against the gateway's own OpenAPI (``/schema/openapi.json``): every operation,
valid and invalid data, with a valid admin key and without one. The API runs in uvicorn on
loopback (with its lifespan) in front of a real redis-server and the ConnectWise simulator.

- No 5xx: a server error on any generated request fails the run.
- Hostile cases: schemathesis' own cases for each operation with hostile values put in
  (``hostile.py``: bodies nested thousands deep, ids past Python's integer-string limit,
  ``nan``/``inf`` in cursors and numbers, megabyte values), each sent with a key and without.
- No response outside the schema: every answer's status, content type and body are checked
  against the operation's declared responses (a separate test).

``make test`` runs a few examples per operation; ``make fuzz`` (slow) runs many.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import hypothesis
import httpx
import pytest
import redis
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.api.app import create_app
from gateway.core import Gateway
from gateway.embedded_redis import EmbeddedRedis
from gateway.sync import synced_connections
from gateway.testing.workers import sync_until_idle
from gateway.testing.harness import ALL_SCOPES, new_api_key, settings_from

from hostile import BODY, CURSOR, QUERY_VALUE, REFERENCE_IDS
from reliability_kit import free_port, gateway_tables, serve_psas


@pytest.fixture(scope="module")
def served_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("fuzz-redis")).start()
    handles = serve_psas(["cw"])
    key = new_api_key()
    gw = Gateway(settings_from(gateway_tables(handles, {key: ALL_SCOPES}, timeout_seconds=5.0)),
                 redis.Redis.from_url(server.url))
    for connection in synced_connections(gw):  # a ready gateway: /ready answers 200, not 503
        sync_until_idle(gw, connection)
    port = free_port()
    api = uvicorn.Server(uvicorn.Config(create_app(gw), host="127.0.0.1", port=port, log_level="critical",
                                        lifespan="on", access_log=False))
    api.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=api.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not api.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    try:
        # Build the document once with a patient client (Litestar caches it): on a loaded machine
        # the first build can outlast schemathesis' own 10 s timeout.
        httpx.get(f"{base}/schema/openapi.json", timeout=120).raise_for_status()
        yield {"base": base, "key": key, "schema": schemathesis.openapi.from_url(f"{base}/schema/openapi.json"),
               "ticket": f"cw:{handles[0].sim.sample_ticket_id()}"}
    finally:
        api.should_exit = True
        thread.join(timeout=10)
        gw.close()
        handles[0].stop()
        server.stop()


HOSTILE = "hostile"


def hostile_cases(operation: Any) -> st.SearchStrategy[Any]:
    """schemathesis' valid cases for ``operation`` with hostile values put into every path
    parameter, some query parameters and (for a write) the body, sent as raw bytes."""

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        case = draw(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        for name in case.path_parameters or {}:
            vendor_id = draw(REFERENCE_IDS)
            case.path_parameters[name] = draw(st.sampled_from([vendor_id, f"cw:{vendor_id}"]))
        if case.query:
            for name in draw(st.lists(st.sampled_from(sorted(case.query)), max_size=3, unique=True)):
                case.query[name] = draw(CURSOR if name == "cursor" else QUERY_VALUE)
        elif any(p.get("name") == "cursor" for p in operation.definition.raw.get("parameters", [])):
            case.query = {"cursor": draw(CURSOR)}
        if operation.method.upper() == "POST" and draw(st.booleans()):
            case.body, case.media_type = draw(BODY), "application/octet-stream"
        return case

    return build()


# Answers that never end (Server-Sent Events): a client reading the whole body waits forever.
# tests/test_events.py reads the stream over HTTP, its errors included.
ENDLESS = {"GET /v1/events/stream"}


def fuzz(served: dict[str, Any], examples: int, checks: list[Any],
         modes: tuple[Any, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE, HOSTILE)) -> dict[str, Any]:
    """Run every operation with ``examples`` cases per (mode, key) pair; collect failures."""
    schema = served["schema"]
    failures: dict[str, list[str]] = defaultdict(list)
    statuses: Counter[int] = Counter()
    operations = 0
    keyed = {"Authorization": f"Bearer {served['key']}"}
    session = requests.Session()  # keep-alive: a new connection per case is most of the cost
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        label = f"{operation.method.upper()} {operation.path}"
        if label in ENDLESS:
            continue
        for mode in modes:
            strategy = hostile_cases(operation) if mode == HOSTILE else operation.as_strategy(generation_mode=mode)

            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[hypothesis.Phase.generate])
            @given(case=strategy)
            def run(case: Any) -> None:
                for headers in (keyed, {}):  # each case with a valid key, then without one
                    response = case.call(base_url=served["base"], session=session, headers=headers, timeout=30)
                    statuses[response.status_code] += 1
                    try:
                        case.validate_response(response, checks=checks)
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported below
                        found = getattr(exc, "exceptions", None) or [exc]
                        message = "; ".join(str(e).strip().splitlines()[0][:120] for e in found)
                        if len(failures[label]) < 3:
                            failures[label].append(f"[{getattr(mode, 'value', mode)}, {'key' if headers else 'no key'}] "
                                                   f"{response.status_code}: {message}")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                pass
    return {"operations": operations, "statuses": dict(sorted(statuses.items())), "failures": dict(failures)}


def _report(name: str, outcome: dict[str, Any]) -> str:
    lines = [f"{name}: {outcome['operations']} operations, statuses {outcome['statuses']}"]
    for label, found in outcome["failures"].items():
        lines += [f"  {label}"] + [f"    {f}" for f in found]
    return "\n".join(lines)


def test_fuzz_slice_no_operation_answers_a_server_error(served_api: dict[str, Any]) -> None:
    outcome = fuzz(served_api, examples=2, checks=[not_a_server_error])
    print("\n" + _report("schemathesis (fast slice)", outcome))
    assert outcome["operations"] >= 25
    assert not outcome["failures"], _report("server errors", outcome)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_fuzz_every_operation_many_examples_no_server_error(served_api: dict[str, Any]) -> None:
    outcome = fuzz(served_api, examples=100, checks=[not_a_server_error])
    print("\n" + _report("schemathesis (full)", outcome))
    assert not outcome["failures"], _report("server errors", outcome)


def test_fuzz_every_answer_is_inside_the_openapi_schema(served_api: dict[str, Any]) -> None:
    outcome = fuzz(served_api, examples=1, checks=[status_code_conformance, content_type_conformance,
                                                   response_schema_conformance],
                   modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE))
    print("\n" + _report("schemathesis (schema conformance)", outcome))
    assert not outcome["failures"], _report("answers outside the schema", outcome)
