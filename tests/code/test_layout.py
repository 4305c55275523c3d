"""The shape of helpers/: no import cycles, no private names across packages, and an app that
imports only helpers.serving and the shared top-level modules. Read from the source with ast:
nothing is imported, so a cycle is found even where a lazy import hides it at run time."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import helpers

HELPERS = Path(helpers.__file__).resolve().parent
PROJECT = HELPERS.parent
# Top-level modules every stage may use (the app included); the stages are subpackages.
SHARED = {"atomic", "breeds", "formats", "hashing", "images", "kernel", "model_card", "original",
          "paths", "pipeline", "plots"}  # fmt: skip
APP_ALLOWED = {f"helpers.{name}" for name in SHARED} | {"helpers", "helpers.serving"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def helpers_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(HELPERS.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: module level and inside functions, not `if TYPE_CHECKING:`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in runtime_imports_of(child))
            continue
        yield from runtime_imports_of(node)


def runtime_imports_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from runtime_imports(node)


def imported(path: Path, module: str) -> Iterator[tuple[str, str | None, int]]:
    """(module, name or None, line) for each runtime import in `path`, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in runtime_imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            yield base, alias.name, node.lineno


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def package_of(module: str, modules: dict[str, Path]) -> str:
    """A package's own name for its __init__, else the package holding the module."""
    if modules.get(module, Path()).name == "__init__.py":
        return module
    return module.rpartition(".")[0]


def import_graph() -> dict[str, set[str]]:
    modules = helpers_modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for target, name, _ in imported(path, module):
            if name and f"{target}.{name}" in modules:
                graph[module].add(f"{target}.{name}")  # `from helpers.x import submodule`
            elif target in modules:
                graph[module].add(target)
    for module in graph:
        graph[module].discard(module)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
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
    return cycles


def test_no_import_cycles_between_helpers_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, f"modules importing each other (directly or round about): {cycles}"


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_no_private_names_imported_across_packages():
    modules = helpers_modules()
    crossings = []
    for module, path in modules.items():
        own = package_of(module, modules)
        for target, name, line in imported(path, module):
            if not target.startswith("helpers"):
                continue
            parts = target.split(".") + ([name] if name else [])
            full = ".".join(parts)
            other = package_of(full if full in modules else target, modules)
            private = any(is_private(part) for part in parts)
            if private and other != own:
                crossings.append(f"{path.relative_to(PROJECT)}:{line}: {full}")
    assert not crossings, "private names imported from another package:\n" + "\n".join(crossings)


def test_app_imports_only_serving_and_shared_modules():
    outside = []
    for path in sorted((PROJECT / "app").rglob("*.py")):
        for target, name, line in imported(path, module_name(path)):
            if target != "helpers" and not target.startswith("helpers."):
                continue
            full = f"{target}.{name}" if target == "helpers" and name else target
            allowed = full in APP_ALLOWED or full.startswith("helpers.serving.")
            if not allowed or any(is_private(part) for part in full.split(".")):
                outside.append(f"{path.relative_to(PROJECT)}:{line}: {full}")
    outside = sorted(set(outside))
    assert not outside, "app/ may import only helpers.serving and shared modules:\n" + "\n".join(
        outside
    )


def test_every_subpackage_says_what_it_exports():
    for init in sorted(HELPERS.glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} has no docstring"
        names = [
            node
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        ]
        assert names, f"{init} has no __all__"


def test_importing_what_the_app_imports_loads_no_tensorflow():
    # The app's process and `python -m helpers.serving --help` start without the seconds
    # TensorFlow takes; it loads when a model is.
    import subprocess
    import sys

    code = (
        "import sys, helpers.serving, helpers.model_card, helpers.formats, helpers.original, "
        "helpers.pipeline; "
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
