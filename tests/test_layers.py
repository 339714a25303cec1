"""The import layers of docs/architecture.md ("Layers"): nothing imports upward, no import cycles.

Every project module is parsed with ``ast`` (never imported), and every ``import``/``from …
import`` in it counts, including the lazy ones inside functions and ``importlib.import_module``
calls with a literal name: a lazy import is still a dependency, it only hides it from a reader.
A module may import its own layer or any layer below it; the graph of module-to-module imports
must have no cycle.
"""
from __future__ import annotations

import ast
import pathlib
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
#: The project's packages, each with a folder at the repository root.
PACKAGES = ("dcgan_common", "trainer", "components", "pipeline", "kubeflow")
#: Module (or package) name -> layer; a module takes the layer of its longest listed prefix.
#: 0 contracts, 1 the trainer, 2 the TFX components, 3 the pipeline definition, runners, summary
#: and report, 4 the entry points (the CLI and the Kubeflow/Vertex runner).
LAYERS = {"dcgan_common": 0, "trainer": 1, "components": 2, "pipeline": 3, "pipeline.cli": 4,
          "kubeflow": 4}


def project_modules(root: pathlib.Path, packages) -> dict[str, pathlib.Path]:
    """{dotted module name: file} of every .py file under the named top-level package folders."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, known: dict) -> str | None:
    """The known module ``name`` names, else its longest known parent (a name inside a module)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: pathlib.Path, known: dict, packages) -> set[str]:
    """The project modules ``module`` imports anywhere in its file (top level or inside functions).

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of
    ``pkg``; relative imports are resolved against ``module``'s package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names.extend(f"{prefix}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")):
            names.append(node.args[0].value)
    found = set()
    for name in names:
        if name.split(".")[0] not in packages:
            continue
        target = _resolve(name, known)
        if target is not None and target != module:
            found.add(target)
    return found


def layer_of(module: str, layers: dict[str, int]) -> int:
    """The layer of the longest prefix of ``module`` listed in ``layers``. KeyError when none is."""
    parts = module.split(".")
    while parts:
        if ".".join(parts) in layers:
            return layers[".".join(parts)]
        parts.pop()
    raise KeyError(f"{module} has no layer")


def import_graph(root: pathlib.Path, packages) -> dict[str, set[str]]:
    """{module: the project modules it imports} for every module of ``packages`` under ``root``."""
    known = project_modules(root, packages)
    return {m: imports_of(m, p, known, packages) for m, p in known.items()}


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """'a (layer i) imports b (layer j)' for every edge with j > i, sorted."""
    return sorted(f"{a} (layer {layer_of(a, layers)}) imports {b} (layer {layer_of(b, layers)})"
                  for a, targets in graph.items() for b in targets
                  if layer_of(b, layers) > layer_of(a, layers))


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan 1972), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


@pytest.fixture(scope="module")
def graph():
    return import_graph(REPO, PACKAGES)


def test_every_top_level_package_has_a_layer():
    """A new package beside the listed ones would escape the check; so would a missing folder."""
    on_disk = {p.parent.name for p in REPO.glob("*/__init__.py")}
    assert on_disk == set(PACKAGES)
    assert set(PACKAGES) <= set(LAYERS)


def test_the_graph_is_the_real_one(graph):
    """Guards against a vacuous pass (an empty graph has no upward import and no cycle)."""
    assert len(graph) > 40
    assert "dcgan_common.config" in graph["trainer.run_fn"]
    assert "pipeline.pipeline" in graph["kubeflow.vertex_runner"]  # a lazy import, inside a function


def test_nothing_imports_upward(graph):
    assert upward_imports(graph, LAYERS) == []


def test_the_ground_floor_imports_nothing_of_the_project(graph):
    outside = sorted(f"{a} imports {b}" for a, targets in graph.items() if a.startswith("dcgan_common")
                     for b in targets if not b.startswith("dcgan_common"))
    assert outside == []


def test_no_import_cycles(graph):
    assert import_cycles(graph) == []


def _tree(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


def test_checker_finds_a_planted_upward_import_and_cycle(tmp_path):
    """The checker on a synthetic tree: a lazy upward import, a relative one, a two-module cycle."""
    root = _tree(tmp_path, {
        "low/__init__.py": "",
        "low/a.py": """
            import os

            def later():
                from high import b  # upward, hidden inside a function
                return b
            """,
        "low/c.py": "from . import d\n",
        "low/d.py": "from low.c import thing\n",
        "high/__init__.py": "",
        "high/b.py": "import low.a\nimport importlib\nm = importlib.import_module('low.d')\n",
    })
    layers = {"low": 0, "high": 1}
    graph = import_graph(root, ("low", "high"))
    assert graph["high.b"] == {"low.a", "low.d"}
    assert graph["low.c"] == {"low.d"}          # relative import resolved
    assert upward_imports(graph, layers) == ["low.a (layer 0) imports high.b (layer 1)"]
    assert import_cycles(graph) == [["high.b", "low.a"], ["low.c", "low.d"]]


def test_checker_passes_a_clean_tree(tmp_path):
    root = _tree(tmp_path, {
        "low/__init__.py": "", "low/a.py": "X = 1\n",
        "high/__init__.py": "", "high/b.py": "from low.a import X\nfrom low import a\n",
    })
    graph = import_graph(root, ("low", "high"))
    assert graph["high.b"] == {"low.a"}
    assert upward_imports(graph, {"low": 0, "high": 1}) == []
    assert import_cycles(graph) == []


def test_longest_prefix_decides_the_layer():
    assert layer_of("pipeline.cli", LAYERS) == 4
    assert layer_of("pipeline.pipeline", LAYERS) == 3
    assert layer_of("dcgan_common.fid.metrics", LAYERS) == 0
    with pytest.raises(KeyError):
        layer_of("benchmarks.fid", LAYERS)
