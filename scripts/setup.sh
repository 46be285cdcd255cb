#!/usr/bin/env bash
# Set up jaspeech with the offline default stack in ./.venv (idempotent; safe to rerun).
#   - Debian's FFmpeg 5.1 libraries, which torchcodec 0.13 (audio decoding in `datasets`) loads
#   - Debian's chromium + chromium-driver, for the browser test of `jaspeech view` (selenium drives them;
#     nothing is downloaded at test time), and fonts-noto-cjk so its screenshots show Japanese, not boxes
#   - CPU torch 2.13.0 + torchcodec 0.13.0, then a plain pip install of the package with its offline, audio,
#     view and test extras (the offline extra brings pyopenjtalk-plus with its Sudachi dictionary)
set -euo pipefail
cd "$(dirname "$0")/.."

libs="libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4 chromium chromium-driver fonts-noto-cjk"
if ! dpkg -s $libs >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $libs >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[offline,audio,view,test]'
echo "jaspeech set up in .venv"
