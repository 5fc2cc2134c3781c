"""gateway/ is layered one way: a module imports only from its own layer or the layers below,
and no chain of imports leads back to where it started.

The walk reads every ``import`` in each module with ``ast``, at module level and inside
functions alike: an import deferred into a function still has to point down, so a lazy import
can never hide a cycle. Imports under ``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "gateway"

# Lowest first; each module imports only from its own layer or earlier ones.
LAYERS: list[tuple[str, set[str]]] = [
    ("models and errors", {"gateway", "models", "errors", "settings", "hookspecs", "context", "redact"}),
    ("primitives", {"keys", "locks", "cache", "aio", "embedded_redis", "logs", "metrics", "attachments", "entropy"}),
    ("stores and vendor access", {
        "writes", "store", "audit", "audit_chain", "ratelimit", "scheduler", "events", "webhooks",
        "plugins", "runtime", "vendor_http", "oauth", "durability",
    }),
    ("hub", {"hub"}),
    ("services", {"intake", "writekinds", "jobs", "sync", "customers", "links", "delivery"}),
    ("assembly", {"core"}),
    ("API, CLI and tools", {
        "api", "console", "readiness", "cli", "worker", "demo", "testing", "plugin_kit", "hookdocs", "eventdocs",
    }),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The layer index of ``gateway.x.y`` (a package's modules share the package's layer)."""
    key = "gateway" if module == "gateway" else module.split(".")[1]
    for index, (_, members) in enumerate(LAYERS):
        if key in members:
            return index
    raise AssertionError(f"{module} is in no layer: place it in LAYERS (tests/test_layers.py)")


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The gateway modules ``path`` imports anywhere but under ``if TYPE_CHECKING``."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
            # ``from gateway import sync`` imports the module gateway.sync (its package is
            # already importing); ``from gateway.store import TicketStore`` imports gateway.store.
            found.update(submodules or {base})
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in ROOT.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := walk(node)):
            return found
    return None


def test_no_import_cycle_in_gateway() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, imported in sorted(import_graph().items()):
        for target in sorted(imported):
            if target == "gateway" or target.startswith(module + "."):
                continue  # a package's __init__ runs first anyway; a package may import its own modules
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                              f"({LAYERS[layer_of(target)][0]})")
    assert not upward, "imports pointing up a layer:\n" + "\n".join(upward)


def test_the_walk_sees_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    graph = {"gateway.a": {"gateway.b"}, "gateway.b": set()}
    assert find_cycle(graph) is None
    source = tmp_path / "b.py"
    source.write_text("def f():\n    from gateway import a\n    return a\n")
    graph["gateway.b"] = imports_of(source, {"gateway.a", "gateway.b"})
    assert find_cycle(graph) == ["gateway.a", "gateway.b", "gateway.a"]


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_every_module_has_a_layer(module: str) -> None:
    layer_of(module)
