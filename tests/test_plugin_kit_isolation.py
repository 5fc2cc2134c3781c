"""A broken vendor package never takes the gateway down.

Each broken plugin here is a real distribution as the loader sees one: a module on
``sys.path`` and a ``.dist-info`` folder whose ``entry_points.txt`` names it in the
``msp_gateway`` group. The gateway must start, name the plugin and the reason in
``GET /v1/plugins`` and ``GET /health``, and keep serving every other vendor.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from gateway_connectwise.simulator import ConnectWiseSimulator

from gateway.plugins import load_plugins, simulator_factories
from gateway.testing.conformance import Env, build_env

GATE = "kit_isolation_gate"  # a module the hanging plugins wait on, released at teardown

RAISES = 'raise RuntimeError("the vendor SDK could not start")\n'
MISSING = "import msp_gateway_kit_no_such_sdk  # a dependency that is not installed\n"
HANGS = f"import {GATE}\n{GATE}.release.wait(30)\n"
REGISTRATION_RAISES = """
from gateway import hookimpl

@hookimpl
def gateway_register_vendors():
    raise ValueError("licence file not found")
"""
REGISTRATION_HANGS = f"""
import {GATE}
from gateway import hookimpl

@hookimpl
def gateway_register_vendors():
    {GATE}.release.wait(30)
    return []
"""
MISSPELT_HOOK = """
from gateway import hookimpl

@hookimpl
def gateway_ticket_lst(client, query):
    return None
"""
SYSTEM_EXIT = "import sys\nsys.exit(3)\n"


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    module = types.ModuleType(GATE)
    module.release = threading.Event()  # type: ignore[attr-defined]
    sys.modules[GATE] = module
    yield module.release  # type: ignore[attr-defined]
    module.release.set()  # type: ignore[attr-defined]
    for thread in threading.enumerate():
        if thread.name.startswith("plugin-load"):
            thread.join(timeout=5)
    del sys.modules[GATE]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gate: threading.Event) -> Iterator[Callable[..., None]]:
    """``install(name, source)``: a distribution whose ``msp_gateway`` entry point ``name`` is a
    module with ``source`` (and, with ``simulator=True``, a simulator entry point into it)."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def add(name: str, source: str, *, simulator: bool = False) -> None:
        module = f"kit_isolation_{name}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"msp_gateway_{name}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: msp-gateway-{name}\nVersion: 0.1.0\n")
        points = f"[msp_gateway]\n{name} = {module}\n"
        if simulator:
            points += f"\n[msp_gateway.simulators]\n{name} = {module}:Simulator\n"
        (info / "entry_points.txt").write_text(points)
        modules.append(module)
        importlib.invalidate_caches()

    yield add
    for module in modules:
        sys.modules.pop(module, None)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (RAISES, "RuntimeError: the vendor SDK could not start"),
        (MISSING, "missing dependency: 'msp_gateway_kit_no_such_sdk' is not installed"),
        (REGISTRATION_RAISES, "ValueError: licence file not found"),
        (MISSPELT_HOOK, "gateway_ticket_lst"),
        (SYSTEM_EXIT, "SystemExit: 3"),
    ],
    ids=["raises-at-import", "missing-dependency", "raises-in-register-vendors", "misspelt-hook", "exits-at-import"],
)
def test_a_broken_plugin_is_reported_and_the_others_still_load(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch, source: str, reason: str
) -> None:
    install("kitbroken", source)
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "connectwise,hudu,kitbroken")

    loaded = load_plugins()

    assert [(b.name, reason in b.error) for b in loaded.broken] == [("kitbroken", True)], loaded.broken
    assert sorted(loaded.vendors) == ["connectwise", "hudu"]
    assert "kitbroken" not in [loaded.pm.get_name(p) for p in loaded.pm.get_plugins()]


def test_an_entry_point_naming_a_module_that_does_not_exist_says_so(
    install: Callable[..., None], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install("kittypo", "")
    points = tmp_path / "site" / "msp_gateway_kittypo-0.1.0.dist-info" / "entry_points.txt"
    points.write_text("[msp_gateway]\nkittypo = kit_isolation_kittypo_hookz\n")
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "kittypo")

    [broken] = load_plugins().broken

    assert "names 'kit_isolation_kittypo_hookz'" in broken.error and "missing dependency" not in broken.error


