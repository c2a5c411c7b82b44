"""Imports flow one way (README, "Layout").

The import graph of ``idp/`` is read from the source with ``ast``: every
``import`` and ``from … import``, at module level and inside functions alike
(a function-level import hides a cycle from Python, not from this test).
``from . import x`` names the submodule ``x`` when there is one; otherwise the
import is of the package itself (its ``__init__``). A submodule is not taken
to import its parent package: that is how Python loads it, not a dependency
the code chose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "idp"

# Lowest first. A module may import its own layer and those below; the
# longest matching prefix places a module.
LAYERS = [
    # What every layer uses: settings, the database handle, the per-app
    # caches, the clock and random secrets (the models ask for all three:
    # the client cache, expiry, client secrets).
    ("foundation", ["idp.cache", "idp.config", "idp.extensions", "idp.security.clock", "idp.security.secrets"]),
    ("models", ["idp.models"]),
    ("security", ["idp.security"]),
    ("core", [
        "idp.accounts", "idp.audit", "idp.claims", "idp.clients", "idp.contracts", "idp.errors", "idp.forms",
        "idp.keys", "idp.language", "idp.mail", "idp.ops", "idp.passkeys", "idp.pending", "idp.retry",
        "idp.second_factor", "idp.sessions",
        "idp.tokens",
    ]),
    ("flows", ["idp.account_settings", "idp.admin", "idp.demo", "idp.login", "idp.oauth", "idp.recovery", "idp.registration"]),
    ("app", ["idp", "idp.cli"]),
]
# The flows (blueprints, and the protocol) never import one another: what
# two of them share lives in a core module.
FLOWS = dict(LAYERS)["flows"]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = ROOT) -> dict[str, dict[str, int]]:
    """{module: {imported module: line of the first such import}}, within the package."""
    files = {module_name(path, root): path for path in sorted(root.rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for target in _targets(node, name, is_package, files):
                if target != name and target in files:
                    edges.setdefault(target, node.lineno)
    return graph


def _targets(node, module: str, is_package: bool, files) -> list[str]:
    if isinstance(node, ast.Import):
        return [_deepest_module(alias.name, files) for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    # `from package import name`: the submodule when `name` is one.
    return [f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source for alias in node.names]


def _deepest_module(dotted: str, files) -> str:
    while dotted and dotted not in files:
        dotted = dotted.rpartition(".")[0]
    return dotted


def layer_of(module: str) -> tuple[int, str]:
    """(rank, prefix) of the longest prefix in LAYERS matching ``module``."""
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            # "idp" is the root package itself (create_app), not every module in it.
            within = module.startswith(prefix + ".") and prefix != "idp"
            if (module == prefix or within) and (best is None or len(prefix) > len(best[1])):
                best = (rank, prefix)
    if best is None:
        raise LookupError(module)
    return best


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _edges(graph):
    for source, targets in sorted(graph.items()):
        for target, line in sorted(targets.items()):
            yield source, target, line


# --- the rules -----------------------------------------------------------------

def test_every_module_has_a_layer():
    unplaced = []
    for module in import_graph():
        try:
            layer_of(module)
        except LookupError:
            unplaced.append(module)
    assert not unplaced, "place these modules in a layer of LAYERS: " + ", ".join(unplaced)


def test_no_import_cycles():
    graph = import_graph()
    found = [
        "cycle: " + "; ".join(f"{s} line {line} imports {t}" for s, t, line in _edges(graph) if s in c and t in c)
        for c in cycles(graph)
    ]
    assert not found, "\n".join(found)


def test_imports_follow_the_layer_order():
    upward = [
        f"{source} ({LAYERS[layer_of(source)[0]][0]}) line {line} imports {target} ({LAYERS[layer_of(target)[0]][0]})"
        for source, target, line in _edges(import_graph())
        if layer_of(target)[0] > layer_of(source)[0]
    ]
    assert not upward, "\n".join(upward)


def test_no_flow_imports_another():
    crossing = []
    for source, target, line in _edges(import_graph()):
        home_s, home_t = layer_of(source)[1], layer_of(target)[1]
        if home_s in FLOWS and home_t in FLOWS and home_s != home_t:
            crossing.append(f"{source} line {line} imports {target}")
    assert not crossing, "\n".join(crossing)


# --- the test's own reading of imports -------------------------------------------

@pytest.fixture
def package(tmp_path):
    def write(files: dict[str, str]) -> Path:
        for name, text in files.items():
            path = tmp_path / "idp" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return tmp_path / "idp"

    return write


def test_function_level_and_relative_imports_are_edges(package):
    root = package({
        "__init__.py": "from . import a\n",
        "a.py": "def f():\n    from .sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from .. import a\nfrom ..sub import c\nfrom . import thing\n",
        "sub/c.py": "import idp.a\n",
    })
    graph = import_graph(root)
    assert graph["idp"] == {"idp.a": 1}
    assert graph["idp.a"] == {"idp.sub.b": 2}
    assert graph["idp.sub.b"] == {"idp.a": 1, "idp.sub.c": 2, "idp.sub": 3}
    assert graph["idp.sub.c"] == {"idp.a": 1}
    assert cycles(graph) == [["idp.a", "idp.sub.b", "idp.sub.c"]]


def test_layers_place_modules_by_package():
    assert LAYERS[layer_of("idp.security.throttle")[0]][0] == "security"
    assert LAYERS[layer_of("idp.security.clock")[0]][0] == "foundation"
    assert layer_of("idp.oauth.server")[1] == "idp.oauth"
    assert LAYERS[layer_of("idp")[0]][0] == "app"
    with pytest.raises(LookupError):
        layer_of("idp.unplaced")


def test_a_package_init_that_loads_its_modules_is_no_cycle(package):
    root = package({
        "__init__.py": "",
        "models/__init__.py": "from .a import A\nfrom .b import B\n",
        "models/a.py": "",
        "models/b.py": "from .a import A\n",
        "user.py": "from .models import A\n",
    })
    graph = import_graph(root)
    assert graph["idp.user"] == {"idp.models": 1}
    assert cycles(graph) == []
