"""`jaspeech rescore DIR`: add or refresh the quality columns of a built corpus from its stored audio.

A build made before the quality stage existed, or with `--quality none`, or scored by an older model, gets
`turns[].dnsmos` and `turns[].signal` without resynthesising: each complete shard's Parquet is read row group
by row group, every spoken turn's FLAC is decoded and scored (the same code as the build's quality stage, so a
rescore of a build gives the build's scores), and the shard is rewritten in the corpus's current schema with
every other value unchanged (same rows, order, row groups, audio bytes). No row is dropped: the filters
(`--min-dnsmos`, `--max-silence`) stay the build's.

Per shard, atomically and resumably: the new Parquet is written as `<shard>.parquet.partial`, the new manifest
as `<shard>.json.rescore`, then the Parquet is renamed over the old one and the manifest last. A shard whose
manifest already names the scorer's version is skipped, so a second run changes nothing; an interrupted run is
finished by running it again (a `.json.rescore` whose Parquet is in place is just renamed). Shards that are not
complete are left to `jaspeech build`. The plan's `quality` is updated, and the card rebuilt.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jaspeech.builders import corpus_spec
from jaspeech.builders.environment import current_environment
from jaspeech.builders.writer import PARTIAL, _publish, read_manifest, sha256_file, shard_paths, write_json_atomic
from jaspeech.synthesis.audio import decode_audio
from jaspeech.synthesis.quality import make_quality, scorer_version, signal_checks

PENDING = ".rescore"  # suffix of a shard's new manifest until its rescored Parquet is in place


def _score_rows(rows: list[dict], scorer) -> None:
    """Set `dnsmos` and `signal` of every turn of `rows` in place (null for turns without audio)."""
    clips = []
    for r in rows:
        for t in r.get("turns") or []:
            audio = t.get("audio")
            if audio and audio.get("bytes"):
                clips.append((t, decode_audio(audio["bytes"])))
            else:
                t["dnsmos"], t["signal"] = None, None
    scores = scorer.score([c for _, c in clips]) if scorer is not None else [None] * len(clips)
    for (t, (samples, sr)), mos in zip(clips, scores):
        t["dnsmos"], t["signal"] = mos, signal_checks(samples, sr)


def _finish_pending(paths: dict[str, Path]) -> bool:
    """Complete a rescore that was interrupted after its Parquet was written; True if it did."""
    pending = paths["manifest"].with_name(paths["manifest"].name + PENDING)
    if not pending.exists():
        return False
    manifest = json.loads(pending.read_text(encoding="utf-8"))
    data = paths["data"]
    info = next(v for k, v in manifest["files"].items() if k.endswith(data.name) and "/data/" in f"/{k}")
    if data.exists() and data.stat().st_size == info["bytes"] and sha256_file(data) == info["sha256"]:
        os.replace(pending, paths["manifest"])
        return True
    pending.unlink()  # killed before the Parquet was renamed: the old shard is intact, score it again
    return False


def rescore_shard(out: Path, config: str, shard: int, num_shards: int, features, scorer) -> dict:
    """Rewrite one complete shard with fresh quality columns; returns its new manifest."""
    paths = shard_paths(out, config, shard, num_shards)
    manifest = json.loads(paths["manifest"].read_text(encoding="utf-8"))
    schema = features.arrow_schema
    tmp = paths["data"].with_name(paths["data"].name + PARTIAL)
    t0 = time.perf_counter()
    source = pq.ParquetFile(paths["data"])
    writer = pq.ParquetWriter(tmp, schema, compression="zstd")
    try:
        for group in range(source.num_row_groups):  # the build's row groups, kept as they are
            rows = source.read_row_group(group).to_pylist()
            _score_rows(rows, scorer)
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    rel = str(paths["data"].relative_to(out))
    manifest["files"][rel] = {"bytes": tmp.stat().st_size, "sha256": sha256_file(tmp)}
    manifest["quality_scorer"] = scorer_version(scorer)
    manifest["quality_seconds"] = time.perf_counter() - t0
    manifest["rescore_environment"] = current_environment()  # what scored the quality columns (`environment`: the rest)
    pending = paths["manifest"].with_name(paths["manifest"].name + PENDING)
    write_json_atomic(pending, manifest)
    _publish(tmp, paths["data"])
    os.replace(pending, paths["manifest"])
    return manifest


def rescore(out: Path, config: str | None = None, quality: str = "dnsmos", quiet: bool = False) -> dict:
    """Rescore every complete shard of `config` (default: every config with a plan) in `out`; rebuild the card.

    Returns per config: shards rescored, skipped (already scored by this version) and incomplete."""
    out = Path(out)
    plans = {p.parent.name: p for p in sorted(out.glob("manifests/*/plan.json"))}
    if not plans:
        raise FileNotFoundError(f"{out} holds no jaspeech build (no manifests/<config>/plan.json)")
    if config is not None and config not in plans:
        raise ValueError(f"{out} has no build of {config!r}; it has {', '.join(plans)}")
    corpus = json.loads(next(iter(plans.values())).read_text(encoding="utf-8"))["corpus"]
    spec = corpus_spec(corpus)
    scorer = make_quality(quality)
    version = scorer_version(scorer)
    summary = {}
    for name in [config] if config else list(plans):
        features = spec.features_of(name)
        if "turns" not in features:
            raise ValueError(f"{name!r} ({corpus}) has no spoken turns to score (FSD50K clips are not synthesised "
                             "speech); pass --config to rescore one of the TTS configs")
        plan = json.loads(plans[name].read_text(encoding="utf-8"))
        done = {"rescored": 0, "skipped": 0, "incomplete": 0, "quality_seconds": 0.0}
        for k in range(plan["num_shards"]):
            paths = shard_paths(out, name, k, plan["num_shards"])
            _finish_pending(paths)
            manifest = read_manifest(out, name, k, plan["num_shards"])
            if manifest is None:
                done["incomplete"] += 1
            elif manifest.get("quality_scorer") == version:
                done["skipped"] += 1
            else:
                new = rescore_shard(out, name, k, plan["num_shards"], features, scorer)
                done["rescored"] += 1
                done["quality_seconds"] += new["quality_seconds"]
                if not quiet:
                    print(f"{name}: shard {k + 1}/{plan['num_shards']} rescored ({new['rows']} rows, "
                          f"{new['quality_seconds']:.1f} s)", file=sys.stderr, flush=True)
        if plan.get("quality") != quality and not done["incomplete"]:
            write_json_atomic(plans[name], {**plan, "quality": quality})  # a resumed build now agrees
        summary[name] = {**done, "quality_scorer": version}
    from jaspeech.cards.render import write_card

    write_card(out, spec)
    return summary