def test_a_plugin_that_hangs_at_import_is_reported_without_waiting_again(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch, gate: threading.Event
) -> None:
    install("kithangs", HANGS, simulator=True)
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "connectwise,kithangs")
    monkeypatch.setenv("GATEWAY_PLUGIN_LOAD_TIMEOUT", "0.3")

    first = load_plugins()
    second = load_plugins()  # a worker starting later: the import is still stuck

    assert [b.name for b in first.broken] == ["kithangs"]
    assert "did not finish within 0.3 s" in first.broken[0].error
    assert "still running" in second.broken[0].error
    assert sorted(first.vendors) == sorted(second.vendors) == ["connectwise"]
    assert sorted(simulator_factories()) == ["connectwise"]  # the demo skips it too

    gate.set()  # the import finishes after all: the next load picks the plugin up
    for thread in threading.enumerate():
        if thread.name.startswith("plugin-load"):
            thread.join(timeout=5)
    assert load_plugins().broken == []


def test_a_plugin_that_hangs_in_register_vendors_is_reported(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    install("kitstalls", REGISTRATION_HANGS)
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "connectwise,kitstalls")
    monkeypatch.setenv("GATEWAY_PLUGIN_LOAD_TIMEOUT", "0.3")

    loaded = load_plugins()

    assert [b.name for b in loaded.broken] == ["kitstalls"]
    assert "gateway_register_vendors did not finish within 0.3 s" in loaded.broken[0].error
    assert sorted(loaded.vendors) == ["connectwise"]


@pytest.fixture
def cw_beside_broken(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> Iterator[Env]:
    """A gateway with a ConnectWise connection, started while four other plugins are broken."""
    install("kitraises", RAISES)
    install("kitmissing", MISSING)
    install("kithangs2", HANGS)
    install("kitregister", REGISTRATION_RAISES)
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "connectwise,kitraises,kitmissing,kithangs2,kitregister")
    monkeypatch.setenv("GATEWAY_PLUGIN_LOAD_TIMEOUT", "0.3")
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    yield from build_env(sim, redis_client, connection="cw")


def test_the_gateway_starts_reports_broken_plugins_and_keeps_serving_the_others(cw_beside_broken: Env) -> None:
    env = cw_beside_broken
    broken = {"kitraises", "kitmissing", "kithangs2", "kitregister"}

    plugins = env.get("/v1/plugins")
    assert plugins.status_code == 200, plugins.text
    reasons = {b["name"]: b["error"] for b in plugins.json()["broken"]}
    assert set(reasons) == broken
    assert "missing dependency" in reasons["kitmissing"] and "hung" in reasons["kithangs2"]
    assert [p["vendor"] for p in plugins.json()["plugins"]] == ["connectwise"]

    health = env.get("/health").json()
    assert health["status"] == "degraded" and set(health["broken_plugins"]) == broken

    ticket = env.sim.sample_ticket_id()
    response = env.post(f"/v1/tickets/{env.ref(ticket)}/replies", {"text": "still working"}, key="iso-1")
    assert response.status_code == 202, response.text
    env.drain()
    assert [n["text"] for n in env.sim.ticket_notes(ticket)].count("still working") == 1


def test_a_connection_of_a_broken_plugin_answers_503_and_the_others_keep_working(
    install: Callable[..., None], monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis
) -> None:
    from litestar.testing import TestClient

    from gateway.api.app import create_app
    from gateway.core import Gateway
    from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config

    install("kitraises", RAISES)
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "connectwise,kitraises")
    sim = ConnectWiseSimulator()
    sim.seed_demo()
    server = sim.serve_in_thread()
    key = new_api_key()
    conns = [
        connection_config("cw", sim.demo_connection(server.base_url)),
        {"id": "acme-broken", "vendor": "kitraises", "base_url": "https://psa.example.invalid"},
    ]
    gw = Gateway(settings_from({"workspaces": [workspace_config("w", conns, {key: ALL_SCOPES})]}), redis_client)
    try:
        with TestClient(create_app(gw)) as api:
            headers = {"Authorization": f"Bearer {key}"}
            down = api.post("/v1/tickets/acme-broken:1/replies", json={"text": "x"}, headers=headers)
            assert down.status_code == 503 and "kitraises plugin failed to load" in down.json()["detail"]
            assert api.get("/health").json()["unavailable_connections"] == ["acme-broken"]
            ticket = sim.sample_ticket_id()
            assert api.post(f"/v1/tickets/cw:{ticket}/replies", json={"text": "fine"}, headers=headers).status_code == 202
    finally:
        gw.close()
        server.stop()
