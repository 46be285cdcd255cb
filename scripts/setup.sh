#!/usr/bin/env bash
# Set up jaspeech with the offline default stack in ./.venv (idempotent; safe to rerun).
#   - Debian's FFmpeg 5.1 libraries, which torchcodec 0.13 (audio decoding in `datasets`) loads
#   - Debian's chromium + chromium-driver, for the browser test of `jaspeech view` (selenium drives them;
#     nothing is downloaded at test time)
#   - exactly the versions of scripts/requirements.lock, checked against its hashes: the package's offline, audio,
#     view, test and docs extras with CPU torch 2.13.0 + torchcodec 0.13.0 (the offline extra brings
#     pyopenjtalk-plus with its Sudachi dictionary; docs: MkDocs, Material and mkdocstrings, for the strict site
#     build in the tests), then the package itself (editable, --no-deps). The lock is for CPython 3.11 on linux
#     x86_64; another Python gets pyproject.toml's ranges instead, with a warning. Refresh: bash scripts/lock.sh
#   - upstream CosyVoice (the cosyvoice2-fr-infer wheel) and openai-whisper without their declared pins
#     (scripts/requirements-nodeps.lock)
set -euo pipefail
cd "$(dirname "$0")/.."

libs="libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4 chromium chromium-driver"
if ! dpkg -s $libs >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $libs >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if .venv/bin/python -c 'import sys, platform; sys.exit(not (sys.version_info[:3] >= (3, 11, 5) and sys.version_info[:2] == (3, 11) and platform.machine() == "x86_64"))'; then
    .venv/bin/python -m pip install -q --require-hashes -r scripts/requirements.lock
    .venv/bin/python -m pip install -q --no-deps -e .
else
    echo "warning: scripts/requirements.lock is for CPython 3.11.5+ on x86_64, not $(.venv/bin/python -V) on $(uname -m):" \
         "installing pyproject.toml's ranges instead, so versions (and the rows they build) may differ from CI's" >&2
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e '.[offline,audio,view,test,docs]'
fi
# upstream CosyVoice's code for the cosyvoice2 test: its wheel and openai-whisper declare pins we must not
# take (transformers 4.40.1, numpy 1.26, torchaudio, deepspeed; whisper's triton), their runtime
# modules come with the test extra
.venv/bin/python -m pip install -q --no-deps --require-hashes -r scripts/requirements-nodeps.lock
echo "jaspeech set up in .venv"
