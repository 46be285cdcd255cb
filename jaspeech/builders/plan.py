"""Plan a config once: options, row count, shard layout and duplicate ids, stored in `plan.json`.

A plan (`manifests/<config>/plan.json`) fixes everything a row's content depends on: input, limit,
shard count, backends and thresholds, and the positions of duplicate ids. It is made by one pass over
the input (`make_plan`), on the machine that starts the build; every shard task afterwards reads the
stored plan (`read_plan`) and never counts or scans the input again, so 512 array tasks cost one pass
over the source, not 512.
"""
from __future__ import annotations

import json
import math
import shlex
import shutil
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaspeech import __version__
from jaspeech.builders import corpus_spec
from jaspeech.builders.corpus import SOURCE_OPTIONS
from jaspeech.builders.environment import current_environment
from jaspeech.builders.sources import open_source, source_id_of
from jaspeech.builders.writer import write_json_atomic
from jaspeech.synthesis.quality import QUALITY_BACKENDS, default_quality
from jaspeech.synthesis.speakers import stable_hash

ROWS_PER_SHARD = 2000  # default shard size: small enough to lose little on a kill


@dataclass
class BuildOptions:
    corpus: str
    config: str
    out: Path
    input: str | None = None  # None: the source's hub id
    split: str = "train"
    limit: int | None = None
    skip_unreadable: bool = False  # a folder input: skip (and record) files it cannot read instead of failing
    # a dialogue that ends on a user turn: keep-exchanges (up to its last complete exchange; the dropped turn is
    # recorded in the row's provenance where the schema has one), speak (the user turn spoken, unanswered), reject
    trailing_user: str = "keep-exchanges"
    tts: str = "kokoro"
    tts_model: str | None = None  # model folder for GPU backends (cosyvoice2)
    tts_reading: str | None = None  # text | kana (what the TTS is fed); None: the backend's default
    speakers: str | None = None  # reference speakers folder for zero-shot backends
    asr: str = "faster-whisper"
    asr_model: str | None = None
    captioner: str | None = None  # fsd50k: labels | openai | qwen3-omni (default labels)
    captioner_model: str | None = None
    captioner_url: str | None = None
    captioner_concurrency: int = 8
    max_kana_cer: float = 0.10  # the transcript rule's threshold (--ear transcript); recorded with either rule
    ear: str = "forced"  # the round trip's rule: forced (builders/ear.py) | transcript (kana-CER alone)
    max_takes: int = 3  # takes of a spoken turn before its row is rejected (retakes: the row's next seeds)
    max_seconds: float = 120.0
    max_response_seconds: float = 600.0  # longest spoken response (speech-to-speech configs)
    keep_reject_audio: bool = False  # store the audio of rows rejected after synthesis beside the rejects
    quality: str | None = None  # the quality stage's MOS scorer: dnsmos | none; None: default_quality() (dnsmos)
    min_dnsmos: float | None = None  # reject rows whose spoken turn has a DNSMOS OVRL below this (low_quality)
    # reject rows whose spoken turn has a leading, trailing or inner silence longer than this (long_silence); 0 or
    # None: off. 2 s rejects none of the bundled samples' Kokoro turns (longest: 0.82 s; docs/quality.md)
    max_silence: float | None = 2.0
    group_rows: int | None = None  # rows built together (one TTS and one ASR batch); None: default_group_rows(tts)
    num_shards: int | None = None
    shard_index: int | None = None
    plan_only: bool = False  # write the plan and stop (before submitting a job array by hand)
    workers: int = 1
    overwrite: bool = False
    # resume (or run a shard task) although the environment differs from the plan's (builders/environment.py);
    # each new shard's manifest records its own environment either way
    allow_env_change: bool = False
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
    # `spoken` (your own dataset): how rows are read (see builders/spoken.py); other corpora refuse them
    format: str = "auto"  # auto | messages | sharegpt | alpaca
    messages_column: str | None = None
    role_key: str | None = None
    content_key: str | None = None
    user_role: str | None = None  # comma-separated role values (e.g. "human,user")
    assistant_role: str | None = None
    system_role: str | None = None
    instruction_column: str | None = None
    input_column: str | None = None
    output_column: str | None = None
    id_column: str | None = None
    template: str | None = None  # Jinja2 over a row's columns: the spoken user text
    license: str | None = None  # a Hub licence id (card)
    license_name: str | None = None  # with --license other
    license_link: str | None = None
    allow_nd: bool = False  # accept a no-derivatives licence (the builder has the rights holder's permission)
    source_name: str | None = None  # the source's name (a hub id or a free name) for a build from local files
    source_url: str | None = None  # where the source is published, for the card
    # `-duplex` configs (builders/duplex.py, synthesis/duplex/timeline.py says where each default comes from)
    duplex_gap_mean: float = 0.007  # s: mean turn-transition offset (Stivers et al. 2009, Japanese)
    duplex_gap_sd: float = 0.25  # s: its spread (our choice)
    duplex_pause_rate: float = 0.05  # share of turn boundaries with a 1-2 s pause
    duplex_max_overlap: float = 0.6  # s: the most a turn may start before the previous one ends
    duplex_backchannel_rate: float = 6.0  # backchannels per minute of the other party's speech; 0: none


