"""The build driver: plan a config, run its shards (resuming), then write the card.

A plan (`manifests/<config>/plan.json`) fixes everything a row's content depends on: input, limit,
shard count, backends and thresholds, and the positions of duplicate ids. Re-running the same command
continues where it stopped; a different plan for the same config needs `--overwrite`.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaspeech import __version__
from jaspeech.builders import corpus_spec, executors
from jaspeech.builders.pipeline import RowBuilder, SynthesisOptions, source_id_of
from jaspeech.builders.schema import RowReject
from jaspeech.builders.sources import InputSource
from jaspeech.builders.writer import ShardWriter, read_manifest, write_json_atomic
from jaspeech.synthesis.speakers import stable_hash
from jaspeech.synthesis.text import TextOptions

ROWS_PER_SHARD = 2000  # default shard size: small enough to lose little on a kill
ASR_BATCH_ROWS = 16  # rows whose clips go to the ASR backend in one call (GPU backends batch them)


@dataclass
class BuildOptions:
    corpus: str
    config: str
    out: Path
    input: str | None = None  # None: the source's hub id
    split: str = "train"
    limit: int | None = None
    tts: str = "kokoro"
    tts_model: str | None = None  # model folder for GPU backends (cosyvoice2)
    speakers: str | None = None  # reference speakers folder for zero-shot backends
    asr: str = "faster-whisper"
    asr_model: str | None = None
    captioner: str | None = None  # fsd50k: labels | openai | qwen3-omni (default labels)
    captioner_model: str | None = None
    captioner_url: str | None = None
    captioner_concurrency: int = 8
    max_kana_cer: float = 0.10
    max_seconds: float = 120.0
    num_shards: int | None = None
    shard_index: int | None = None
    workers: int = 1
    overwrite: bool = False
    quiet: bool = False
    executor: str = "local"  # local | slurm | ray
    ray_address: str | None = None
    gpus_per_task: float = 0
    cpus_per_task: int = 2
    dry_run: bool = False  # slurm: print the script instead of submitting it
    slurm_template: str | None = None
    slurm_time: str = "24:00:00"
    slurm_partition: str | None = None
    slurm_max_parallel: int = 64


class PlanMismatch(RuntimeError):
    pass


def _log(opts: BuildOptions, msg: str) -> None:
    if not opts.quiet:
        print(msg, file=sys.stderr, flush=True)


def _duplicates(source: InputSource, id_field: str | None, limit: int | None) -> dict[str, int]:
    """Positions whose source id already appeared earlier in the input -> the first position.

    Ids are hashed to 64 bits into a numpy array, so memory stays ~8 bytes per input row.
    """
    if not id_field:
        return {}
    hashes = array("Q")
    for pos, raw in source.iter_rows(limit=limit):
        hashes.append(stable_hash("id", source_id_of(raw, id_field, pos)))
    h = np.frombuffer(hashes, dtype=np.uint64)
    order = np.argsort(h, kind="stable")  # stable: within equal ids, input order
    sorted_h = h[order]
    starts = np.r_[True, sorted_h[1:] != sorted_h[:-1]]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(h.size), 0))
    return {str(int(order[i])): int(order[run_start[i]]) for i in np.flatnonzero(~starts)}


def make_plan(opts: BuildOptions) -> dict:
    spec = corpus_spec(opts.corpus)
    if opts.config not in spec.configs:
        raise ValueError(f"{opts.corpus} has no config {opts.config!r}; choose from {', '.join(spec.configs)}")
    cfg = spec.configs[opts.config]
    input_spec = opts.input or cfg.hub_id
    if not input_spec:
        raise ValueError(f"{opts.corpus} has no default input: pass --input")
    source = open_source(spec, input_spec, cfg, opts.split)
    num_rows = source.count(opts.limit)
    num_shards = opts.num_shards or max(1, math.ceil(num_rows / ROWS_PER_SHARD))
    return {
        "corpus": opts.corpus,
        "config": opts.config,
        "input": input_spec,
        "split": opts.split,
        "limit": opts.limit,
        "num_rows": num_rows,
        "num_shards": num_shards,
        "tts": opts.tts,
        "tts_model": opts.tts_model,
        "speakers": opts.speakers,
        "asr": opts.asr,
        "asr_model": opts.asr_model,
        "captioner": opts.captioner,
        "captioner_model": opts.captioner_model,
        "captioner_url": opts.captioner_url,
        "captioner_concurrency": opts.captioner_concurrency,
        "max_kana_cer": opts.max_kana_cer,
        "max_seconds": opts.max_seconds,
        "duplicates": _duplicates(source, cfg.id_field, opts.limit),
    }


def open_source(spec, input_spec: str, cfg, split: str):
    factory = spec.open_source or InputSource
    return factory(input_spec, cfg.name, cfg.hub_id, split)


def _plan_path(out: Path, config: str) -> Path:
    return out / "manifests" / config / "plan.json"


def _clear_config(out: Path, config: str) -> None:
    for part in ("data", "rejects", "manifests"):
        shutil.rmtree(out / part / config, ignore_errors=True)


def load_or_create_plan(opts: BuildOptions) -> dict:
    path = _plan_path(opts.out, opts.config)
    plan = make_plan(opts)
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        old.pop("jaspeech_version", None)
        if old != plan:
            if not opts.overwrite:
                changed = sorted(k for k in plan if old.get(k) != plan[k])
                raise PlanMismatch(
                    f"{path} holds a build of {opts.config!r} with different settings ({', '.join(changed)}); "
                    "rerun with the same options to resume, or add --overwrite to rebuild this config"
                )
            _clear_config(opts.out, opts.config)
    elif opts.overwrite:
        _clear_config(opts.out, opts.config)
    write_json_atomic(path, {**plan, "jaspeech_version": __version__})
    return plan


# --- running shards -------------------------------------------------------------------------------

_BUILDERS: dict[str, object] = {}


def row_builder(plan: dict):
    """One builder (and one loaded model of each kind) per process and plan."""
    key = json.dumps({k: v for k, v in plan.items() if k != "duplicates"}, sort_keys=True)
    if key not in _BUILDERS:
        from jaspeech.synthesis.asr import make_asr
        from jaspeech.synthesis.tts import make_tts

        spec = corpus_spec(plan["corpus"])
        if spec.make_builder:
            _BUILDERS[key] = spec.make_builder(plan)
            return _BUILDERS[key]
        _BUILDERS[key] = RowBuilder(
            spec,
            spec.configs[plan["config"]],
            make_tts(plan["tts"], model=plan.get("tts_model"), speakers=plan.get("speakers")),
            make_asr(plan["asr"], plan["asr_model"]),
            SynthesisOptions(plan["max_kana_cer"], TextOptions(max_seconds=plan["max_seconds"])),
        )
    return _BUILDERS[key]


def run_shard(out: Path, plan: dict, shard: int) -> dict:
    """Process every input row of one shard and publish the shard; returns its manifest."""
    spec = corpus_spec(plan["corpus"])
    cfg = spec.configs[plan["config"]]
    builder = row_builder(plan)
    source = open_source(spec, plan["input"], cfg, plan["split"])
    writer = ShardWriter(out, cfg.name, shard, plan["num_shards"], spec.features)
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
                writer.reject(result.position, result.source_id, result.reason, result.detail)
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
                writer.reject(pos, sid, e.reason, e.detail)
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


def build(opts: BuildOptions) -> dict:
    """Build (or resume) one config into `opts.out`; returns a summary of all its shards."""
    opts.out.mkdir(parents=True, exist_ok=True)
    plan = load_or_create_plan(opts)
    if opts.shard_index is not None and not 0 <= opts.shard_index < plan["num_shards"]:
        raise ValueError(f"--shard-index must be in [0, {plan['num_shards']})")
    todo = pending_shards(opts.out, plan, opts.shard_index)
    _log(opts, f"{opts.corpus}/{opts.config}: {plan['num_rows']} input rows in {plan['num_shards']} shards, "
         f"{len(todo)} to build ({opts.executor} executor)")
    if opts.executor == "slurm":
        script = executors.slurm_script(opts, plan, opts.slurm_template)
        if opts.dry_run:
            print(script, end="")
        else:
            job = executors.submit_slurm(script, opts.out, opts.config)
            _log(opts, f"submitted Slurm array job {job} ({plan['num_shards']} tasks)")
        return {**summarize(opts.out, plan), "submitted": not opts.dry_run}
    progress = executors.Progress(plan, todo, opts.quiet)
    try:
        if opts.executor == "ray":
            executors.run_ray(opts.out, plan, todo, opts.ray_address, opts.gpus_per_task, opts.cpus_per_task,
                              progress.update)
        elif opts.executor == "local":
            executors.run_local(opts.out, plan, todo, opts.workers, progress.update)
        else:
            raise ValueError(f"unknown executor {opts.executor!r}; choose local, slurm or ray")
    finally:
        progress.close()

    summary = summarize(opts.out, plan)
    if summary["complete"]:
        from jaspeech.cards.render import write_card

        write_card(opts.out, corpus_spec(opts.corpus))
    _log(opts, f"{opts.config}: {summary['rows']} rows kept, {summary['rejects']} rejected, "
         f"{summary['audio_hours']:.3f} h" + ("" if summary["complete"] else " (incomplete)"))
    return summary


def summarize(out: Path, plan: dict) -> dict:
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
