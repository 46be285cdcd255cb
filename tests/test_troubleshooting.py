"""docs/troubleshooting.md stays true to the code: every message it quotes is one the code can print, and every
reject reason the code can write is explained there (and no other).

The page's conventions, which this test reads:

- A quoted message is a list item on a line of its own that starts with ``- **message:** `` and a code span (a
  span with a backtick inside is written with double backticks and a space inside each end, as CommonMark
  allows). Every code span on that line is checked: it must occur within one string of the source, literally,
  or else with each ``<...>`` in it read as a variable part (its constant parts, in order). An entry's first
  span is what a reader searches for; a second one, where there is one, is the whole message as a person reads
  it, e.g. ``<corpus> has no config <config>; choose from <configs>``. Each span needs at least 18 constant
  characters (so that a search finds it, and little else), unless it is a whole message on its own.
- The reject reasons are the first cells of the table under the heading ``## Reject reasons``: each code span
  in a row's first cell is one reason.

The source is every string of the Python files under jaspeech/ (read with `ast`, so implicitly concatenated
literals are one string and an f-string's `{...}` parts are variable parts; a `+` of string pieces is one
string too, one for each branch of a conditional piece), the text of the .j2 and .txt files under jaspeech/,
scripts/setup.sh, and tests/view/browser.py (the browser test's message when chromium is missing, which the
page quotes for contributors).

The reject reasons the code can write have no single list in the code, so they are collected from the AST of
jaspeech/: the first argument of every `RowReject(...)` and `Unspeakable(...)` call, resolved as far as
it is a constant: a string; an f-string whose `{name}` is a loop variable over a tuple of strings
(`for name in ("chosen", "rejected")`) or a parameter of the enclosing function, resolved through the calls of
that function by name (`field(row, "q1")`, `turn_list(row, "conversations")`, `p.reject("roundtrip", ...)`);
a name assigned from a call, resolved through the string constants that function returns (`reason =
self._verdict(caption)` -> "captioner_error" and `check_caption`'s reasons). Reasons carried over from an
exception (`RowReject(e.reason, ...)`) are the other calls' reasons and need nothing.
"""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "troubleshooting.md"
PACKAGE = ROOT / "jaspeech"
EXTRA_SOURCES = (ROOT / "scripts" / "setup.sh", ROOT / "tests" / "view" / "browser.py")

VAR = "\x00"  # a variable part of a rendered string
SEP = "\x01"  # between strings
MIN_CONSTANT = 18
MESSAGE = re.compile(r"^- \*\*message:\*\* (`.*)$")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
PLACEHOLDER = re.compile(r"<[^<>`]+>")


# --- the page -------------------------------------------------------------------------------------

def code_spans(text: str) -> list[str]:
    """The code spans of a line, as CommonMark reads them (one surrounding space stripped when both are there)."""
    out = []
    for m in CODE_SPAN.finditer(text):
        content = m.group(2)
        if len(content) > 2 and content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]
        out.append(content)
    return out


def page_messages() -> list[tuple[int, list[str]]]:
    """(line number, code spans) of every quoted-message line."""
    out = []
    for n, line in enumerate(PAGE.read_text(encoding="utf-8").splitlines(), start=1):
        m = MESSAGE.match(line)
        if m:
            out.append((n, code_spans(m.group(1))))
    return out


def page_reasons() -> set[str]:
    """The reasons in the first cells of the table under `## Reject reasons`."""
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Reject reasons")
    reasons: set[str] = set()
    for line in lines[start + 1:]:
        if line.startswith("## "):
            break
        if line.startswith("|"):
            first = re.split(r"(?<!\\)\|", line)[1]
            reasons.update(code_spans(first))
    return reasons


# --- the source -----------------------------------------------------------------------------------

