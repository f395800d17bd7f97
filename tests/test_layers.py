"""The import structure: each package of ``movierec`` imports only from lower layers, and
no new import cycle appears between modules (issue 21).

Imports under ``if TYPE_CHECKING:`` are left out (they never run). Imports inside
functions count: they run, and a lazy import upwards is still a dependency upwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import movierec

SRC = Path(movierec.__file__).parent

#: lowest first; a package may import from its own layer's modules only if listed in the
#: same tuple and from any lower layer (data -> models -> recommend -> web/cli)
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors"),
    ("config", "inputs", "extras", "logs"),
    ("data", "tmdb"),
    ("models", "search", "visitor_ratings"),
    ("rerank", "similar", "new_movies", "store", "imports"),
    ("recommend",),
    ("onboarding", "training"),
    ("evaluate", "spark_engine"),
    ("web",),
    ("cli", "__main__"),
)
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}

#: module-level cycles that exist on purpose (all through imports inside functions);
#: each is a sorted tuple of module names. A new cycle fails the test.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    name = ".".join(parts)
    return name.removesuffix(".__init__")


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> set[str]:
    """The movierec modules ``path`` imports (outside ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for inner in ast.walk(node))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("movierec"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("movierec"):
                continue
            for alias in node.names:  # "from movierec.web import api" imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
    return {m for m in found if m in MODULES and m != here}


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}
GRAPH = {m: imports_of(p) for m, p in MODULES.items()}


def test_every_package_has_a_layer():
    packages = {package_of(m) for m in MODULES}
    assert packages <= set(LAYER), f"give these a layer: {sorted(packages - set(LAYER))}"


def test_no_import_runs_up_the_layers():
    upwards = [
        f"{source} imports {target}"
        for source, targets in GRAPH.items()
        for target in targets
        if package_of(source) != package_of(target)
        and LAYER[package_of(target)] >= LAYER[package_of(source)]
    ]
    assert upwards == [], "\n".join(sorted(upwards))


def cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[tuple[str, ...]] = set()
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_new_import_cycle():
    new = cycles(GRAPH) - KNOWN_CYCLES
    assert not new, "\n".join(" <-> ".join(c) for c in sorted(new))
