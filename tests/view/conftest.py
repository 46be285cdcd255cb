"""Corpora built by the real `jaspeech build` for the viewer's tests, and `jaspeech view` servers over them.

The corpora use the synthetic `tone` TTS without ASR (fast), except where a test needs scores. Each
server is the real command, `python -m jaspeech view DIR --port 0`, in its own process; it is stopped
with SIGINT (Ctrl-C) and must exit cleanly.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from jaspeech.builders.writer import REJECT_AUDIO
from jaspeech.cli import main as cli
from tests.captioning.conftest import write_release

ROOT = Path(__file__).resolve().parents[2]



def flac_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def write_reject_audio(path: Path, rows: list[dict]) -> Path:
    """Write a reject-audio shard (rejects/<config>/<shard>.audio.parquet) with the build's own schema
    (`REJECT_AUDIO`), with known tones so the page's player can be checked to the sample; the build itself
    writes it with `--keep-reject-audio` (tests/builders/test_reject_audio.py serves a real one). Rows carry
    source_index, turn, text, transcript, kana_cer and `flac` (bytes)."""
    table = pa.Table.from_pylist(
        [{**{k: r[k] for k in ("source_index", "turn", "text", "transcript", "kana_cer")},
          "audio": {"bytes": r["flac"], "path": None}} for r in rows],
        schema=REJECT_AUDIO.arrow_schema)
    pq.write_table(table, path)
    return path


def build(*args: str) -> None:
    assert cli(["build", *args, "--quiet"]) == 0


@pytest.fixture(scope="session")
def sft_corpus(tmp_path_factory) -> Path:
    """jaspeech-sft-audio: magpie (the full sample: 25 kept, 13 rejected with tone TTS) and automultiturn (8 input rows),
    both tone TTS, no ASR; plus reject audio for two magpie rejects."""
    out = tmp_path_factory.mktemp("sft") / "jaspeech-sft-audio"
    build("jaspeech-sft-audio", "--config", "magpie", "--input", "sample", "--tts", "tone", "--asr", "none",
          "--out", str(out))
    build("jaspeech-sft-audio", "--config", "automultiturn", "--input", "sample", "--limit", "8", "--tts", "tone",
          "--asr", "none", "--out", str(out))
    rejects = [json.loads(line) for line in
               (out / "rejects/magpie/train-00000-of-00001.jsonl").read_text(encoding="utf-8").splitlines()]
    t = np.arange(8000) / 16000
    write_reject_audio(out / "rejects/magpie/train-00000-of-00001.audio.parquet", [
        {"source_index": rejects[0]["source_index"], "turn": 0, "text": "今日は良い天気ですね。",
         "transcript": "今日はいい天気ですね", "kana_cer": 0.0, "flac": flac_bytes(0.3 * np.sin(2 * np.pi * 440 * t))},
        {"source_index": rejects[1]["source_index"], "turn": 0, "text": "三月に京都へ行きます。",
         "transcript": "散歩に行きます", "kana_cer": 0.45, "flac": flac_bytes(0.3 * np.sin(2 * np.pi * 660 * t))},
    ])
    return out


@pytest.fixture(scope="session")
def dpo_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dpo") / "jaspeech-dpo-audio"
    build("jaspeech-dpo-audio", "--config", "hh-rlhf", "--input", "sample", "--limit", "8", "--tts", "tone",
          "--asr", "none", "--out", str(out))
    return out


@pytest.fixture(scope="session")
def fsd_corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fsd")
    out = root / "fsd50k-cc-captions"
    build("fsd50k-cc-captions", "--config", "cc0", "--input", str(write_release(root / "FSD50K")), "--out", str(out))
    return out


class Server:
    """`python -m jaspeech view FOLDER --port 0` in a child process; `url` once it printed it."""

    def __init__(self, folder: Path, *extra: str):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        self.stderr = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty server never blocks
        self.proc = subprocess.Popen([sys.executable, "-m", "jaspeech", "view", str(folder), "--port", "0", *extra],
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env, cwd=ROOT)
        self.url = ""
        self.lines: list[str] = []

    def wait(self, timeout: float = 180) -> "Server":
        """Read stdout until the URL line (in a thread, so a silent server cannot hang the tests)."""
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in iter(self.proc.stdout.readline, "")] + [lines.put("")],
                         daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self.url:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise TimeoutError(f"jaspeech view printed no URL in {timeout:.0f} s: {self.errors()}") from None
            if not line:
                raise RuntimeError(f"jaspeech view exited: {self.proc.wait()} {self.errors()}")
            self.lines.append(line)
            if line.startswith("http://"):
                self.url = line.strip()
        return self

    def errors(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> int:
        """Ctrl-C, as a person would; returns the exit status."""
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


@contextlib.contextmanager
def serving(folder: Path):
    server = Server(folder).wait()
    try:
        yield server
    finally:
        assert server.stop() == 0, server.errors()


@pytest.fixture(scope="module")
def servers(sft_corpus, dpo_corpus, fsd_corpus):
    """One server per corpus, started together (each pays the imports in parallel), stopped after the module."""
    started = {name: Server(folder) for name, folder in
               (("sft", sft_corpus), ("dpo", dpo_corpus), ("fsd", fsd_corpus))}
    try:
        yield {name: s.wait() for name, s in started.items()}
    finally:
        codes = {name: s.stop() for name, s in started.items()}
        assert codes == {"sft": 0, "dpo": 0, "fsd": 0}, codes


def get(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, bytes]:
    """(status, lower-cased headers, body) for any status: error statuses are answers too."""
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def get_json(url: str) -> dict:
    status, headers, body = get(url)
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    return json.loads(body)
