"""genbench's imports run one way: no cycle, and no private name reached across subpackages.

The graph is read from the source with :mod:`ast`, not by importing anything. Every
``import``/``from ... import`` statement of a module counts, those inside functions too
(genbench defers many imports to the function that needs them, and a deferred import
that closes a loop is a loop all the same); only ``if TYPE_CHECKING:`` blocks, which
never run, are left out. Importing ``genbench.a.b`` is an edge to ``genbench.a.b`` (and to
``genbench.a.b.c`` for ``from genbench.a.b import c`` when ``c`` is a module), not to the
packages Python initialises on the way (``genbench``, ``genbench.a``): every module would
otherwise depend on ``genbench/__init__.py``, the public facade that imports the API.

Cycles are checked twice: among modules, and among genbench's layers, where a layer is
a subpackage (``genbench.run``) or a top-level module (``genbench.suite``): a loop
``suite -> run.budget``, ``run.plan -> suite`` is a cycle between layers though no module
imports itself. A private name (one leading underscore) may be imported within its own
layer only.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1] / "genbench"


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    mods = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return mods


def _imports(tree: ast.AST):
    """Every import statement, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def import_graph(root: Path = ROOT) -> tuple[nx.DiGraph, list[str]]:
    """The module graph of the package at ``root``, and each private name imported from another layer."""
    mods = _modules(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    private = []
    for name, (path, is_package) in mods.items():
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    source = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    source = node.module or ""
                targets = [source] + [f"{source}.{alias.name}" for alias in node.names
                                      if f"{source}.{alias.name}" in mods]
                if source in mods and _layer(source) != _layer(name):
                    private += [f"{name} imports {alias.name} from {source}" for alias in node.names
                                if _is_private(alias.name) and f"{source}.{alias.name}" not in mods]
            graph.add_edges_from((name, t) for t in targets if t in mods and t != name)
    return graph, private


def cycles(graph: nx.DiGraph) -> list[list[str]]:
    """The strongly connected components of more than one node, each sorted, shortest first."""
    return sorted((sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1), key=len)


def layer_graph(graph: nx.DiGraph) -> nx.DiGraph:
    layers = nx.DiGraph()
    layers.add_nodes_from({_layer(m) for m in graph})
    layers.add_edges_from((_layer(a), _layer(b)) for a, b in graph.edges if _layer(a) != _layer(b))
    return layers


def _describe(graph: nx.DiGraph, component: list[str]) -> str:
    inner = graph.subgraph(component)
    return " | ".join(f"{a} -> {b}" for a, b in sorted(inner.edges))


def test_no_import_cycle_among_modules():
    graph, _ = import_graph()
    assert len(graph) > 50  # the walk found the package
    found = cycles(graph)
    assert not found, "import cycles among modules: " + "; ".join(_describe(graph, c) for c in found)


def test_no_import_cycle_among_layers():
    graph, _ = import_graph()
    layers = layer_graph(graph)
    found = cycles(layers)
    detail = []
    for component in found:
        edges = [f"{a} -> {b}" for a, b in sorted(graph.edges)
                 if _layer(a) in component and _layer(b) in component and _layer(a) != _layer(b)]
        detail.append(", ".join(edges))
    assert not found, "import cycles among genbench's layers: " + "; ".join(detail)


def test_no_private_name_imported_across_layers():
    _, private = import_graph()
    assert not private, "private names imported from another layer: " + "; ".join(private)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, source in files.items():
        path = root / "genbench" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / "genbench"


@pytest.mark.parametrize(("files", "expected"), [
    # a deferred import closes the loop all the same
    ({"__init__.py": "", "a.py": "import genbench.b\n", "b.py": "def f():\n    from genbench import a\n"},
     [["genbench.a", "genbench.b"]]),
    # relative imports resolve
    ({"__init__.py": "", "p/__init__.py": "", "p/x.py": "from . import y\n", "p/y.py": "from .x import f\n"},
     [["genbench.p.x", "genbench.p.y"]]),
    # never run: not an edge
    ({"__init__.py": "", "a.py": "import genbench.b\n",
      "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import genbench.a\n"}, []),
])
def test_the_walk_finds_module_cycles(tmp_path, files, expected):
    graph, _ = import_graph(_write(tmp_path, files))
    assert cycles(graph) == expected


def test_the_walk_finds_layer_cycles_and_private_imports(tmp_path):
    root = _write(tmp_path, {
        "__init__.py": "", "suite.py": "from genbench.run.budget import Budget\n",
        "run/__init__.py": "", "run/budget.py": "Budget = 1\n",
        "run/plan.py": "from genbench.suite import Suite\nfrom genbench.run.budget import _x\n",
        "tune/__init__.py": "", "tune/trial.py": "def f():\n    from genbench.run.plan import _sample, __all__\n",
    })
    graph, private = import_graph(root)
    assert cycles(graph) == []
    assert cycles(layer_graph(graph)) == [["genbench.run", "genbench.suite"]]
    assert private == ["genbench.tune.trial imports _sample from genbench.run.plan"]