# The options a row's content depends on: a stored plan must agree with them to be resumed.
PLAN_OPTIONS = ("corpus", "config", "input", "split", "limit", "skip_unreadable", "trailing_user", "tts", "tts_model",
                "tts_reading", "speakers", "asr", "asr_model",
                "captioner", "captioner_model", "captioner_url", "captioner_concurrency", "max_kana_cer", "ear",
                "max_takes",
                "max_seconds", "max_response_seconds", "keep_reject_audio", "group_rows", "quality", "min_dnsmos",
                "max_silence", *SOURCE_OPTIONS, "duplex_gap_mean", "duplex_gap_sd", "duplex_pause_rate",
                "duplex_max_overlap", "duplex_backchannel_rate")


# options added later: what plans written before them meant (no quality stage: `jaspeech rescore` adds it)
PLAN_DEFAULTS = {"keep_reject_audio": False, "max_response_seconds": 600.0, "group_rows": 16, "quality": "none",
                 "min_dnsmos": None, "max_silence": None, "format": "auto", "ear": "transcript", "max_takes": 1,
                 "skip_unreadable": False, "trailing_user": "keep-exchanges", "allow_nd": False, "source_name": None,
                 "source_url": None, "duplex_gap_mean": 0.007, "duplex_gap_sd": 0.25, "duplex_pause_rate": 0.05,
                 "duplex_max_overlap": 0.6, "duplex_backchannel_rate": 6.0}
# ... and where an old plan meant something else for one corpus: `spoken` rejected a dialogue ending on a user
# turn (no_response) before --trailing-user; the SFT corpora kept its exchanges
CORPUS_PLAN_DEFAULTS = {"spoken": {"trailing_user": "reject"}}
TRAILING_USER = ("keep-exchanges", "speak", "reject")


def with_defaults(plan: dict) -> dict:
    """A stored plan with the options added since it was written set to what it meant then."""
    return {**PLAN_DEFAULTS, **CORPUS_PLAN_DEFAULTS.get(plan.get("corpus"), {}), **plan}


class PlanMismatch(RuntimeError):
    pass


class NoPlan(FileNotFoundError):
    pass


def plan_path(out: Path, config: str) -> Path:
    return Path(out) / "manifests" / config / "plan.json"


def spec_of(fields: dict):
    """The corpus spec for a plan (or the option fields of one about to be made): a corpus whose configs come from
    the options (`spoken`) makes the config from them."""
    return corpus_spec(fields["corpus"], [fields])


def input_of(opts: BuildOptions, spec=None) -> str:
    spec = spec or corpus_spec(opts.corpus)
    if opts.config not in spec.configs:
        raise ValueError(f"{opts.corpus} has no config {opts.config!r}; choose from {', '.join(spec.configs)}")
    input_spec = opts.input or spec.configs[opts.config].hub_id
    if not input_spec:
        raise ValueError(f"{opts.corpus} has no default input: pass --input")
    return input_spec


# Input rows built together (`shards.run_shard`): one batched TTS call for the group's texts, one batched ASR /
# captioner call for its clips. A GPU backend decodes a group's sentences as one batch: 128 magpie rows are ~400 sentences, enough to fill
# the runtime's decode slots; a CPU voice speaks one text at a time, so a small group keeps a kill cheap.
GROUP_ROWS = {"cosyvoice2": 128}
DEFAULT_GROUP_ROWS = 16


