"""Reading an extracted FSD50K release (Zenodo layout) into one metadata row per clip.

    FSD50K.dev_audio/<id>.wav          FSD50K.ground_truth/dev.csv   (fname, labels, mids, split)
    FSD50K.eval_audio/<id>.wav         FSD50K.ground_truth/eval.csv  (fname, labels, mids)
    FSD50K.metadata/dev_clips_info_FSD50K.json, eval_clips_info_FSD50K.json
        {"<freesound id>": {"title", "description", "tags", "license", "uploader"}, ...}

The ground-truth CSVs define the clip set and its order (dev then eval), which is the accounting
order: every clip ends up kept or rejected. Licences are read from the URL, never guessed.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Iterator

SPLITS = (("dev", "FSD50K.dev_audio"), ("eval", "FSD50K.eval_audio"))

# licence URL pattern -> class; only cc0 and cc-by are ever published
_LICENSES = (
    (re.compile(r"creativecommons\.org/publicdomain/zero/1\.0/?$"), "cc0"),
    (re.compile(r"creativecommons\.org/licenses/by/(3\.0|4\.0)/?$"), "cc-by"),
    (re.compile(r"creativecommons\.org/licenses/by-nc/\d\.\d/?$"), "cc-by-nc"),
    (re.compile(r"creativecommons\.org/licenses/sampling\+/\d\.\d/?$"), "sampling+"),
)
PUBLISHABLE = ("cc0", "cc-by")


def license_class(url: object) -> str | None:
    """'cc0', 'cc-by', 'cc-by-nc', 'sampling+', or None for a missing or unknown licence."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    for pattern, name in _LICENSES:
        if pattern.search(url) and url.startswith(("http://", "https://")):
            return name
    return None


def freesound_url(clip_id: str) -> str:
    return f"https://freesound.org/s/{clip_id}/"


def _read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _read_info(path: Path) -> dict:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object keyed by Freesound id, as in the FSD50K release; --input must be "
                         "the extracted release folder (FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.metadata/)")
    return data


def check_release(root: Path) -> None:
    missing = [p for p in ("FSD50K.ground_truth/dev.csv", "FSD50K.ground_truth/eval.csv") if not (root / p).exists()]
    if missing:
        raise FileNotFoundError(
            f"{root} is not an extracted FSD50K release: missing {', '.join(missing)} "
            "(expected FSD50K.dev_audio/, FSD50K.eval_audio/, FSD50K.ground_truth/, FSD50K.metadata/)"
        )


def iter_clips(root: Path) -> Iterator[dict]:
    """One metadata row per ground-truth clip, dev then eval, joined with the clips info.

    The row keeps the raw `fname` as `id`; validating it (decimal, file inside the audio folder) is the
    builder's job, so that a bad entry becomes a reject rather than an exception here.
    """
    root = Path(root)
    check_release(root)
    for split, audio_dir in SPLITS:
        info = _read_info(root / "FSD50K.metadata" / f"{split}_clips_info_FSD50K.json")
        for row in _read_csv(root / "FSD50K.ground_truth" / f"{split}.csv"):
            clip_id = (row.get("fname") or "").strip()
            meta = info.get(clip_id)
            yield {
                "id": clip_id,
                "audio_dir": str(root / audio_dir),
                "fsd50k_split": row.get("split", "eval") if split == "dev" else "eval",
                "labels": [x for x in (row.get("labels") or "").split(",") if x],
                "mids": [x for x in (row.get("mids") or "").split(",") if x],
                "has_metadata": isinstance(meta, dict),
                "title": meta.get("title") if isinstance(meta, dict) else None,
                "description": meta.get("description") if isinstance(meta, dict) else None,
                "tags": meta.get("tags") if isinstance(meta, dict) else None,
                "license": meta.get("license") if isinstance(meta, dict) else None,
                "uploader": meta.get("uploader") if isinstance(meta, dict) else None,
            }


def resolve_audio(row: dict) -> Path:
    """The clip's WAV path, refusing ids that are not decimal or paths that leave the audio folder."""
    clip_id = row["id"]
    if not re.fullmatch(r"[0-9]{1,12}", clip_id or ""):
        raise ValueError(f"id {clip_id!r} is not a decimal Freesound id")
    folder = Path(row["audio_dir"]).resolve()
    path = (folder / f"{clip_id}.wav").resolve()
    if path.parent != folder:
        raise ValueError(f"{path} is outside {folder}")
    return path
