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
from jaspeech.builders.plan import DEFAULT_GROUP_ROWS
from jaspeech.builders.schema import RowReject
from jaspeech.builders.sources import open_source, source_id_of
from jaspeech.builders.writer import ShardWriter, read_manifest

_BUILDERS: dict[str, object] = {}


def row_builder(plan: dict, out: Path | None = None):
    """One builder (and one loaded model of each kind) per process, plan and build folder."""
    key = json.dumps({**{k: v for k, v in plan.items() if k != "duplicates"}, "_out": str(out)}, sort_keys=True)
    if key not in _BUILDERS:
        spec = corpus_spec(plan["corpus"], [plan])
        _BUILDERS[key] = spec.make_builder(spec, plan, out)
    return _BUILDERS[key]


def shard_rows(num_rows: int, num_shards: int, shard: int) -> int:
    """Input rows in a shard (positions shard, shard + S, ... below num_rows)."""
    return max(0, (num_rows - shard + num_shards - 1) // num_shards)


def run_shard(out: Path, plan: dict, shard: int) -> dict:
    """Process every input row of one shard and publish the shard; returns its manifest."""
    spec = corpus_spec(plan["corpus"], [plan])
    cfg = spec.configs[plan["config"]]
    builder = row_builder(plan, out)
    source = open_source(spec, plan["input"], cfg, plan["split"])
    writer = ShardWriter(out, cfg.name, shard, plan["num_shards"], spec.features_of(cfg.name),
                         keep_reject_audio=plan.get("keep_reject_audio", False))
    duplicates = plan["duplicates"]
    # groups: consecutive rows of the shard by position, of the plan's size (never formed by timing), so a rerun
    # forms the same groups; on a GPU, where kernels may round differently by batch shape, that is what makes a
    # rerun reproduce the shard's bytes. On CPU a row's content is the same in any group.
    group_rows = int(plan.get("group_rows") or DEFAULT_GROUP_ROWS)
    t0, before = time.perf_counter(), dict(vars(builder.timers))

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

    def build_group(group: list[tuple[int, object, str]]) -> None:
        """Prepare the group's rows together, finish those that got through, write every outcome in input order."""
        outcome: dict[int, object] = {}
        rows = []
        for pos, raw, sid in group:
            if str(pos) in duplicates:
                outcome[pos] = RowReject("duplicate_id", f"same id as input position {duplicates[str(pos)]}",
                                         position=pos, source_id=sid)
            else:
                rows.append((pos, raw, sid))
        prepared = builder.prepare_group(rows)
        pending = [p for p in prepared if not isinstance(p, RowReject)]
        outcome.update({r.position: r for r in prepared if isinstance(r, RowReject)})
        outcome.update({p.position: r for p, r in zip(pending, finish(pending))})
        for pos, _, sid in group:
            result = outcome[pos]
            if isinstance(result, RowReject):
                writer.reject(pos, sid, result.reason, result.detail, result.audio)
            else:
                writer.add(result)

    try:
        group: list[tuple[int, object, str]] = []
        for pos, raw in source.iter_rows(shard, plan["num_shards"], plan["limit"]):
            group.append((pos, raw, source_id_of(raw, cfg.id_field, pos)))
            if len(group) >= group_rows:
                build_group(group)
                group = []
        if group:
            build_group(group)
    except BaseException:
        writer.abort()
        raise
    return writer.close(
        {
            "wall_seconds": time.perf_counter() - t0,
            **{f"{k}_seconds": v - before[k] for k, v in vars(builder.timers).items()},
            **getattr(builder, "manifest_fields", {}),  # e.g. the quality scorer's version (jaspeech rescore)
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
        **{k: sum(m.get(k, 0.0) for m in done) for k in ("tts_seconds", "asr_seconds", "caption_seconds", "quality_seconds")},
    }
