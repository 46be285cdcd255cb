"""`jaspeech export moshi`: a `-duplex` config as training data for Moshi-family full-duplex models.

Two layouts, both one stereo 16-bit PCM WAV per dialogue with the model's own voice (our assistant) on the left
channel (0) and the user on the right (1), and word times in seconds on the WAV's clock:

- `jmoshi` (`shogo0731/jmoshi-ft`, the J-Moshi fine-tuning code): `audio/<id>.wav` and `text/<id>.json`, a list of
  `{"speaker": "A"|"B", "word", "start", "end"}` sorted by start; A is the left channel. Japanese words carry no
  spaces: tokenise with `tools.tokenize_text --no_whitespace_before_word`.
- `moshi-finetune` (`kyutai-labs/moshi-finetune`): `audio/<id>.wav`, beside it `audio/<id>.json` =
  `{"alignments": [[word, [start, end], "SPEAKER_MAIN"|"SPEAKER_OTHER"], ...]}` sorted by start (SPEAKER_MAIN:
  channel 0), and the index `<config>.jsonl`, one `{"path", "duration"}` per WAV (absolute paths: the trainer
  opens each WAV's `.json` from the path as written, whatever its working directory).

Resumable and atomic per file: each file is written under a `.partial` name and renamed; a dialogue whose timing
file exists is done (the WAV is renamed first) and is skipped on a rerun. The index is rewritten at the end from
every dialogue exported. A row that cannot be exported is named in `export-failures.jsonl` and in the summary.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

PARTIAL = ".partial"


@dataclass(frozen=True)
class Target:
    """What differs between the layouts: where the timing file goes, the speaker labels, the timing file's shape."""

    timing_dir: str  # folder of the timing JSON, beside `audio/` or inside it
    labels: tuple[str, str]  # channel 0, channel 1
    index: bool  # write `<config>.jsonl` of {path, duration}


TARGETS = {
    "jmoshi": Target("text", ("A", "B"), index=False),
    "moshi-finetune": Target("audio", ("SPEAKER_MAIN", "SPEAKER_OTHER"), index=True),
}


def seconds(x: float) -> float:
    """The one rounding of every exported time: milliseconds (what both anchors' examples carry)."""
    return round(float(x), 3)


def timing(words: list[dict], layout: str) -> object:
    """The timing file's content for one dialogue: its words sorted by start (then channel), in the layout's shape."""
    labels = TARGETS[layout].labels
    ordered = sorted(words, key=lambda w: (w["start"], w["channel"], w["end"]))
    if layout == "jmoshi":
        return [{"speaker": labels[w["channel"]], "word": w["word"], "start": seconds(w["start"]),
                 "end": seconds(w["end"])} for w in ordered]
    return {"alignments": [[w["word"], [seconds(w["start"]), seconds(w["end"])], labels[w["channel"]]]
                           for w in ordered]}


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + PARTIAL)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _wav(flac: bytes, sample_rate: int | None) -> tuple[bytes, float, int]:
    import soundfile as sf

    x, sr = sf.read(io.BytesIO(flac), dtype="float32", always_2d=True)
    if x.shape[1] != 2:
        raise ValueError(f"the stored audio has {x.shape[1]} channel(s), not 2: is this a -duplex config?")
    if sample_rate and sample_rate != sr:
        import soxr

        x, sr = soxr.resample(x, sr, sample_rate).astype(np.float32), sample_rate
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1.0, 1.0), sr, format="WAV", subtype="PCM_16")
    return buf.getvalue(), x.shape[0] / sr, sr


def complete_shards(build: Path, config: str) -> tuple[list[Path], list[str]]:
    """The Parquet files of the config's complete shards (their manifest exists), and the incomplete ones' names."""
    plan_path = build / "manifests" / config / "plan.json"
    if not plan_path.exists():
        raise FileNotFoundError(f"{plan_path} does not exist: build the config first "
                                f"(jaspeech build ... --config {config} --out {build})")
    num = json.loads(plan_path.read_text(encoding="utf-8"))["num_shards"]
    done, missing = [], []
    for k in range(num):
        stem = f"train-{k:05d}-of-{num:05d}"
        if (build / "manifests" / config / f"{stem}.json").exists():
            done.append(build / "data" / config / f"{stem}.parquet")
        else:
            missing.append(stem)
    return done, missing


def export_moshi(build: Path, out: Path, config: str, layout: str = "jmoshi", sample_rate: int | None = None) -> dict:
    """Export every kept row of `config` (complete shards only); returns counts and the failures by id."""
    if layout not in TARGETS:
        raise ValueError(f"unknown --layout {layout!r}; choose from {', '.join(TARGETS)}")
    build, out = Path(build), Path(out)
    target = TARGETS[layout]
    shards, incomplete = complete_shards(build, config)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    (out / target.timing_dir).mkdir(parents=True, exist_ok=True)
    index, failures, written, skipped = [], [], 0, 0
    for shard in shards:
        if "words" not in pq.read_schema(shard).names:
            raise ValueError(f"{config} has no word times: export moshi reads -duplex configs only")
        table = pq.read_table(shard, columns=["id", "audio", "duration", "words"])
        for row in table.to_pylist():
            wav_path = out / "audio" / f"{row['id']}.wav"
            json_path = out / target.timing_dir / f"{row['id']}.json"
            try:
                if json_path.exists() and wav_path.exists():
                    skipped += 1
                    duration = _wav_duration(wav_path)
                else:
                    wav, duration, _ = _wav(row["audio"]["bytes"], sample_rate)
                    _atomic(wav_path, wav)
                    _atomic(json_path, json.dumps(timing(row["words"], layout), ensure_ascii=False).encode("utf-8"))
                    written += 1
                index.append({"path": str(wav_path.resolve()), "duration": seconds(duration)})
            except Exception as e:  # one bad row is named, the others are exported
                failures.append({"id": row["id"], "error": f"{type(e).__name__}: {e}"})
    if target.index:
        _atomic(out / f"{config}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in index).encode())
    _atomic(out / "export-failures.jsonl",
            "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures).encode("utf-8"))
    return {"config": config, "layout": layout, "exported": len(index), "written": written, "skipped": skipped,
            "failed": len(failures), "incomplete_shards": incomplete}


def _wav_duration(path: Path) -> float:
    import soundfile as sf

    info = sf.info(str(path))
    return info.frames / info.samplerate
