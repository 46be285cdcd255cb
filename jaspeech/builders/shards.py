"""Run one shard of a stored plan: read its rows, build each with the corpus's row builder, write it.

This is all an executor's task does (a local worker, a Ray task, a Slurm array task): it needs the
plan and the shard index, nothing from the driver. The corpus spec brings the row builder
(`spec.make_builder`), so this module knows no TTS, ASR or captioner.
"""
from __future__ import annotations

import json
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from jaspeech.builders import corpus_spec, environment
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


def _internal_error(pending, error: Exception) -> RowReject:
    return RowReject("internal_error", f"{type(error).__name__}: {error}", position=pending.position,
                     source_id=pending.source_id)


# called after each group is written: (shard, input rows done, seconds of audio kept), so a bar moves per group
ProgressCallback = Callable[[int, int, float], None]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if peak > 1 << 32 else 1024)


def run_shard(out: Path, plan: dict, shard: int, progress: ProgressCallback | None = None,
              allow_env_change: bool = False) -> dict:
    """Process every input row of one shard and publish the shard; returns its manifest. `progress` hears of each
    group once it is written.

    The task checks its own environment against the plan's (a Ray or Slurm task may run on another node than
    the driver) and records it in the manifest, so every shard says what spoke and heard its rows.
    """
    environment.check_environment(plan, f"shard {shard} of {plan['config']!r}", allow_env_change)
    spec = corpus_spec(plan["corpus"], [plan])
    cfg = spec.configs[plan["config"]]
    builder = row_builder(plan, out)
    source = open_source(spec, plan["input"], cfg, plan["split"], bool(plan.get("skip_unreadable")), out)
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
                return [_internal_error(pending[0], e)]
            return [r for p in pending for r in finish([p])]

    def finish_later(pending: list):
        """The round trip now, the rest later (`RowBuilder.finish_later`); the same fallback as `finish`."""
        try:
            return builder.finish_later(pending)
        except Exception as e:
            if len(pending) == 1:
                reject = _internal_error(pending[0], e)
                return lambda: [reject]
            parts = [finish_later([p]) for p in pending]
            return lambda: [r for part in parts for r in part()]

    def start_group(group: list[tuple[int, object, str]]) -> tuple[dict, list]:
        """Prepare the group's rows together (synthesis): the outcomes known so far and the rows still pending."""
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
        return outcome, pending

    def end_group(group: list, outcome: dict, pending: list, rows: list) -> None:
        """Write every outcome of the group in input order."""
        outcome.update({p.position: r for p, r in zip(pending, rows)})
        seconds = 0.0
        for pos, _, sid in group:
            result = outcome.pop(pos)
            if isinstance(result, RowReject):
                writer.reject(pos, sid, result.reason, result.detail, result.audio)
            else:
                writer.add(result)
                seconds += result["duration"]
        if progress is not None:
            progress(shard, len(group), seconds)

    # A row builder with `finish_later` (the TTS corpora) hands the CPU-only rest of a group (FLAC, signal checks,
    # DNSMOS) to one helper thread and synthesises the next group meanwhile; groups are still written in order, and
    # a row is the same either way. Others (FSD50K) finish each group before the next.
    helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="finish") if hasattr(builder, "finish_later") \
        else None
    queued: tuple | None = None  # (group, outcome, pending, future) started but not written yet
    waited = 0.0  # seconds this thread waited for a group's rest: the quality stage's share of the wall time

    def write_queued() -> None:
        nonlocal queued, waited
        if queued is not None:
            group, outcome, pending, future = queued
            queued = None
            t = time.perf_counter()
            try:
                rows = future.result()
            except Exception:  # a bug in the rest of a group: each row again, alone, on this thread
                rows = [r for p in pending for r in finish([p])]
            waited += time.perf_counter() - t
            end_group(group, outcome, pending, rows)

    def build_group(group: list[tuple[int, object, str]]) -> None:
        nonlocal queued
        outcome, pending = start_group(group)
        if helper is None:
            end_group(group, outcome, pending, finish(pending))
            return
        rest = finish_later(pending)
        write_queued()  # the previous group's rest ran while this group was synthesised and heard
        queued = (group, outcome, pending, helper.submit(rest))

    try:
        group: list[tuple[int, object, str]] = []
        for pos, raw in source.iter_rows(shard, plan["num_shards"], plan["limit"]):
            group.append((pos, raw, source_id_of(raw, cfg.id_field, pos)))
            if len(group) >= group_rows:
                build_group(group)
                group = []
        if group:
            build_group(group)
        write_queued()
    except BaseException:
        writer.abort()
        if helper is not None:  # interrupted: do not wait for a group's scoring to end
            helper.shutdown(wait=False, cancel_futures=True)
        raise
    if helper is not None:
        helper.shutdown()
    timers = {k: v - before[k] for k, v in vars(builder.timers).items()}
    return writer.close(
        {
            "wall_seconds": time.perf_counter() - t0,
            **{f"{k}_seconds": v for k, v in timers.items()},
            # on the shard's own thread: all of the quality stage when it runs there, else the wait for the helper
            "quality_wait_seconds": waited if helper is not None else timers.get("quality", 0.0),
            **getattr(builder, "manifest_fields", {}),  # e.g. the quality scorer's version (jaspeech rescore)
            # the worker process's peak resident memory so far (models included; a process that built earlier
            # shards reports their peak too): what a node needs per worker (benchmarks/memory.py)
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "environment": environment.current_environment(),
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
        **{k: sum(m.get(k, 0.0) for m in done)
           for k in ("tts_seconds", "asr_seconds", "caption_seconds", "quality_seconds", "quality_wait_seconds")},
    }
