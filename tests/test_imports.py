"""The import graph of tsgd_core has no circle and no upward arrow: dependencies point one way.

The package is a stack of rooms (`LAYERS`, bottom first); a module may import its own room and
the rooms below it, never a room above.

The graph is read from the source with `ast` (nothing is imported): every `from .x import`,
`from tsgd_core.x import` and `import tsgd_core.x` statement of every module, at any depth,
including the imports inside functions (a lazy import still ties two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "tsgd_core"
# the rooms, bottom first: runtime <- data <- training <- methods <- grid <- report <- cli, and
# on top the notebooks' helpers (tsgd_core/teaching.py), which nothing in the package imports
LAYERS = ("runtime", "data", "training", "methods", "grid", "report", "cli", "teaching")
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_files(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (subpackages included;
    a package is its __init__.py)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of `name` that is a module of the package, if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `module` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    # the package a relative import of level 1 starts from
    here = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                    target = _resolve(alias.name, modules)
                    if target:
                        found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = here.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
                if source != PACKAGE and not source.startswith(PACKAGE + "."):
                    continue
            target = _resolve(source, modules)
            if target is None:
                continue
            # `from pkg import name`: an edge to pkg.name when that is a module, else to pkg
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in modules else target)
    found.discard(module)
    return found


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = module_files(root, package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> ... -> a) from every strongly connected component of more than one
    module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {component}")  # pragma: no cover


def test_graph_reads_every_module():
    graph = import_graph()
    assert f"{PACKAGE}.grid.experiments" in graph
    # a top-level import, a lazy one inside a function and a `from .. import module` all count
    assert f"{PACKAGE}.data.storage" in graph[f"{PACKAGE}.grid.experiments"]
    assert f"{PACKAGE}.data.artifact" in graph[f"{PACKAGE}.cli.commands"]
    assert f"{PACKAGE}.runtime.distributed" in graph[f"{PACKAGE}.training.train"]


def test_cycle_finder_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_relative_and_absolute_imports_are_resolved(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\nfrom .sub import c\n")
    (pkg / "b.py").write_text("def f():\n    import tsgd_core.sub.c\n")
    (pkg / "sub" / "__init__.py").write_text("from .c import thing\n")
    (pkg / "sub" / "c.py").write_text("from ..a import x\nfrom tsgd_core import __version__\n")
    graph = import_graph(pkg)
    assert graph[f"{PACKAGE}.a"] == {f"{PACKAGE}.b", f"{PACKAGE}.sub.c"}
    assert graph[f"{PACKAGE}.b"] == {f"{PACKAGE}.sub.c"}
    assert graph[f"{PACKAGE}.sub"] == {f"{PACKAGE}.sub.c"}
    assert graph[f"{PACKAGE}.sub.c"] == {f"{PACKAGE}.a", PACKAGE}
    assert find_cycles(graph) == [[f"{PACKAGE}.a", f"{PACKAGE}.sub.c", f"{PACKAGE}.a"]]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in tsgd_core:\n" + "\n".join(
        "  " + " -> ".join(name.removeprefix(PACKAGE + ".") for name in cycle) for cycle in cycles
    )


def test_runtime_is_the_bottom_floor():
    """Seeds and devices, which every layer needs, depend on no other module of the package."""
    assert import_graph()[f"{PACKAGE}.runtime"] == set()


def room_of(module: str) -> str | None:
    """The room (first name below the package) a module lives in; None for the package root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """`a -> b` for every import of a module in a higher room (the package root is the floor)."""
    floor = {room: level for level, room in enumerate(LAYERS)}
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = room_of(module), room_of(target)
            if there is None:
                continue
            if here is None or floor[there] > floor[here]:
                found.append(f"{module} -> {target}")
    return found


def test_every_module_lives_in_a_known_room():
    rooms = {room_of(module) for module in import_graph()} - {None}
    assert rooms == set(LAYERS), f"rooms not in LAYERS: {sorted(rooms - set(LAYERS))}"


def test_upward_finder_names_an_upward_import():
    graph = {
        f"{PACKAGE}.data.x": {f"{PACKAGE}.training.y", f"{PACKAGE}.runtime"},
        f"{PACKAGE}.training.y": {f"{PACKAGE}.data.x", PACKAGE},
        PACKAGE: set(),
    }
    assert upward_imports(graph) == [f"{PACKAGE}.data.x -> {PACKAGE}.training.y"]


def test_no_upward_imports():
    found = upward_imports(import_graph())
    assert not found, (
        "imports of a higher room (order "
        + " <- ".join(LAYERS)
        + "):\n"
        + "\n".join("  " + arrow for arrow in found)
    )


def private_imports(root: Path = ROOT) -> list[str]:
    """'file: from .x import _name' for every `_private` name (not a dunder) that a module of
    the package imports from another module, at any depth of its file."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = "." * node.level + (node.module or "")
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(
                        f"{path.relative_to(root).as_posix()}: from {source} import {alias.name}"
                    )
    return found


def test_private_finder_names_a_private_import(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("def _helper():\n    return 1\n\n\ndef __dunder__():\n    pass\n")
    (pkg / "b.py").write_text(
        "from .a import __dunder__\n\n\ndef f():\n    from .a import _helper\n\n    return _helper()\n"
    )
    assert private_imports(pkg) == ["b.py: from .a import _helper"]


def test_no_module_imports_another_modules_private_name():
    found = private_imports()
    assert not found, "import a public name instead:\n" + "\n".join(found)