def default_group_rows(tts: str) -> int:
    return GROUP_ROWS.get(tts, DEFAULT_GROUP_ROWS)


def option_fields(opts: BuildOptions) -> dict:
    if opts.group_rows is not None and opts.group_rows < 1:
        raise ValueError(f"--group-rows must be at least 1, not {opts.group_rows}")
    reads = corpus_spec(opts.corpus).options
    stray = [k for k in SOURCE_OPTIONS if getattr(opts, k) != getattr(BuildOptions, k) and k not in reads]
    if stray:
        flags = ", ".join("--" + k.replace("_", "-") for k in stray)
        raise ValueError(f"{flags}: options of `jaspeech build spoken` (your own dataset), not of {opts.corpus}")
    quality = opts.quality or default_quality()
    if quality not in QUALITY_BACKENDS:
        raise ValueError(f"unknown --quality {quality!r}; choose from {', '.join(QUALITY_BACKENDS)}")
    if opts.min_dnsmos is not None and quality == "none":
        raise ValueError("--min-dnsmos filters on the DNSMOS score, which --quality none does not compute: "
                         "drop one of them")
    if opts.trailing_user not in TRAILING_USER:
        raise ValueError(f"--trailing-user must be one of {', '.join(TRAILING_USER)}, not {opts.trailing_user!r}")
    if opts.max_silence is not None and not opts.max_silence >= 0:
        raise ValueError(f"--max-silence must be a number of seconds (0: off), not {opts.max_silence}")
    fields = {k: getattr(opts, k) for k in PLAN_OPTIONS if k not in SOURCE_OPTIONS or k in reads}
    fields["group_rows"] = opts.group_rows or default_group_rows(opts.tts)
    fields["quality"] = quality
    fields["max_silence"] = opts.max_silence or None
    fields["input"] = input_of(opts, spec_of(fields))
    return fields


def find_duplicates(hashes: np.ndarray) -> dict[str, int]:
    """Positions whose id hash appeared earlier -> the first position with that hash.

    Peak memory is a few tens of bytes per input row (the 8-byte hashes, a stable argsort's int64 order,
    the sorted copy and a flag byte; measured in docs/design.md); the result holds only the duplicates.
    """
    order = np.argsort(hashes, kind="stable")  # stable: within equal ids, input order
    sorted_h = hashes[order]
    repeat = np.flatnonzero(sorted_h[1:] == sorted_h[:-1]) + 1  # sorted indices of later copies
    first = np.searchsorted(sorted_h, sorted_h[repeat], side="left")  # start of each copy's run
    return {str(int(order[i])): int(order[j]) for i, j in zip(repeat.tolist(), first.tolist())}


def scan(source, id_field: str | None, limit: int | None) -> tuple[int, dict[str, int]]:
    """One pass over the input: the row count and, if the source has ids, the duplicate positions."""
    if not id_field:
        return source.count(limit), {}
    hashes = array("Q")
    column = getattr(source, "iter_column", None)
    rows = column(id_field, limit) if column else source.iter_rows(limit=limit)
    for pos, raw in rows:
        hashes.append(stable_hash("id", source_id_of(raw, id_field, pos)))
    return len(hashes), find_duplicates(np.frombuffer(hashes, dtype=np.uint64))


def make_plan(opts: BuildOptions) -> dict:
    """Read the input once and fix the plan (nothing is written)."""
    fields = option_fields(opts)
    spec = spec_of(fields)
    source = open_source(spec, fields["input"], spec.configs[opts.config], opts.split, opts.skip_unreadable, opts.out)
    if spec.inspect_input:  # facts of the input the rows depend on (spoken: its format), fixed here once
        fields = {**fields, **spec.inspect_input(fields, source)}
        spec = spec_of(fields)
    cfg = spec.configs[opts.config]
    num_rows, duplicates = scan(source, cfg.id_field, opts.limit)
    fingerprint = source.fingerprint() if hasattr(source, "fingerprint") else []
    skipped = source.skipped_files() if hasattr(source, "skipped_files") else []
    return {
        **fields,
        "num_rows": num_rows,
        "num_shards": opts.num_shards or max(1, math.ceil(num_rows / ROWS_PER_SHARD)),
        "input_files": fingerprint,
        **({"skipped_files": skipped} if skipped else {}),  # --skip-unreadable: what the folder held but was not read
        "duplicates": duplicates,
    }


