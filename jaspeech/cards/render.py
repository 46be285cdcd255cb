"""Render a corpus folder's README.md (the dataset card) from what is on disk.

Every number comes from the Parquet shards, the reject files and the plans in the folder, never from
the build's memory, so `jaspeech card DIR` after any change gives a true card. Prose lives in
`templates/<corpus>.md.j2` (Jinja2) so maintainers edit it without touching code.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import datasets
import jinja2
import pyarrow.parquet as pq
import yaml

from jaspeech import __version__
from jaspeech.builders.corpus import CorpusSpec

TEMPLATES = Path(__file__).parent / "templates"


def _size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def config_stats(out: Path, config: str) -> dict:
    """Counts recomputed from the shards and rejects of one config."""
    files = sorted((out / "data" / config).glob("*.parquet"))
    durations: list[float] = []
    speakers: Counter[str] = Counter()
    num_bytes = 0
    for f in files:
        t = pq.read_table(f, columns=["duration", "speaker"])
        durations += t.column("duration").to_pylist()
        speakers.update(t.column("speaker").to_pylist())
        num_bytes += f.stat().st_size
    reasons: Counter[str] = Counter()
    for f in sorted((out / "rejects" / config).glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            reasons.update(json.loads(line)["reason"] for line in fh if line.strip())
    plan_path = out / "manifests" / config / "plan.json"
    plan = json.loads(plan_path.read_text(encoding="utf-8")) if plan_path.exists() else {}
    hours = sum(durations) / 3600
    return {
        "name": config,
        "rows": len(durations),
        "hours": hours,
        "mean_seconds": sum(durations) / len(durations) if durations else 0.0,
        "num_bytes": num_bytes,
        "speakers": dict(sorted(speakers.items())),
        "rejects": sum(reasons.values()),
        "reject_reasons": dict(reasons.most_common()),
        "plan": plan,
    }


def front_matter(spec: CorpusSpec, stats: list[dict]) -> dict:
    licenses = sorted({spec.configs[s["name"]].license for s in stats})
    total = sum(s["rows"] for s in stats)
    return {
        "license": licenses[0] if len(licenses) == 1 else "other",
        "language": ["ja"],
        "task_categories": list(spec.task_categories),
        "size_categories": [_size_category(total)],
        "source_datasets": [spec.configs[s["name"]].hub_id for s in stats],
        "pretty_name": spec.pretty_name,
        "tags": ["speech", "synthetic", "tts", "japanese"],
        "configs": [
            {"config_name": s["name"], "data_files": [{"split": "train", "path": f"data/{s['name']}/*.parquet"}]}
            for s in stats
        ],
        "dataset_info": [
            datasets.DatasetInfo(
                features=spec.features,
                config_name=s["name"],
                splits=[{"name": "train", "num_examples": s["rows"], "num_bytes": s["num_bytes"]}],
            )._to_yaml_dict()
            for s in stats
        ],
    }


def render_card(out: Path, spec: CorpusSpec) -> str:
    configs = [c for c in spec.configs if (out / "data" / c).is_dir()]
    stats = [config_stats(out, c) for c in configs]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    body = env.get_template(spec.card_template).render(
        spec=spec,
        stats=stats,
        sources=[spec.configs[s["name"]] for s in stats],
        total_rows=sum(s["rows"] for s in stats),
        total_hours=sum(s["hours"] for s in stats),
        total_rejects=sum(s["rejects"] for s in stats),
        features=spec.features,
        version=__version__,
    )
    yaml_text = yaml.safe_dump(front_matter(spec, stats), sort_keys=False, allow_unicode=True)
    return f"---\n{yaml_text}---\n\n{body}"


def write_card(out: Path, spec: CorpusSpec) -> Path:
    path = out / "README.md"
    path.write_text(render_card(out, spec), encoding="utf-8")
    return path
