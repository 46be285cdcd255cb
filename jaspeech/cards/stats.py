"""Statistics of a built corpus, recomputed from its Parquet shards, reject files and plans.

Only the small leaf columns are read (`duration`, `speaker`, the per-turn scores), never the audio
bytes, so a card for a 1,000-hour corpus is computed in seconds and little memory.
"""
from __future__ import annotations

import json
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

_TURN_LEAVES = ["turns.list.element.role", "turns.list.element.cer", "turns.list.element.kana_cer",
                "turns.list.element.duration"]
# the quality stage's leaves (absent in builds made before it: `jaspeech rescore` adds them)
_QUALITY_LEAVES = {"ovrl": "dnsmos.ovrl", "sig": "dnsmos.sig", "bak": "dnsmos.bak", "p808": "dnsmos.p808",
                   "clipping": "signal.clipping", "leading_silence": "signal.leading_silence",
                   "trailing_silence": "signal.trailing_silence", "longest_silence": "signal.longest_silence",
                   "rms_db": "signal.rms_db"}
OVRL_REFERENCE = 3.0  # Emilia-Pipe keeps clips with DNSMOS P.835 OVRL >= 3.0: the card's reference line


def distribution(values) -> dict[str, float]:
    if not len(values):
        return {"n": 0, "mean": float("nan"), "median": float("nan"), "p90": float("nan"), "max": float("nan")}
    a = np.asarray(values, dtype=np.float64)
    return {"n": int(a.size), "mean": float(a.mean()), "median": float(np.median(a)),
            "p90": float(np.percentile(a, 90)), "max": float(a.max())}


@dataclass
class ConfigStats:
    name: str
    rows: int = 0
    num_bytes: int = 0
    # typed arrays, not lists: 8 bytes per row keeps the card's memory flat for million-row corpora
    durations: array = field(default_factory=lambda: array("d"))  # seconds per row
    speaker_seconds: Counter = field(default_factory=Counter)
    cers: array = field(default_factory=lambda: array("d"))  # per spoken turn
    kana_cers: array = field(default_factory=lambda: array("d"))
    spoken_turns: int = 0
    retaken_rows: int = 0  # rows with a spoken turn kept from a retake (turns[].takes > 1)
    takes_per_turn: Counter = field(default_factory=Counter)  # take a spoken turn was kept from -> turns
    turns_per_row: Counter = field(default_factory=Counter)  # number of turns -> rows (partial dialogues)
    trailing_user: Counter = field(default_factory=Counter)  # `provenance.trailing_user` -> rows (spoken)
    # speech-to-speech configs: spoken seconds by role, each spoken response's length, assistant voice hours
    role_seconds: Counter = field(default_factory=Counter)
    response_seconds: array = field(default_factory=lambda: array("d"))
    assistant_voice_seconds: Counter = field(default_factory=Counter)
    reject_reasons: Counter = field(default_factory=Counter)
    # quality stage, per kept spoken turn (any role): DNSMOS scores where scored, signal figures where measured
    quality: dict[str, array] = field(default_factory=lambda: {k: array("d") for k in _QUALITY_LEAVES})
    quality_scorers: Counter = field(default_factory=Counter)  # shard manifests' `quality_scorer` -> shards
    # each environment the config's shards were built in (manifests' `environment`, as sorted JSON) -> shards
    environments: Counter = field(default_factory=Counter)
    caption_words: array = field(default_factory=lambda: array("d"))  # captioned corpora
    licenses: Counter = field(default_factory=Counter)  # licence URL -> clips
    uploaders: Counter = field(default_factory=Counter)
    captioners: set[str] = field(default_factory=set)
    tts_models: set[str] = field(default_factory=set)
    asr_models: set[str] = field(default_factory=set)
    plan: dict = field(default_factory=dict)
    # full-duplex configs: each turn boundary's gap (negative: an overlap) and the backchannels kept
    gaps: array = field(default_factory=lambda: array("d"))
    backchannels: Counter = field(default_factory=Counter)  # word -> count
    duplex: bool = False

    @property
    def overlap_share(self) -> float:
        a = np.frombuffer(self.gaps, dtype=np.float64)
        return float((a < 0).mean()) if a.size else float("nan")

    @property
    def gap(self) -> dict[str, float]:
        return distribution(self.gaps)

    @property
    def backchannels_per_minute(self) -> float:
        minutes = sum(self.durations) / 60
        return sum(self.backchannels.values()) / minutes if minutes else float("nan")

    @property
    def hours(self) -> float:
        return sum(self.durations) / 3600

    @property
    def rejects(self) -> int:
        return sum(self.reject_reasons.values())

    @property
    def input_rows(self) -> int:
        return self.rows + self.rejects

    @property
    def spoken_responses(self) -> bool:
        return bool(self.response_seconds)

    @property
    def response_length(self) -> dict[str, float]:
        return distribution(self.response_seconds)

    @property
    def mean_seconds(self) -> float:
        return self.hours * 3600 / self.rows if self.rows else float("nan")

    @property
    def duration(self) -> dict[str, float]:
        return distribution(self.durations)

    @property
    def cer(self) -> dict[str, float]:
        return distribution(self.cers)

    @property
    def kana_cer(self) -> dict[str, float]:
        return distribution(self.kana_cers)

    @property
    def ovrl(self) -> dict[str, float]:
        return distribution(self.quality["ovrl"])

    def mean(self, key: str) -> float:
        values = self.quality[key]
        return sum(values) / len(values) if len(values) else float("nan")

    def share_below(self, key: str, bound: float) -> float:
        """Share of the measured turns whose `key` is below `bound` (NaN when none was measured)."""
        a = np.frombuffer(self.quality[key], dtype=np.float64)
        return float((a < bound).mean()) if a.size else float("nan")

    def share_above(self, key: str, bound: float) -> float:
        a = np.frombuffer(self.quality[key], dtype=np.float64)
        return float((a > bound).mean()) if a.size else float("nan")

    def quantile(self, key: str, q: float) -> float:
        a = np.frombuffer(self.quality[key], dtype=np.float64)
        return float(np.percentile(a, q)) if a.size else float("nan")

    @property
    def min_dnsmos(self) -> float:
        """The build's --min-dnsmos, else the reference threshold the card compares with (Emilia-Pipe's 3.0)."""
        value = self.plan.get("min_dnsmos")
        return float(value) if value is not None else OVRL_REFERENCE

    @property
    def caption_length(self) -> dict[str, float]:
        return distribution(self.caption_words)

    @property
    def speaker_hours(self) -> dict[str, float]:
        return {k: v / 3600 for k, v in sorted(self.speaker_seconds.items())}