def _renders(node: ast.AST) -> list[str] | None:
    """A string expression as text, its variable parts as VAR (one text per branch of a conditional
    expression); None for anything that is not one."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else VAR for v in node.values)]
    if isinstance(node, ast.IfExp):
        body, orelse = _renders(node.body), _renders(node.orelse)
        return None if body is None and orelse is None else (body or [VAR]) + (orelse or [VAR])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _renders(node.left), _renders(node.right)
        if left is None and right is None:
            return None
        return [a + b for a in (left or [VAR]) for b in (right or [VAR])]
    return None


def _python_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@lru_cache(maxsize=1)
def _trees() -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(encoding="utf-8"), filename=str(p)) for p in _python_files()}


@lru_cache(maxsize=1)
def source_strings() -> tuple[str, ...]:
    """Every string of the source."""
    strings: list[str] = []
    trees = dict(_trees())
    for path in EXTRA_SOURCES:
        if path.suffix == ".py":
            trees[path] = ast.parse(path.read_text(encoding="utf-8"))
        else:
            strings.append(path.read_text(encoding="utf-8"))
    for tree in trees.values():
        pieces = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
        for node in ast.walk(tree):
            if id(node) not in pieces:  # an f-string's constant pieces are not strings of their own
                strings += _renders(node) or []
    for path in sorted([*PACKAGE.rglob("*.j2"), *PACKAGE.rglob("*.txt")]):
        strings.append(path.read_text(encoding="utf-8"))
    return tuple(strings)


@lru_cache(maxsize=1)
def source_text() -> str:
    """Every string of the source, SEP between them (one search finds a literal span)."""
    return SEP + SEP.join(source_strings()) + SEP


def _in_order(parts: list[str], text: str) -> bool:
    at = 0
    for part in parts:
        at = text.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


def find(span: str) -> tuple[bool, int, bool]:
    """(found, constant characters, whole message) of a quoted span: found literally, or else with each
    `<...>` read as a variable part (the constant parts in order within one string)."""
    if span in source_text():
        return True, len(span), f"{SEP}{span}{SEP}" in source_text()
    parts = PLACEHOLDER.split(span)
    if len(parts) == 1:
        return False, len(span), False
    found = any(_in_order(parts, s) for s in source_strings())
    return found, sum(len(p) for p in parts), False


# --- reject reasons in the code -------------------------------------------------------------------

class Reasons:
    """The reject reasons the code can write (see the module docstring for how they are resolved)."""

    SINKS = ("RowReject", "Unspeakable")

    def __init__(self, trees: dict[Path, ast.Module]):
        self.parents: dict[ast.AST, ast.AST] = {}
        self.functions: dict[str, list[ast.FunctionDef]] = {}
        self.calls: dict[str, list[ast.Call]] = {}
        for tree in trees.values():
            for node in ast.walk(tree):
                for child in ast.iter_child_nodes(node):
                    self.parents[child] = node
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(node.name, []).append(node)
                elif isinstance(node, ast.Call):
                    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
                    if name:
                        self.calls.setdefault(name, []).append(node)

    def all(self) -> set[str]:
        out: set[str] = set()
        for sink in self.SINKS:
            for call in self.calls.get(sink, []):
                if call.args:
                    out |= self.values(call.args[0], set())
        return out

    def _enclosing(self, node: ast.AST, kinds) -> list[ast.AST]:
        found = []
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, kinds):
                found.append(node)
        return found

    def values(self, node: ast.AST, seen: set) -> set[str]:
        """The strings `node` can be, as far as they are constants (an unresolved part stays a VAR)."""
        if isinstance(node, ast.Constant):
            return {node.value} if isinstance(node.value, str) else set()
        if isinstance(node, ast.IfExp):
            return self.values(node.body, seen) | self.values(node.orelse, seen)
        if isinstance(node, ast.JoinedStr):
            out = {""}
            for part in node.values:
                if isinstance(part, ast.Constant):
                    choices = {part.value}
                else:
                    choices = self.values(part.value, seen) or {VAR}
                out = {a + b for a in out for b in choices}
            return out
        if isinstance(node, ast.Name):
            return self.name_values(node, seen)
        return set()  # e.g. `e.reason`: a reason another call made

    def name_values(self, node: ast.Name, seen: set) -> set[str]:
        key = (id(node),)
        if key in seen:
            return set()
        seen = seen | {key}
        for loop in self._enclosing(node, (ast.For,)):
            if (isinstance(loop.target, ast.Name) and loop.target.id == node.id
                    and isinstance(loop.iter, (ast.Tuple, ast.List))):
                return set().union(*(self.values(e, seen) for e in loop.iter.elts))
        functions = self._enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if not functions:
            return set()
        function = functions[0]
        params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        if node.id in params:
            return self.param_values(function, params, node.id, seen)
        out: set[str] = set()
        for assign in ast.walk(function):
            if (isinstance(assign, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id
                                                       for t in assign.targets)):
                if isinstance(assign.value, ast.Call):
                    out |= self.returns(assign.value, seen)
                else:
                    out |= self.values(assign.value, seen)
        return out

    def param_values(self, function: ast.FunctionDef, params: list[str], name: str, seen: set) -> set[str]:
        index = params.index(name)
        method = bool(params) and params[0] in ("self", "cls")
        out: set[str] = set()
        for call in self.calls.get(function.name, []):
            i = index - 1 if method and isinstance(call.func, ast.Attribute) else index
            arg = next((k.value for k in call.keywords if k.arg == name), None)
            if arg is None and 0 <= i < len(call.args):
                arg = call.args[i]
            if arg is not None:
                out |= self.values(arg, seen)
        return out

    def returns(self, call: ast.Call, seen: set) -> set[str]:
        name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", None)
        if (name,) in seen:
            return set()
        seen = seen | {(name,)}
        out: set[str] = set()
        for function in self.functions.get(name, []):
            for node in ast.walk(function):
                if isinstance(node, ast.Return) and node.value is not None:
                    if isinstance(node.value, ast.Call):
                        out |= self.returns(node.value, seen)
                    else:
                        out |= self.values(node.value, seen)
        return out


def code_reasons() -> set[str]:
    return Reasons(_trees()).all()


# --- the tests ------------------------------------------------------------------------------------

def test_every_quoted_message_is_in_the_code():
    messages = page_messages()
    assert len(messages) >= 60, f"only {len(messages)} quoted messages: is the convention still `- **message:** `?"
    problems = []
    for line, spans in messages:
        if not spans:
            problems.append(f"line {line}: no code span")
        for span in spans:
            found, constant, whole = find(span)
            if not found:
                problems.append(f"line {line}: not in the source: {span!r}")
            elif constant < MIN_CONSTANT and not whole:
                problems.append(f"line {line}: {span!r} has {constant} constant characters, too few to search for")
    assert not problems, "\n".join(problems)


def test_every_reject_reason_is_explained():
    in_code, on_page = code_reasons(), page_reasons()
    assert "roundtrip" in in_code and "missing_q1" in in_code and "caption_refusal" in in_code, in_code
    assert not any(VAR in r for r in in_code), f"reasons the test cannot resolve: {sorted(in_code)}"
    assert not in_code - on_page, f"reasons the page does not explain: {sorted(in_code - on_page)}"
    assert not on_page - in_code, f"reasons on the page the code never writes: {sorted(on_page - in_code)}"
