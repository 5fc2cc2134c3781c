"""The plugin guide cannot drift from the contract: every hook is documented with its exact
signature, and every hook is exercised by some test (datasette's two checks)."""

from pathlib import Path

import pytest

from gateway import hookdocs, hookspecs

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
