"""Write docs/reference/cli.md from the `jaspeech` parser: every sub-command, its arguments, defaults and help.

    python scripts/cli_reference.py            # rewrite docs/reference/cli.md
    python scripts/cli_reference.py --check    # exit 1 if the file is not what the parser says now

Generated from the parser's actions (not from `--help`'s text, whose layout changes with the terminal width
and the Python version), so the page is the same on every machine. tests/test_docs.py runs `--check`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAGE = ROOT / "docs" / "reference" / "cli.md"

from jaspeech.cli import make_parser  # noqa: E402


def _subcommands(parser: argparse.ArgumentParser, prefix: str):
    """(command line, parser, one-line help) for every leaf and inner command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                yield f"{prefix} {name}", child, helps.get(name) or ""
                yield from _subcommands(child, f"{prefix} {name}")


def _cell(text: str) -> str:
    text = " ".join(str(text).split()).replace("%%", "%")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _row(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`" if not action.choices else \
                " `{" + ",".join(map(str, action.choices)) + "}`"
    else:
        names = f"`{action.metavar or action.dest}`"
        if action.choices:
            names += " `{" + ",".join(map(str, action.choices)) + "}`"
    unset = action.default is None or action.default is False or action.default == argparse.SUPPRESS
    default = "" if unset or action.required else f"`{action.default}`"
    required = "yes" if action.required or not action.option_strings else ""
    return f"| {names} | {required} | {default} | {_cell(action.help or '')} |"


def render() -> str:
    parser = make_parser()
    out = ["# Command-line reference", "",
           "Generated from the parser by `python scripts/cli_reference.py`; every `jaspeech` sub-command and option.",
           "Options of `jaspeech build` that a row's content depends on are stored in the plan (see "
           "[scale-out](../scale-out.md)).", ""]
    for command, child, help_text in _subcommands(parser, "jaspeech"):
        actions = [a for a in child._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
        out += [f"## `{command}`", "", _cell(child.description or help_text), ""]
        if actions:
            out += ["| argument | required | default | meaning |", "|---|---|---|---|", *map(_row, actions), ""]
    return "\n".join(out).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="fail if the page is out of date instead of writing it")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            print(f"{PAGE.relative_to(ROOT)} is out of date: run python scripts/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.parent.mkdir(parents=True, exist_ok=True)
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
