"""The package's layers, as docs/ARCHITECTURE.md draws them, checked on the source.

Every ``import`` of the project's own modules (at module level or inside a function, but not
under ``if TYPE_CHECKING:``) is an edge; the test fails on an import cycle or on an import that
goes up a layer.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("instructiad", "cot_m", "triad_eval", "triad_train", "baselines", "schemas")

BUILD = ("instructiad.pipeline", "instructiad.export", "instructiad.summary", "instructiad.builder", "instructiad.card",
         "instructiad.hub", "instructiad.info")  # fmt: skip
"""instructiad's build modules: they use cot_m; the rest of instructiad (readers, records,
annotations) is below cot_m."""
LAYERS = (
    ("schemas", "instructiad"),  # instructiad without BUILD
    ("cot_m",),
    BUILD,
    ("triad_eval.api",),
    ("triad_eval.settings", "triad_eval.registry"),
    ("triad_eval",),  # the harness: everything else in triad_eval
    ("baselines", "triad_train"),
    ("triad_eval.cli", "triad_eval.__main__"),
)
"""Lowest first; a module may import its own layer and those below, never one above."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))}


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` is ``a.b`` where that is a module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in modules:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    me = module_name(path)
    return {name for name in found if name != me and not me.startswith(f"{name}.")}  # a parent package is implicit


def layer_of(module: str) -> int:
    best, index = -1, 0
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(f"{prefix}.")) and len(prefix) >= best:
                best, index = len(prefix), number
    return index


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                connect(target)
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

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_import_goes_up_a_layer():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_checks_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("instructiad.export") > layer_of("cot_m.questions") > layer_of("instructiad.records")
    assert layer_of("baselines.simple") > layer_of("triad_eval.runner") > layer_of("triad_eval.api")
    assert layer_of("triad_eval.cli") > layer_of("baselines.experts")
    assert layer_of("triad_eval.cli") > layer_of("triad_train.trainer") > layer_of("triad_eval.requests")


@pytest.mark.parametrize("trainer", ["trl", "peft"])
def test_the_command_line_starts_without_the_trainer(trainer):
    code = f"import sys, triad_eval.cli, triad_eval.api, triad_train; assert {trainer!r} not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("heavy", ["torch", "jinja2", "pyarrow", "datasets", "numpy", "PIL"])
def test_the_contracts_import_without_heavy_packages(heavy):
    code = f"import sys, triad_eval.api; assert {heavy!r} not in sys.modules, 'triad_eval.api pulled in {heavy}'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
