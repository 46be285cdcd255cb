"""Render a corpus folder's README.md (the dataset card) and assets/ from what is on disk.

Every number comes from the Parquet shards, the reject files and the plans in the folder (see
`stats.py`), never from a build's memory, so `jaspeech card DIR` after any change gives a true card.
Prose lives in `templates/<corpus>.md.j2` (Jinja2) so maintainers edit it without touching code.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePath

import datasets
import jinja2
import yaml

from jaspeech import __version__
from jaspeech.builders.corpus import CorpusSpec
from jaspeech.builders.environment import flatten
from jaspeech.builders.sources import HUB_ID, HUB_PREFIX
from jaspeech.cards.plots import PLOTS, write_plots
from jaspeech.cards.stats import ConfigStats, config_stats
from jaspeech.synthesis.speakers import PROFILES

TEMPLATES = Path(__file__).parent / "templates"


def size_category(n: int) -> str:
    for bound, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < bound:
            return name
    return "1M<n<10M"


def licenses_of(src) -> list[str]:
    return [src.license] if isinstance(src.license, str) else list(src.license)


def front_matter(spec: CorpusSpec, stats: list[ConfigStats]) -> dict:
    """The card's YAML: every fact comes from the corpus spec (language, tasks, tags, sources, licences)."""
    sources = [spec.configs[s.name] for s in stats]
    licenses = sorted({lic for src in sources for lic in licenses_of(src)})
    meta: dict = {"license": licenses[0] if len(licenses) == 1 else licenses}
    other = [src for src in sources if "other" in licenses_of(src)]
    if other:  # the Hub wants a name and a link for a licence that is not one of its ids
        meta["license_name"] = other[0].license_name
        meta["license_link"] = other[0].license_link
    return {
        **meta,
        "language": list(spec.language),
        "task_categories": list(spec.task_categories),
        "size_categories": [size_category(sum(s.rows for s in stats))],
        "source_datasets": list(dict.fromkeys(d for src in sources for d in (src.source_datasets or (src.hub_id,)))),
        "pretty_name": spec.pretty_name,
        "tags": list(spec.tags),
        "configs": [
            {"config_name": s.name, "data_files": [{"split": "train", "path": f"data/{s.name}/*.parquet"}]}
            for s in stats
        ],
        "dataset_info": [
            datasets.DatasetInfo(
                features=spec.features_of(s.name),
                config_name=s.name,
                splits=[{"name": "train", "num_examples": s.rows, "num_bytes": s.num_bytes}],
            )._to_yaml_dict()
            for s in stats
        ],
    }


def full_build(src, stats: ConfigStats) -> bool:
    """A build of the whole known source, whose size compares with the original release's."""
    plan = stats.plan
    if not plan or plan.get("limit") is not None:
        return False
    return plan.get("input") == src.hub_id if src.hub_id else True  # FSD50K: any whole release folder


def shown_input(plan: dict) -> str:
    """The build's input as a card may publish it: a hub id or `sample` as given, a local path by its last part
    only (a card never carries the builder's own paths)."""
    spec = str(plan.get("input", "?"))
    if spec in ("sample", "?") or HUB_ID.fullmatch(spec) or spec.startswith(HUB_PREFIX):
        return spec
    return f"{PurePath(spec).name or spec} (local)"


def built_configs(out: Path, spec: CorpusSpec) -> list[str]:
    return [c for c in spec.configs if (out / "data" / c).is_dir()]


def environment_table(stats: list[ConfigStats]) -> tuple[list[str], list[list[str]]]:
    """Every environment the configs' shards were built in, as columns (`env 1`, ...) of one table whose rows are
    the entries (`numpy`, `models.kokoro`, ...); a header row per config says how many of its shards each built."""
    envs: list[str] = []
    for s in stats:
        envs += [e for e in s.environments if e not in envs]
    flat = [flatten(json.loads(e)) for e in envs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = [[f"shards of `{s.name}`", *[str(s.environments.get(e, 0)) for e in envs]] for s in stats]
    rows += [[f"`{k}`", *["" if f.get(k) is None else str(f[k]) for f in flat]] for k in keys]
    return [f"env {i + 1}" for i in range(len(envs))], rows


def render_card(out: Path, spec: CorpusSpec, stats: list[ConfigStats] | None = None) -> str:
    stats = stats if stats is not None else [config_stats(out, c) for c in built_configs(out, spec)]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["f"] = lambda x, fmt="%.3f": "n/a" if x != x else fmt % x  # NaN-safe number format
    body = env.get_template(spec.card_template).render(
        spec=spec,
        full_build=full_build,
        shown_input=shown_input,
        licenses_of=licenses_of,
        stats=stats,
        sources=[spec.configs[s.name] for s in stats],
        total_rows=sum(s.rows for s in stats),
        total_hours=sum(s.hours for s in stats),
        total_rejects=sum(s.rejects for s in stats),
        plots=PLOTS,
        speakers=PROFILES,
        version=__version__,
        environment_table=environment_table(stats),
    )
    yaml_text = yaml.safe_dump(front_matter(spec, stats), sort_keys=False, allow_unicode=True)
    return f"---\n{yaml_text}---\n\n{body}"


def write_card(out: Path, spec: CorpusSpec) -> Path:
    """(Re)write README.md and assets/*.png of a corpus folder."""
    stats = [config_stats(out, c) for c in built_configs(out, spec)]
    write_plots(stats, out / "assets", captioned="caption" in spec.features)
    path = out / "README.md"
    path.write_text(render_card(out, spec, stats), encoding="utf-8")
    return path
