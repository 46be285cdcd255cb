"""The shard writer: Parquet rows, JSONL rejects and a manifest per shard, published atomically.

Layout inside the output folder (a Hugging Face dataset repo):
    data/<config>/train-00003-of-00008.parquet       rows (audio as FLAC bytes, `huggingface` schema metadata)
    rejects/<config>/train-00003-of-00008.jsonl      {source_index, source_id, reason, detail} per dropped row
    rejects/<config>/train-00003-of-00008.audio.parquet   with --keep-reject-audio: the audio of rows rejected
                                                     after synthesis (source_index, turn, text, transcript,
                                                     kana_cer, audio), so a person can hear why
    manifests/<config>/train-00003-of-00008.json     counts, hours, reasons, file sizes and sha256

Files are written under a `.partial` name and renamed when complete; the manifest is renamed last,
so a shard is complete exactly when its manifest exists. Anything else is redone on the next run.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Audio, Features, Value

PARTIAL = ".partial"
ROW_GROUP_ROWS = 64
REJECT_AUDIO = Features({
    "source_index": Value("int64"),
    "turn": Value("int32"),  # index of the spoken turn in the row's conversation
    "text": Value("string"),  # what was spoken
    "transcript": Value("string"),  # what the ear heard (null if the row was rejected before the round trip)
    "kana_cer": Value("float32"),
    "audio": Audio(),  # FLAC bytes
})


def shard_stem(shard: int, num_shards: int) -> str:
    return f"train-{shard:05d}-of-{num_shards:05d}"


def shard_paths(out: Path, config: str, shard: int, num_shards: int) -> dict[str, Path]:
    stem = shard_stem(shard, num_shards)
    return {
        "data": out / "data" / config / f"{stem}.parquet",
        "rejects": out / "rejects" / config / f"{stem}.jsonl",
        "reject_audio": out / "rejects" / config / f"{stem}.audio.parquet",
        "manifest": out / "manifests" / config / f"{stem}.json",
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _publish(partial: Path, final: Path) -> None:
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, final)


def write_json_atomic(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + PARTIAL)
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    _publish(tmp, path)


class ShardWriter:
    def __init__(self, out: Path, config: str, shard: int, num_shards: int, features: Features,
                 keep_reject_audio: bool = False) -> None:
        self.paths = shard_paths(out, config, shard, num_shards)
        self.out, self.shard, self.num_shards = out, shard, num_shards
        for p in self.paths.values():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.with_name(p.name + PARTIAL).unlink(missing_ok=True)
        self._reject_audio = None  # streamed, like the rows: rejects of a 2000-row shard may hold hours of audio
        if keep_reject_audio:
            self._reject_audio_tmp = self.paths["reject_audio"].with_name(self.paths["reject_audio"].name + PARTIAL)
            self._reject_audio = pq.ParquetWriter(self._reject_audio_tmp, REJECT_AUDIO.arrow_schema,
                                                  compression="zstd")
        else:
            del self.paths["reject_audio"]
        self._schema = features.arrow_schema
        self._data_tmp = self.paths["data"].with_name(self.paths["data"].name + PARTIAL)
        self._rejects_tmp = self.paths["rejects"].with_name(self.paths["rejects"].name + PARTIAL)
        self._parquet = pq.ParquetWriter(self._data_tmp, self._schema, compression="zstd")
        self._rejects = open(self._rejects_tmp, "w", encoding="utf-8")
        self._buffer: list[dict] = []
        self.rows = 0
        self.audio_seconds = 0.0
        self.reasons: Counter[str] = Counter()
        self.speakers: Counter[str] = Counter()

    def add(self, row: dict) -> None:
        self._buffer.append(row)
        self.rows += 1
        self.audio_seconds += row["duration"]
        if "speaker" in row:
            self.speakers[row["speaker"]] += 1
        if len(self._buffer) >= ROW_GROUP_ROWS:
            self._flush()

    def reject(self, position: int, source_id: str, reason: str, detail: str, audio: list[dict] | None = None) -> None:
        """Record a dropped row; `audio` (spoken turns: turn, text, transcript, kana_cer, audio) is kept
        beside the rejects when the build keeps reject audio."""
        record = {"source_index": position, "source_id": source_id, "reason": reason, "detail": detail[:2000]}
        self._rejects.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.reasons[reason] += 1
        if audio and self._reject_audio is not None:
            self._reject_audio.write_table(pa.Table.from_pylist([{"source_index": position, **a} for a in audio],
                                                                schema=REJECT_AUDIO.arrow_schema))

    def _flush(self) -> None:
        if self._buffer:
            self._parquet.write_table(pa.Table.from_pylist(self._buffer, schema=self._schema))
            self._buffer = []

    def close(self, extra: dict) -> dict:
        """Publish data and rejects, then the manifest; return the manifest."""
        self._flush()
        self._parquet.close()
        self._rejects.close()
        _publish(self._data_tmp, self.paths["data"])
        _publish(self._rejects_tmp, self.paths["rejects"])
        if self._reject_audio is not None:  # one file per shard, empty when no row was dropped after TTS
            self._reject_audio.close()
            _publish(self._reject_audio_tmp, self.paths["reject_audio"])
        files = {
            str(p.relative_to(self.out)): {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
            for k, p in self.paths.items() if k != "manifest"
        }
        manifest = {
            "shard": self.shard,
            "num_shards": self.num_shards,
            "rows": self.rows,
            "rejects": sum(self.reasons.values()),
            "audio_hours": self.audio_seconds / 3600,
            "reject_reasons": dict(sorted(self.reasons.items())),
            "speakers": dict(sorted(self.speakers.items())),
            "files": files,
            **extra,
        }
        write_json_atomic(self.paths["manifest"], manifest)
        return manifest

    def abort(self) -> None:
        self._parquet.close()
        self._rejects.close()
        self._data_tmp.unlink(missing_ok=True)
        self._rejects_tmp.unlink(missing_ok=True)
        if self._reject_audio is not None:
            self._reject_audio.close()
            self._reject_audio_tmp.unlink(missing_ok=True)


def read_manifest(out: Path, config: str, shard: int, num_shards: int) -> dict | None:
    """The shard's manifest if the shard is complete (manifest present, files of the recorded size)."""
    path = shard_paths(out, config, shard, num_shards)["manifest"]
    if not path.exists():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    for rel, info in manifest["files"].items():
        f = out / rel
        if not f.exists() or f.stat().st_size != info["bytes"]:
            return None
    return manifest
