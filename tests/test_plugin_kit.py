"""``gateway plugin new``: a generated plugin is a working plugin before any vendor code exists.

The fast tests generate each kind into a temporary folder, import it from there and register
it with the real plugin loader, then drive one write through the real pipeline against the
generated simulator. The slow ones run the generated plugin's own test suites (the PSA one is
the gateway's conformance suite) in a fresh interpreter that finds the plugin through its
entry points, exactly as after ``pip install -e``, but with nothing installed.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from litestar.testing import TestClient

from gateway.cli import main
from gateway.core import Gateway
from gateway.models import VendorKind
from gateway.plugin_kit import KINDS, class_prefix_for, default_template, new_plugin
from gateway.plugins import ENTRY_POINT_GROUP, SIMULATOR_GROUP, load_plugins
from gateway.testing.harness import ALL_SCOPES, connection_config, new_api_key, settings_from, workspace_config
from gateway.testing.simulator import Simulator
from gateway.testing.workers import drain

PLACEHOLDERS = re.compile(r"templatevendor|TemplateVendor|Template Vendor", re.IGNORECASE)


def generate(tmp_path: Path, kind: str, vendor: str, *extra: str) -> Path:
    main(["plugin", "new", kind, vendor, "--into", str(tmp_path / "plugins"), *extra])
    return tmp_path / "plugins" / f"{kind}_{vendor}"


@pytest.fixture
def importable(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Put generated plugin folders on ``sys.path``; forget their modules afterwards."""
    packages: list[str] = []
    yield packages
    for name in list(sys.modules):
        if any(name == p or name.startswith(p + ".") for p in packages):
            del sys.modules[name]


def use(monkeypatch: pytest.MonkeyPatch, importable: list[str], root: Path, package: str) -> None:
    monkeypatch.syspath_prepend(str(root))
    importable.append(package)
    importlib.invalidate_caches()


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("kind", KINDS)
def test_the_command_writes_a_renamed_plugin_with_both_entry_points(tmp_path: Path, kind: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    root = generate(tmp_path, kind, "acme", "--title", "Acme Cloud")
    printed = capsys.readouterr().out
    assert f"pip install -e {root}" in printed

    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    for expected in ("pyproject.toml", "README.md", "gateway_acme/py.typed", "gateway_acme/auth.py",
                     "gateway_acme/client.py", "gateway_acme/errors.py", "gateway_acme/constants.py",
                     "gateway_acme/hooks.py", "gateway_acme/mapping.py", "gateway_acme/simulator/__init__.py",
                     "gateway_acme/simulator/app.py"):
        assert expected in files
    assert any(f.startswith("tests/test_acme_") for f in files)
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not PLACEHOLDERS.search(text), f"{path} still names the template"
            if path.suffix == ".py":
                compile(text, str(path), "exec")

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "msp-gateway-acme"
    assert project["entry-points"][ENTRY_POINT_GROUP] == {"acme": "gateway_acme.hooks"}
    assert project["entry-points"][SIMULATOR_GROUP] == {"acme": "gateway_acme.simulator:AcmeCloudSimulator"}
    assert "Acme Cloud" in (root / "README.md").read_text()


def test_class_names_come_from_the_title() -> None:
    assert class_prefix_for("itglue", "IT Glue") == "ITGlue"
    assert class_prefix_for("atera", "Atera") == "Atera"
    assert class_prefix_for("acme", "acme") == "Acme"
    assert class_prefix_for("x1", "1st Line") == "X1"  # not an identifier: fall back to the name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ticketing", "acme"], "invalid choice"),
        (["psa", "Acme"], "lower-case letters and digits"),
        (["psa", "my-vendor"], "lower-case letters and digits"),
        (["psa", "templatevendor"], "placeholder"),
    ],
)
def test_bad_names_are_refused_and_nothing_is_written(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plugin", "new", *args, "--into", str(tmp_path)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_plugin_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = generate(tmp_path, "psa", "acme")
    (root / "README.md").write_text("my notes")
    with pytest.raises(SystemExit):
        generate(tmp_path, "psa", "acme")
    assert "already exists" in capsys.readouterr().err
    assert (root / "README.md").read_text() == "my notes"


def test_the_template_itself_is_neither_collected_nor_installed() -> None:
    template = default_template()
    assert not (template / "pyproject.toml").exists()  # the Makefile installs plugins/*/pyproject.toml
    assert (template / "base" / "pyproject.toml.tmpl").is_file()
    assert "collect_ignore_glob" in (template / "conftest.py").read_text()


# --------------------------------------------------------------------------- import and registration


@pytest.mark.parametrize(("kind", "vendor"), [("psa", "kitpsa"), ("rmm", "kitrmm"), ("docs", "kitdocs")])
def test_the_generated_plugin_imports_and_registers_with_the_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, importable: list[str], kind: str, vendor: str
) -> None:
    root = generate(tmp_path, kind, vendor)
    use(monkeypatch, importable, root, f"gateway_{vendor}")
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "")  # only the generated plugin
    hooks = importlib.import_module(f"gateway_{vendor}.hooks")
    simulator = importlib.import_module(f"gateway_{vendor}.simulator")

    loaded = load_plugins(extra=[hooks])

    info = loaded.vendors[vendor]
    assert info.kind is VendorKind(kind) and info.secret_settings == ("api_key",)
    assert loaded.broken == []
    sim_class = getattr(simulator, f"{vendor.capitalize()}Simulator")
    assert issubclass(sim_class, Simulator) and sim_class.vendor == vendor


