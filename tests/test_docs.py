"""The documentation: the README a newcomer reads first, the docs site (built strictly, as CI builds it), and a
command-line reference that lists every sub-command and option `--help` prints."""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# the two commands of a fresh clone: set up + the main job on the embedded default, set up + the tests
MAIN_JOB = ("bash scripts/setup.sh && .venv/bin/jaspeech build jaspeech-sft-audio --config magpie --input sample "
            "--out build/jaspeech-sft-audio && .venv/bin/python -c \"from datasets import load_dataset; "
            "ds = load_dataset('build/jaspeech-sft-audio', 'magpie', split='train'); print(ds); t = ds[0]['turns'][0]; "
            "print(t['kana_cer'], t['dnsmos'], t['signal'])\"")
TESTS = "bash scripts/setup.sh && .venv/bin/python -m pytest -q -rs"


def _code_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)]


def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    first, second = _code_blocks(text)[:2]
    assert first == MAIN_JOB and second == TESTS
    assert "bash scripts/setup.sh && .venv/bin/python -m pytest -q -rs" in (ROOT / ".ci" / "run").read_text()


def test_the_docs_site_builds_strictly(tmp_path):
    """`mkdocs build --strict`: a broken link, a missing page or a page outside the nav fails the build."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "site" / "index.html").exists()


def test_the_cli_reference_lists_every_sub_command_and_option():
    from jaspeech.cli import make_parser

    done = subprocess.run([sys.executable, "scripts/cli_reference.py", "--check"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")

    def walk(parser: argparse.ArgumentParser, command: str):
        assert f"## `{command}`" in page, command
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):  # -h/--help: every command has it
                continue
            for option in action.option_strings:
                assert f"`{option}`" in page, f"{command} {option}"
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{command} {name}")

    parser = make_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                walk(child, f"jaspeech {name}")


def test_every_link_of_the_readme_resolves():
    """The README sends a newcomer to the docs pages: each relative link (and image) is a file of the repository."""
    text = README.read_text(encoding="utf-8")
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    assert len(targets) >= 15
    for target in targets:
        assert (ROOT / target.split("#")[0]).is_file(), target