def _duplex_stats(s: ConfigStats, pf: pq.ParquetFile, wanted: list[str], leaves: set[str]) -> None:
    """A duplex shard: durations and voices as any config; scores, gaps and backchannels from its segments."""
    s.duplex = True
    base = "segments.list.element."
    quality = {k: base + leaf for k, leaf in _QUALITY_LEAVES.items() if base + leaf in leaves}
    t = pf.read(columns=wanted + [base + c for c in ("kind", "role", "text", "gap", "cer", "kana_cer", "start", "end")]
                + list(quality.values()))
    s.durations.extend(t.column("duration").to_numpy().astype("float64"))
    for voice_column in ("speaker", "assistant_speaker"):
        for spk, secs in zip(t.column(voice_column).to_pylist(), t.column("duration").to_pylist()):
            if spk and voice_column == "speaker":
                s.speaker_seconds[spk] += secs
            elif spk:
                s.assistant_voice_seconds[spk] += secs
    s.tts_models |= set(t.column("tts_model").unique().to_pylist())
    s.asr_models |= set(t.column("asr_model").unique().to_pylist())
    segs = t.column("segments").combine_chunks().flatten()
    kinds = segs.field("kind").to_numpy(zero_copy_only=False)
    roles = segs.field("role").to_numpy(zero_copy_only=False)
    seconds = (segs.field("end").to_numpy(zero_copy_only=False) - segs.field("start").to_numpy(zero_copy_only=False))
    for role in ("user", "assistant"):
        s.role_seconds[role] += float(seconds[(roles == role) & (kinds == "turn")].sum())
    s.gaps.extend(pc.drop_null(segs.field("gap")).to_numpy(zero_copy_only=False).astype("float64"))
    s.backchannels.update(np.asarray(segs.field("text").to_numpy(zero_copy_only=False))[kinds == "backchannel"].tolist())
    s.spoken_turns += int((kinds == "turn").sum())
    scored = pc.is_valid(segs.field("kana_cer"))
    s.cers.extend(pc.filter(segs.field("cer"), scored).to_numpy(zero_copy_only=False).astype("float64"))
    s.kana_cers.extend(pc.filter(segs.field("kana_cer"), scored).to_numpy(zero_copy_only=False).astype("float64"))
    for key, leaf in quality.items():
        group, name = leaf.split(".")[-2:]
        values = pc.struct_field(segs.field(group), name)
        s.quality[key].extend(pc.drop_null(values).to_numpy(zero_copy_only=False).astype("float64"))