def test_a_generated_psa_plugin_takes_a_reply_through_the_pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, importable: list[str], redis_client: redis.Redis
) -> None:
    root = generate(tmp_path, "psa", "kitreply")
    use(monkeypatch, importable, root, "gateway_kitreply")
    monkeypatch.setenv("GATEWAY_LOAD_PLUGINS", "")
    hooks = importlib.import_module("gateway_kitreply.hooks")
    sim = importlib.import_module("gateway_kitreply.simulator").KitreplySimulator()
    sim.seed_demo()
    server = sim.serve_in_thread()
    key = new_api_key()
    settings = settings_from({
        "gateway": {"retry_base_seconds": 0.01},
        "workspaces": [workspace_config(
            "kit", [connection_config("kr", sim.demo_connection(server.base_url))], {key: ALL_SCOPES}
        )],
    })
    gw = Gateway(settings, redis_client, plugins=load_plugins(extra=[hooks]))
    from gateway.api.app import create_app

    try:
        with TestClient(create_app(gw)) as api:
            ticket = sim.sample_ticket_id()
            response = api.post(f"/v1/tickets/kr:{ticket}/replies", json={"text": "generated and working"},
                                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "kit-1"})
            assert response.status_code == 202, response.text
            assert drain(gw, timeout=30)
            notes = [n for n in sim.ticket_notes(ticket) if n["text"] == "generated and working"]
            assert len(notes) == 1 and notes[0]["internal"] is False
    finally:
        gw.close()
        server.stop()


# --------------------------------------------------------------------------- the generated suites


def fake_install(site: Path, root: Path, vendor: str) -> None:
    """What ``pip install -e`` leaves for entry-point discovery: a dist-info with the
    pyproject's entry points. Nothing is installed into the virtualenv."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    info = site / f"msp_gateway_{vendor}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines += [f"[{group}]", *(f"{name} = {value}" for name, value in entries.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))


def run_generated_tests(tmp_path: Path, kind: str, vendor: str) -> subprocess.CompletedProcess[str]:
    root = generate(tmp_path, kind, vendor)
    fake_install(tmp_path / "site", root, vendor)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), str(tmp_path / "site"), env.get("PYTHONPATH")]))
    env["GATEWAY_LOAD_PLUGINS"] = vendor  # the generated plugin alone, found by its entry point
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "tests"],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_a_generated_psa_plugin_passes_the_conformance_suite_unchanged(tmp_path: Path) -> None:
    run = run_generated_tests(tmp_path, "psa", "kitconf")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "skipped" not in run.stdout  # every capability of the stub is exercised
    assert re.search(r"\b2\d passed\b", run.stdout), run.stdout[-1000:]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "vendor"), [("rmm", "kitalerts"), ("docs", "kitrunbooks")])
def test_generated_rmm_and_docs_plugins_pass_their_own_tests(tmp_path: Path, kind: str, vendor: str) -> None:
    run = run_generated_tests(tmp_path, kind, vendor)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
