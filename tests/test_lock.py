"""The set-up's lock (scripts/requirements.lock, scripts/requirements-nodeps.lock) against pyproject.toml and the venv.

`scripts/setup.sh` installs exactly the lock (`pip install --require-hashes`); `scripts/lock.sh` refreshes it.
A lock that no longer satisfies pyproject.toml's ranges (a changed extra without a refresh) fails here, and so does
a venv whose versions are not the lock's (a set-up that installed something else: "pip freeze vs lock").
"""
from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "scripts" / "requirements.lock"
NODEPS_LOCK = ROOT / "scripts" / "requirements-nodeps.lock"
EXTRAS = ("offline", "audio", "view", "test", "docs")  # what setup.sh installs (and lock.sh locks)
# the platform the lock is for (scripts/lock.sh): markers are evaluated there
ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.7", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
               "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def read_lock(path: Path) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes)."""
    pins: dict[str, tuple[Version, int]] = {}
    name = None
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            name = canonicalize_name(m.group(1))
            pins[name] = (Version(m.group(2)), 0)
        elif name and "--hash=sha256:" in line:
            pins[name] = (pins[name][0], pins[name][1] + 1)
    return pins


def required(extras: tuple[str, ...]) -> list[Requirement]:
    """The package's requirements with these extras, its own `jaspeech[...]` extras expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs, todo, seen = [Requirement(r) for r in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for r in map(Requirement, project["optional-dependencies"][extra]):
            if canonicalize_name(r.name) == "jaspeech":
                todo += sorted(r.extras)
            else:
                reqs.append(r)
    return [r for r in reqs if r.marker is None or r.marker.evaluate(ENVIRONMENT)]


def test_every_requirement_of_the_locked_extras_is_satisfied_by_a_locked_version():
    pins = read_lock(LOCK)
    unmet = []
    for r in required(EXTRAS):
        name = canonicalize_name(r.name)
        if name not in pins:
            unmet.append(f"{r} is not in the lock")
        elif not r.specifier.contains(pins[name][0], prereleases=True):
            unmet.append(f"{r}: the lock has {pins[name][0]}")
    assert not unmet, "scripts/requirements.lock disagrees with pyproject.toml; run bash scripts/lock.sh:\n" + \
        "\n".join(unmet)


def test_the_locks_pin_every_package_with_hashes_and_the_cpu_torch():
    pins = read_lock(LOCK)
    assert len(pins) > 100 and all(n for _, n in pins.values()), "a locked package without --hash"
    assert str(pins["torch"][0]) == "2.13.0+cpu"
    nodeps = read_lock(NODEPS_LOCK)
    assert set(nodeps) == {"cosyvoice2-fr-infer", "openai-whisper"} and all(n for _, n in nodeps.values())
    setup = (ROOT / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "--require-hashes -r scripts/requirements.lock" in setup
    assert "--no-deps --require-hashes -r scripts/requirements-nodeps.lock" in setup


def test_the_venv_has_exactly_the_locked_versions():
    """pip freeze against the lock, for every package the locks name (what a fresh set-up must give)."""
    differ = []
    for path in (LOCK, NODEPS_LOCK):
        for name, (version, _) in read_lock(path).items():
            try:
                installed = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                installed = None
            if installed is None or Version(installed) != version:
                differ.append(f"{name}: locked {version}, installed {installed}")
    assert not differ, "this venv is not the lock's; rerun bash scripts/setup.sh:\n" + "\n".join(differ)
