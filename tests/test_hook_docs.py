"""The plugin guide cannot drift from the contract: every hook is documented with its exact
signature, and every hook is exercised by some test (datasette's two checks)."""

import inspect
from pathlib import Path

import pytest

from gateway import hookdocs, hookspecs
from gateway.plugins import Vendor

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "plugins.md").read_text()


@pytest.mark.parametrize("name", hookspecs.all_hook_names())
def test_every_hook_is_documented_with_its_exact_signature(name: str) -> None:
    assert hookdocs.signature(name) in GUIDE, f"run: python -m gateway.hookdocs --write docs/plugins.md ({name})"


def test_the_generated_reference_is_current() -> None:
    assert GUIDE.endswith(hookdocs.render()), "run: python -m gateway.hookdocs --write docs/plugins.md"


def _test_sources() -> str:
    files = list((ROOT / "tests").glob("test_*.py")) + list((ROOT / "plugins").glob("*/tests/test_*.py"))
    files += [ROOT / "gateway" / "testing" / "conformance.py"]
    return "\n".join(f.read_text() for f in files if f.name != "test_hook_docs.py")


@pytest.mark.parametrize("name", hookspecs.all_hook_names())
def test_every_hook_has_a_test(name: str) -> None:
    # A hook counts as tested when a test names it, or drives the API route built on it.
    assert name in _test_sources() or name in CALLED_THROUGH_THE_PIPELINE, f"no test exercises {name}"


# Hooks the conformance suite drives through the API rather than by name.
CALLED_THROUGH_THE_PIPELINE = {
    "gateway_register_vendors", "gateway_connect", "gateway_reply", "gateway_status_change",
    "gateway_ticket_create", "gateway_time_entry", "gateway_attachment_add", "gateway_reconcile",
    "gateway_ticket_statuses", "gateway_ticket_form", "gateway_ticket_get",
}


# --------------------------------------------------------------------------- the typed facade

OPERATION_HOOKS = [n for n in hookspecs.all_hook_names() if "client" in inspect.signature(getattr(hookspecs, n)).parameters]


@pytest.mark.parametrize("name", OPERATION_HOOKS)
def test_the_facade_has_each_operation_hook_with_its_signature(name: str) -> None:
    spec = inspect.signature(getattr(hookspecs, name))
    method = getattr(Vendor, name.removeprefix("gateway_"), None)
    assert method is not None, f"Vendor has no method for {name}"
    facade = inspect.signature(method)
    wanted = [(p.name, p.annotation) for p in spec.parameters.values() if p.name != "client"]
    got = [(p.name, p.annotation) for p in facade.parameters.values() if p.name != "self"]
    assert got == wanted, f"Vendor.{method.__name__} takes {got}; {name} takes {wanted}"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in facade.parameters.values() if p.name != "self")
    assert facade.return_annotation == spec.return_annotation


@pytest.mark.parametrize("name", OPERATION_HOOKS)
def test_the_facade_calls_the_hook_it_is_named_for(name: str) -> None:
    calls: list[tuple[str, dict]] = []
    facade = Vendor(lambda spec, **kwargs: calls.append((spec.__name__, kwargs)))
    params = [p.name for p in inspect.signature(getattr(hookspecs, name)).parameters.values() if p.name != "client"]
    getattr(facade, name.removeprefix("gateway_"))(**{p: f"<{p}>" for p in params})
    assert calls == [(name, {p: f"<{p}>" for p in params})]


@pytest.mark.parametrize("name", hookspecs.all_hook_names())
def test_every_parameter_and_return_is_documented(name: str) -> None:
    _, params, returns = hookdocs.fields(name)
    wanted = list(inspect.signature(getattr(hookspecs, name)).parameters)
    assert list(params) == wanted, f"{name}: :param fields {list(params)}, parameters {wanted}"
    assert all(params.values()), f"{name}: an empty :param field"
    assert returns, f"{name} has no :returns: field"
