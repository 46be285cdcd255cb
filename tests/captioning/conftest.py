"""A generated miniature FSD50K release (Zenodo layout) with every kind of trouble."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CC0 = "http://creativecommons.org/publicdomain/zero/1.0/"
BY3 = "http://creativecommons.org/licenses/by/3.0/"
BY4 = "https://creativecommons.org/licenses/by/4.0/"
BYNC = "http://creativecommons.org/licenses/by-nc/3.0/"
SAMPLING = "http://creativecommons.org/licenses/sampling+/1.0/"

# (id, split, labels, licence, note); note: "" normal, "missing" no file, "corrupt" broken WAV,
# "nometa" no clips-info entry
CLIPS = [
    ("1001", "train", "Dog,Animal", CC0, ""),
    ("1002", "train", "Electric_guitar,Guitar,Music", BY3, ""),
    ("1003", "val", "Rain,Water", CC0, ""),
    ("1004", "train", "Male_speech_and_man_speaking,Speech", BY4, ""),
    ("1005", "train", "Bell", BYNC, ""),
    ("1006", "val", "Car_passing_by,Vehicle", SAMPLING, ""),
    ("1007", "train", "Knock", "http://example.org/my-own-licence", ""),
    ("1008", "train", "Clapping", CC0, "missing"),
    ("1009", "train", "Bird", BY3, "corrupt"),
    ("1010", "train", "Wind", CC0, "nometa"),
    ("2001", "eval", "Thunder", CC0, ""),
    ("2002", "eval", "Piano,Music", BY3, ""),
    ("../../../etc/passwd", "eval", "Speech", CC0, ""),
    ("2004", "eval", "Cough", None, ""),
]


def write_release(root: Path, clips=CLIPS, sample_rate: int = 16000) -> Path:
    for d in ("FSD50K.dev_audio", "FSD50K.eval_audio", "FSD50K.ground_truth", "FSD50K.metadata"):
        (root / d).mkdir(parents=True, exist_ok=True)
    info = {"dev": {}, "eval": {}}
    rows = {"dev": [], "eval": []}
    for n, (clip_id, split, labels, license_url, note) in enumerate(clips):
        part = "eval" if split == "eval" else "dev"
        row = {"fname": clip_id, "labels": labels, "mids": ",".join(f"/m/{i}" for i in range(labels.count(",") + 1))}
        if part == "dev":
            row["split"] = split
        rows[part].append(row)
        if note != "nometa":
            entry = {"title": f"clip {clip_id}", "description": "made for the test", "tags": ["test"],
                     "uploader": f"user{n % 3}"}
            if license_url is not None:
                entry["license"] = license_url
            info[part][clip_id] = entry
        wav = root / f"FSD50K.{part}_audio" / f"{clip_id}.wav"
        if note == "missing" or "/" in clip_id:
            continue
        if note == "corrupt":
            wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage")
            continue
        t = np.arange(int(sample_rate * (0.5 + 0.1 * n))) / sample_rate
        tone = 0.3 * np.sin(2 * np.pi * (200 + 40 * n) * t) * np.exp(-t)
        sf.write(wav, (tone * 32767).astype(np.int16), sample_rate, subtype="PCM_16")
    for part in ("dev", "eval"):
        fields = ["fname", "labels", "mids"] + (["split"] if part == "dev" else [])
        with open(root / "FSD50K.ground_truth" / f"{part}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows[part])
        (root / "FSD50K.metadata" / f"{part}_clips_info_FSD50K.json").write_text(json.dumps(info[part]), "utf-8")
    return root


@pytest.fixture
def release(tmp_path) -> Path:
    return write_release(tmp_path / "FSD50K")