def option_flags(opts: BuildOptions, names) -> list[str]:
    """Command-line flags for the options `names` of `opts` that are not BuildOptions' defaults (a field's flag
    is its name with dashes: `max_kana_cer` -> `--max-kana-cer`; a boolean is a bare flag). What a task's or
    the plan's command line must carry so the plan check sees the same options."""
    out: list[str] = []
    for name in names:
        value, default = getattr(opts, name), getattr(BuildOptions, name, None)
        if value is None or value == default:
            continue
        flag = "--" + name.replace("_", "-")
        out += [flag] if value is True else [flag, repr(value) if isinstance(value, float) else str(value)]
    return out


# the options a row's content depends on that a command line can set (corpus and config are positional)
COMMAND_OPTIONS = tuple(k for k in PLAN_OPTIONS if k not in ("corpus", "config"))


def plan_command(opts: BuildOptions) -> str:
    """The command that writes the plan for these options (named in errors and the Slurm dry run)."""
    cmd = ["jaspeech", "build", opts.corpus, "--config", opts.config, "--out", str(opts.out)]
    return shlex.join(cmd + option_flags(opts, (*COMMAND_OPTIONS, "num_shards")) + ["--plan-only"])


def read_plan(opts: BuildOptions) -> dict:
    """The stored plan, checked against the options; never reads the input."""
    path = plan_path(opts.out, opts.config)
    if not path.exists():
        raise NoPlan(f"{path} does not exist: a shard task needs the stored plan. Make it once with "
                     f"`{plan_command(opts)}` (or run the build without --shard-index)")
    plan = with_defaults(json.loads(path.read_text(encoding="utf-8")))
    _check(plan, opts, path)
    return plan


def _check(plan: dict, opts: BuildOptions, path: Path) -> None:
    wanted = option_fields(opts)
    plan, wanted = with_defaults(plan), with_defaults(wanted)
    changed = sorted(k for k in PLAN_OPTIONS if plan.get(k) != wanted.get(k))
    if opts.num_shards is not None and plan.get("num_shards") != opts.num_shards:
        changed.append("num_shards")
    if changed:
        raise PlanMismatch(
            f"{path} holds a build of {opts.config!r} with different settings ({', '.join(changed)}); "
            "rerun with the same options to resume, or add --overwrite to rebuild this config"
        )


def stored_plans(out: Path) -> list[dict]:
    """Every config's stored plan in a build folder (what a card is made from)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(out).glob("manifests/*/plan.json"))]


def clear_config(out: Path, config: str) -> None:
    for part in ("data", "rejects", "manifests"):
        shutil.rmtree(Path(out) / part / config, ignore_errors=True)


def load_or_create_plan(opts: BuildOptions) -> dict:
    """Resume with the stored plan when the options agree (no pass over the input), else plan anew.

    A local input whose files changed size since the plan is planned again: the new plan must then
    equal the old one, or the build needs --overwrite. A new plan stores the environment it is made in
    (`environment`); the driver compares it with its own (`environment.check_environment`).
    """
    path = plan_path(opts.out, opts.config)
    if path.exists() and not opts.overwrite:
        old = with_defaults(json.loads(path.read_text(encoding="utf-8")))
        _check(old, opts, path)
        spec = spec_of(old)
        source = open_source(spec, old["input"], spec.configs[opts.config], opts.split, old["skip_unreadable"],
                             opts.out)
        if old.get("input_files", []) == (source.fingerprint() if hasattr(source, "fingerprint") else []):
            return old
        plan = with_defaults(make_plan(opts))
        if {k: v for k, v in old.items() if k not in ("jaspeech_version", "environment")} != plan:
            raise PlanMismatch(f"the input files changed since {path} was written; add --overwrite to rebuild "
                               f"{opts.config!r} from the new input")
        return old
    plan = make_plan(opts)
    if opts.overwrite or path.exists():
        clear_config(opts.out, opts.config)
    plan = {**plan, "jaspeech_version": __version__, "environment": current_environment()}
    write_json_atomic(path, plan)
    return plan
