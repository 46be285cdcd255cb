"""A content digest of a built corpus folder, to compare builds across code changes.

Rows are compared by content (ids, positions, speakers, texts, scores, decoded PCM samples), rejects by
(position, id, reason, detail), so the digest does not depend on Parquet or FLAC encoder versions.
`tests/data/build-digest.json` holds the digest of the bundled samples built before the build flow was
restructured (issue 15); `test_build_flow.py` builds them again and compares.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

# (corpus, config) built from the bundled samples with the fast deterministic stack
SAMPLE_BUILDS = [
    ("jaspeech-sft-audio", "magpie"),
    ("jaspeech-sft-audio", "automultiturn"),
    ("jaspeech-dpo-audio", "hh-rlhf"),
    ("jaspeech-dpo-audio", "chatbot-arena"),
    ("jaspeech-sft-audio", "automultiturn-duplex"),  # one stereo recording per row (recorded when it was added)
]
# pinned so later changes of defaults do not change what is compared
SAMPLE_OPTIONS = {"tts": "openjtalk", "asr": "none", "max_seconds": 30.0, "max_kana_cer": 0.10}


def _pcm_sha(audio: dict | None) -> str | None:
    if not audio or audio.get("bytes") is None:
        return None
    samples, sr = sf.read(io.BytesIO(audio["bytes"]), dtype="int16")
    return f"{sr}:{hashlib.sha256(np.ascontiguousarray(samples).tobytes()).hexdigest()[:16]}"


def _turn(t: dict) -> dict:
    return {"role": t["role"], "text": t["text"], "audio": _pcm_sha(t.get("audio")),
            "duration": None if t.get("duration") is None else round(t["duration"], 4),
            "transcript": t.get("transcript")}


def config_digest(out: Path, config: str) -> dict:
    rows = []
    for f in sorted((out / "data" / config).glob("*.parquet")):
        for r in pq.read_table(f).to_pylist():
            row = {k: v for k, v in r.items() if k not in ("turns", "duration")}
            row["turns"] = [_turn(t) for t in r.get("turns") or []]
            if "audio" in row:  # a duplex row's stereo recording
                row["audio"] = _pcm_sha(row["audio"])
            rows.append(row)
    rejects = []
    for f in sorted((out / "rejects" / config).glob("*.jsonl")):
        rejects += [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"rows": sorted(rows, key=lambda r: r["source_index"]),
            "rejects": sorted(rejects, key=lambda r: r["source_index"])}
