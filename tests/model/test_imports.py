"""No import cycles in jaspeech.model: every module imports alone, in any order (checked statically and by importing)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jaspeech" / "model"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """jaspeech.model modules this file imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from jaspeech.model import prompts` imports the submodule, not the package's lazy exports
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            found |= subs or {node.module}
    return {m for m in found if m in known}


def test_the_import_graph_of_jaspeech_model_has_no_cycle():
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(f) for f in files}
    graph = {module_name(f): imports_of(f, known) - {module_name(f)} for f in files}
    assert "jaspeech.model.processing_jaspeech_llm" not in graph["jaspeech.model.modeling_jaspeech_llm"]
    assert "jaspeech.model.modeling_jaspeech_llm" not in graph["jaspeech.model.processing_jaspeech_llm"]
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph[node]:
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(path + [nxt])
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    assert len(graph) >= 12


@pytest.mark.slow
def test_all_modules_import_in_both_orders():
    """The static check above covers every order; here two real orders, each in a fresh interpreter."""
    names = sorted(module_name(f) for f in PACKAGE.rglob("*.py"))
    for order in (names, names[::-1]):
        done = subprocess.run([sys.executable, "-c", "; ".join(f"import {n}" for n in order)],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