def config_stats(out: Path, config: str) -> ConfigStats:
    s = ConfigStats(name=config)
    for f in sorted((out / "data" / config).glob("*.parquet")):
        pf = pq.ParquetFile(f)
        s.num_bytes += f.stat().st_size
        names = set(pf.schema_arrow.names)
        wanted = ["duration", *(c for c in ("speaker", "assistant_speaker", "tts_model", "asr_model", "caption",
                                             "captioner", "license",
                                             "uploader") if c in names)]
        leaves = {pf.metadata.schema.column(i).path for i in range(pf.metadata.num_columns)}
        quality = {k: f"turns.list.element.{leaf}" for k, leaf in _QUALITY_LEAVES.items()
                   if f"turns.list.element.{leaf}" in leaves}
        if "segments" in names:  # a full-duplex config: its segments are its spoken turns
            _duplex_stats(s, pf, wanted, leaves)
            continue
        turn_leaves = _TURN_LEAVES + (["turns.list.element.takes"] if "turns.list.element.takes" in leaves else [])
        t = pf.read(columns=wanted + (turn_leaves + list(quality.values()) if "turns" in names else []))
        s.durations.extend(t.column("duration").to_numpy().astype("float64"))
        if "speaker" in names:
            by_speaker = t.select(["speaker", "duration"]).group_by("speaker").aggregate([("duration", "sum")])
            for spk, total in zip(by_speaker.column("speaker").to_pylist(),
                                  by_speaker.column("duration_sum").to_pylist()):
                s.speaker_seconds[spk] += total
        for column, target in (("tts_model", s.tts_models), ("asr_model", s.asr_models), ("captioner", s.captioners)):
            if column in names:
                target |= set(t.column(column).unique().to_pylist())
        for column, counter in (("license", s.licenses), ("uploader", s.uploaders)):
            if column in names:
                counts = t.column(column).value_counts()
                counter.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
        if "provenance.trailing_user" in leaves:
            counts = pf.read(columns=["provenance.trailing_user"]).column("provenance").combine_chunks()
            counts = pc.struct_field(counts, "trailing_user").drop_null().value_counts()
            s.trailing_user.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
        if "caption" in names:
            words = pc.list_value_length(pc.utf8_split_whitespace(t.column("caption")))
            s.caption_words.extend(words.to_numpy(zero_copy_only=False).astype("float64"))
        if "turns" in names:
            counts = pc.list_value_length(t.column("turns")).value_counts()
            s.turns_per_row.update(dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist())))
            turns = t.column("turns").combine_chunks().flatten()  # one struct per turn, no Python objects
            seconds = turns.field("duration").fill_null(0).to_numpy(zero_copy_only=False).astype("float64")
            roles = turns.field("role").to_numpy(zero_copy_only=False)
            for role in ("user", "assistant"):
                s.role_seconds[role] += float(seconds[roles == role].sum())
            spoken_reply = (roles == "assistant") & (seconds > 0)
            s.response_seconds.extend(seconds[spoken_reply])
            if "assistant_speaker" in names:
                rows = pc.list_parent_indices(t.column("turns").combine_chunks()).to_numpy()
                per_row = np.bincount(rows[spoken_reply], weights=seconds[spoken_reply], minlength=t.num_rows)
                for voice, secs in zip(t.column("assistant_speaker").to_pylist(), per_row):
                    if voice:
                        s.assistant_voice_seconds[voice] += float(secs)
            if "takes" in turns.type.names:  # builds made before retakes have no takes column
                takes = turns.field("takes").fill_null(0).to_numpy(zero_copy_only=False)
                s.takes_per_turn.update(Counter(int(k) for k in takes[takes > 0]))
                rows = pc.list_parent_indices(t.column("turns").combine_chunks()).to_numpy()
                s.retaken_rows += int(np.unique(rows[takes > 1]).size)
            user = pc.equal(turns.field("role"), "user")
            s.spoken_turns += pc.sum(user).as_py() or 0
            scored = pc.and_(user, pc.is_valid(turns.field("kana_cer")))
            s.cers.extend(pc.filter(turns.field("cer"), scored).to_numpy(zero_copy_only=False).astype("float64"))
            s.kana_cers.extend(
                pc.filter(turns.field("kana_cer"), scored).to_numpy(zero_copy_only=False).astype("float64"))
            for key, leaf in quality.items():
                group, name = leaf.split(".")[-2:]
                values = pc.struct_field(turns.field(group), name)  # null for unspoken or unscored turns
                s.quality[key].extend(pc.drop_null(values).to_numpy(zero_copy_only=False).astype("float64"))
    s.rows = len(s.durations)
    for f in sorted((out / "rejects" / config).glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            s.reject_reasons.update(json.loads(line)["reason"] for line in fh if line.strip())
    for f in sorted((out / "manifests" / config).glob("train-*.json")):
        manifest = json.loads(f.read_text(encoding="utf-8"))
        s.quality_scorers[manifest.get("quality_scorer", "none")] += 1
        if manifest.get("environment"):  # absent in shards built before manifests recorded it
            s.environments[json.dumps(manifest["environment"], sort_keys=True)] += 1
    plan_path = out / "manifests" / config / "plan.json"
    if plan_path.exists():
        s.plan = json.loads(plan_path.read_text(encoding="utf-8"))
    return s
