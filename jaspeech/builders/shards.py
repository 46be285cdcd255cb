"""Run one shard of a stored plan: read its rows, build each with the corpus's row builder, write it.

This is all an executor's task does (a local worker, a Ray task, a Slurm array task): it needs the
plan and the shard index, nothing from the driver. The corpus spec brings the row builder
(`spec.make_builder`), so this module knows no TTS, ASR or captioner.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from jaspeech.builders import corpus_spec
from jaspeech.builders.schema import RowReject
from jaspeech.builders.sources import open_source, source_id_of
from jaspeech.builders.writer import ShardWriter, read_manifest

ASR_BATCH_ROWS = 16  # rows finished together: one batched ASR / captioner call (GPU backends batch them)

_BUILDERS: dict[str, object] = {}


def row_builder(plan: dict):
    """One builder (and one loaded model of each kind) per process and plan."""
    key = json.dumps({k: v for k, v in plan.items() if k != "duplicates"}, sort_keys=True)
    if key not in _BUILDERS:
        spec = corpus_spec(plan["corpus"])
        _BUILDERS[key] = spec.make_builder(spec, plan)
    return _BUILDERS[key]


def shard_rows(num_rows: int, num_shards: int, shard: int) -> int:
    """Input rows in a shard (positions shard, shard + S, ... below num_rows)."""
    return max(0, (num_rows - shard + num_shards - 1) // num_shards)


def run_shard(out: Path, plan: dict, shard: int) -> dict:
    """Process every input row of one shard and publish the shard; returns its manifest."""
    spec = corpus_spec(plan["corpus"])
    cfg = spec.configs[plan["config"]]
    builder = row_builder(plan)
    source = open_source(spec, plan["input"], cfg, plan["split"])
    writer = ShardWriter(out, cfg.name, shard, plan["num_shards"], spec.features_of(cfg.name),
                         keep_reject_audio=plan.get("keep_reject_audio", False))
    duplicates = plan["duplicates"]
    t0, before = time.perf_counter(), dict(vars(builder.timers))
    batch: list = []

    def finish(pending: list) -> list:
        """The batch's rows; if it raises, each row alone, so only the row that trips a bug is lost to it."""
        try:
            return builder.finish(pending)
        except Exception as e:
            if len(pending) == 1:
                p = pending[0]
                return [RowReject("internal_error", f"{type(e).__name__}: {e}", position=p.position,
                                  source_id=p.source_id)]
            return [r for p in pending for r in finish([p])]

    def flush() -> None:
        for result in finish(batch):
            if isinstance(result, RowReject):
                writer.reject(result.position, result.source_id, result.reason, result.detail, result.audio)
            else:
                writer.add(result)
        batch.clear()

    try:
        for pos, raw in source.iter_rows(shard, plan["num_shards"], plan["limit"]):
            sid = source_id_of(raw, cfg.id_field, pos)
            if str(pos) in duplicates:
                writer.reject(pos, sid, "duplicate_id", f"same id as input position {duplicates[str(pos)]}")
                continue
            try:
                batch.append(builder.prepare(pos, raw, sid))
            except RowReject as e:
                writer.reject(pos, sid, e.reason, e.detail, e.audio)
            except Exception as e:  # a bug on one odd row is recorded, not fatal; the detail says what
                writer.reject(pos, sid, "internal_error", f"{type(e).__name__}: {e}")
            if len(batch) >= ASR_BATCH_ROWS:
                flush()
        flush()
    except BaseException:
        writer.abort()
        raise
    return writer.close(
        {
            "wall_seconds": time.perf_counter() - t0,
            **{f"{k}_seconds": v - before[k] for k, v in vars(builder.timers).items()},
        }
    )


def pending_shards(out: Path, plan: dict, only: int | None = None) -> list[int]:
    shards = range(plan["num_shards"]) if only is None else [only]
    return [k for k in shards if read_manifest(out, plan["config"], k, plan["num_shards"]) is None]


def summarize(out: Path, plan: dict) -> dict:
    """The build's state from the shard manifests on disk (complete or not)."""
    manifests = [read_manifest(out, plan["config"], k, plan["num_shards"]) for k in range(plan["num_shards"])]
    done = [m for m in manifests if m is not None]
    reasons: dict[str, int] = {}
    for m in done:
        for r, n in m["reject_reasons"].items():
            reasons[r] = reasons.get(r, 0) + n
    return {
        "config": plan["config"],
        "complete": len(done) == plan["num_shards"],
        "shards_done": len(done),
        "num_shards": plan["num_shards"],
        "input_rows": plan["num_rows"],
        "rows": sum(m["rows"] for m in done),
        "rejects": sum(m["rejects"] for m in done),
        "audio_hours": sum(m["audio_hours"] for m in done),
        "reject_reasons": dict(sorted(reasons.items())),
        "wall_seconds": sum(m["wall_seconds"] for m in done),
        **{k: sum(m.get(k, 0.0) for m in done) for k in ("tts_seconds", "asr_seconds", "caption_seconds")},
    }
