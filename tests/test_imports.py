"""Data flows one way: no module imports a module that imports it back, and imports work in any order."""
from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path

import pytest

import jaspeech

PACKAGE = Path(jaspeech.__file__).parent


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every jaspeech module a file imports, at any depth of its code (lazy imports count too).

    `from package import submodule` is an edge to the submodule only: the package's __init__ runs for any
    import of its submodules anyway; `from module import name` is an edge to that module.
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jaspeech")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaspeech"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
            found |= submodules if len(submodules) == len(node.names) else {node.module} | submodules
    return found


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def test_no_module_imports_a_module_that_imports_it_back():
    modules = _modules()
    graph = {name: {m for m in _imports(path, modules) if m in modules and m != name} for name, path in modules.items()}
    cycles = []
    for start in graph:  # any path from a module back to itself
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    cycles.append(" -> ".join(trail + [start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, trail + [nxt]))
    assert not cycles, "import circles:\n" + "\n".join(sorted(set(cycles))[:20])
    # the three named in the structure issue, explicitly
    assert "jaspeech.builders.build" not in graph["jaspeech.builders.executors"]
    # exporters read the published layout only: no builder imports them (and they import no builder)
    for name, deps in graph.items():
        if name.startswith("jaspeech.builders"):
            assert not [d for d in deps if d.startswith("jaspeech.export")], name
        if name.startswith("jaspeech.export"):
            assert not [d for d in deps if d.startswith("jaspeech.builders")], name
    assert "jaspeech.captioning.captioners" not in graph["jaspeech.captioning.qwen3_omni"]
    assert "jaspeech.model.processing_jaspeech_llm" not in graph["jaspeech.model.modeling_jaspeech_llm"]
    assert "jaspeech.model.modeling_jaspeech_llm" not in graph["jaspeech.model.processing_jaspeech_llm"]


@pytest.mark.slow
def test_every_module_imports_in_any_order():
    names = sorted(n for n in _modules() if n != "jaspeech.__main__")
    orders = [names[::-1], random.Random(1).sample(names, len(names))]  # each in a fresh interpreter
    for order in orders:
        code = "import importlib\nfor m in %r:\n    importlib.import_module(m)\n" % (order,)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
