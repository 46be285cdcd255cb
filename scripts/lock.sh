#!/usr/bin/env bash
# Refresh the set-up's lock files from pyproject.toml; scripts/setup.sh installs exactly what they name.
#   scripts/requirements.lock         the offline stack with the audio, view, test and docs extras (and torch's
#                                     CPU wheel), every version pinned with its sha256 hashes
#   scripts/requirements-nodeps.lock  upstream CosyVoice's wheel and openai-whisper, installed with --no-deps
# For CPython 3.11 (>= 3.11.5) on linux x86_64, the platform the set-up supports. The package's own ranges in
# pyproject.toml stay ranges; the lock is for the set-up, CI and reproducible builds (docs/reproducibility.md).
#
#   bash scripts/lock.sh            after a change of pyproject.toml: versions already locked are kept
#   bash scripts/lock.sh --upgrade  take the newest versions the ranges allow (then rebuild the samples and
#                                   compare: python benchmarks/environment.py --compare)
#
# Needs uv (`pip install uv`, or UV=/path/to/uv) and the CPU torch wheel on one of pip's configured indexes or
# find-links (`pip config list`); they are passed on to uv.
set -euo pipefail
cd "$(dirname "$0")/.."
uv="${UV:-uv}"
py="${PYTHON:-python3}"
sources=()
for link in $("$py" -m pip config get global.find-links 2>/dev/null || true) ${PIP_FIND_LINKS:-}; do
    sources+=(--find-links "$link")
done
for url in $("$py" -m pip config get global.extra-index-url 2>/dev/null || true) ${PIP_EXTRA_INDEX_URL:-}; do
    sources+=(--extra-index-url "$url")
done
common=(--python-version 3.11.7 --python-platform x86_64-manylinux_2_28 --generate-hashes
        --index-strategy unsafe-best-match --custom-compile-command "bash scripts/lock.sh" "${sources[@]}" "$@")
"$uv" pip compile pyproject.toml --extra offline --extra audio --extra view --extra test --extra docs \
    -c scripts/lock-constraints.txt "${common[@]}" -o scripts/requirements.lock
"$uv" pip compile scripts/requirements-nodeps.in --no-deps "${common[@]}" -o scripts/requirements-nodeps.lock
