"""What the viewer knows about a built corpus folder, and the queries its page asks.

At start-up every shard's small leaf columns (id, speaker, duration, per-turn role, text, transcript,
round-trip scores, DNSMOS OVRL and silences; caption and labels for captioned corpora) are read once into flat numpy / Arrow arrays,
never the audio bytes. A table query is then a few vectorised masks, one argsort and a slice: a
100,000-row config answers in milliseconds (`benchmarks/view.py`). A row's other columns and its audio
are read on demand from the one row group that holds it.

Nothing here writes to the folder, and every file it opens comes from listing the folder at start-up:
names in a request are looked up in those listings, never joined onto a path.
"""
from __future__ import annotations

import json
import math
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson
import pyarrow.parquet as pq
from rapidfuzz.distance import Levenshtein

from jaspeech.cer import kotoba_normalize

FIRST_CHARS = 80  # characters of the first spoken turn shown in the table
MAX_LIMIT = 500  # rows per page at most
SORTS = ("position", "config", "id", "speaker", "duration", "cer", "kana_cer", "ovrl", "silence")
REJECT_FIELDS = ("source_index", "source_id", "reason", "detail")
_TURN_LEAVES = ["turns.list.element.role", "turns.list.element.text", "turns.list.element.transcript",
                "turns.list.element.cer", "turns.list.element.kana_cer"]
# the quality stage's leaves, read where a shard has them (builds before it do not: `jaspeech rescore`)
_QUALITY_LEAVES = ["turns.list.element.dnsmos.ovrl", "turns.list.element.signal.leading_silence",
                   "turns.list.element.signal.trailing_silence", "turns.list.element.signal.longest_silence",
                   "turns.list.element.takes"]  # the take a turn was kept from (builds with retakes)
_AUDIO_CACHE_ROWS = 32


class BadQuery(ValueError):
    """A malformed query value; the server answers 400 with this message."""


class NotFound(LookupError):
    """An unknown config, row, turn or file; the server answers 404 with this message."""


# --------------------------------------------------------------------------------------------- parsing

def _float(params: Mapping[str, str], name: str, lo: float = 0.0) -> float | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < lo:
        raise BadQuery(f"{name} must be a finite number >= {lo:g}, got {raw!r}")
    return value


def _int(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise BadQuery(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _check_names(params: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BadQuery(f"unknown parameter {unknown[0]!r}; use {', '.join(allowed)}")


def _range(params, lo_name: str, hi_name: str) -> tuple[float | None, float | None]:
    lo, hi = _float(params, lo_name), _float(params, hi_name)
    if lo is not None and hi is not None and lo > hi:
        raise BadQuery(f"{lo_name} ({lo:g}) is above {hi_name} ({hi:g})")
    return lo, hi


@dataclass(frozen=True)
class RowQuery:
    """Filters, order and page of the rows table (all optional; ranges are inclusive)."""

    config: str | None = None
    speaker: str | None = None
    cer: tuple[float | None, float | None] = (None, None)
    kana_cer: tuple[float | None, float | None] = (None, None)
    duration: tuple[float | None, float | None] = (None, None)
    ovrl: tuple[float | None, float | None] = (None, None)  # DNSMOS OVRL of the row's worst spoken turn
    silence: tuple[float | None, float | None] = (None, None)  # seconds of the row's longest silence
    text: str = ""
    sort: str = "position"
    descending: bool = False
    offset: int = 0
    limit: int = 50

    PARAMS = ("config", "speaker", "cer_min", "cer_max", "kana_min", "kana_max", "dur_min", "dur_max", "ovrl_min",
              "ovrl_max", "sil_min", "sil_max", "q", "sort", "order", "offset", "limit")

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "RowQuery":
        _check_names(params, cls.PARAMS)
        sort = params.get("sort", "").strip() or "position"
        if sort not in SORTS:
            raise BadQuery(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
        order = params.get("order", "").strip() or "asc"
        if order not in ("asc", "desc"):
            raise BadQuery(f"order must be asc or desc, got {order!r}")
        return cls(config=params.get("config") or None, speaker=params.get("speaker") or None,
                   cer=_range(params, "cer_min", "cer_max"), kana_cer=_range(params, "kana_min", "kana_max"),
                   duration=_range(params, "dur_min", "dur_max"), ovrl=_range(params, "ovrl_min", "ovrl_max"),
                   silence=_range(params, "sil_min", "sil_max"), text=params.get("q", "").strip(), sort=sort,
                   descending=order == "desc", offset=_int(params, "offset", 0, 0, 10**12),
                   limit=_int(params, "limit", 50, 1, MAX_LIMIT))


@dataclass(frozen=True)
class RejectQuery:
    config: str | None = None
    reason: str | None = None
    text: str = ""
    audio_only: bool = False
    offset: int = 0
    limit: int = 50

    PARAMS = ("config", "reason", "q", "audio", "offset", "limit")

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "RejectQuery":
        _check_names(params, cls.PARAMS)
        audio = params.get("audio", "").strip()
        if audio not in ("", "0", "1"):
            raise BadQuery(f"audio must be 1 (only rejects with audio) or 0, got {audio!r}")
        return cls(config=params.get("config") or None, reason=params.get("reason") or None,
                   text=params.get("q", "").strip(), audio_only=audio == "1",
                   offset=_int(params, "offset", 0, 0, 10**12), limit=_int(params, "limit", 50, 1, MAX_LIMIT))


# ----------------------------------------------------------------------------------------------- diffs

def char_diff(reference: str, hypothesis: str) -> list[dict]:
    """Character edit script (Levenshtein opcodes): what was spoken vs what the ear heard."""
    return [{"op": op.tag, "a": reference[op.src_start:op.src_end], "b": hypothesis[op.dest_start:op.dest_end]}
            for op in Levenshtein.opcodes(reference, hypothesis)]


def turn_diffs(text: str | None, transcript: str | None) -> dict | None:
    """The raw diff, and the diff of the kotoba-whisper-normalised strings that `cer` scores."""
    if text is None or transcript is None:
        return None
    return {"raw": char_diff(text, transcript),
            "normalized": char_diff(kotoba_normalize(text), kotoba_normalize(transcript))}


def audio_media_type(data: bytes) -> str:
    """Content type from the stored bytes' magic number (our builds store FLAC)."""
    if data[:4] == b"fLaC":
        return "audio/flac"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == b"OggS":
        return "audio/ogg"
    if data[:3] == b"ID3" or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return "application/octet-stream"


def _num(x) -> float | None:
    """A JSON-safe float: None for null and NaN (unscored)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _struct(value: dict | None) -> dict | None:
    """A turn's dnsmos / signal struct with JSON-safe numbers (None where the turn has none)."""
    if value is None or all(v is None for v in value.values()):
        return None
    return {k: _num(v) for k, v in value.items()}


def _leaf(flat: pa.StructArray, group: str, name: str) -> np.ndarray:
    """One float leaf of the flattened turns (`dnsmos.ovrl`, ...) as float32, NaN where null."""
    values = pc.struct_field(flat.field(group), name)
    return pc.fill_null(values.cast(pa.float32()), np.nan).to_numpy(zero_copy_only=False)


# ------------------------------------------------------------------------------------------ the index

@dataclass
class _Shard:
    path: Path
    row_group_starts: np.ndarray  # first row of each row group, plus the total at the end
    audio_leaf: str | None  # "turns.list.element.audio.bytes", "audio.bytes" or None
    leaves: list[str]  # every leaf column but the audio bytes


def _open_shard(path: Path) -> _Shard:
    md = pq.read_metadata(path)
    starts = np.zeros(md.num_row_groups + 1, dtype=np.int64)
    for i in range(md.num_row_groups):
        starts[i + 1] = starts[i] + md.row_group(i).num_rows
    paths = [md.schema.column(i).path for i in range(md.num_columns)]
    audio = next((p for p in ("turns.list.element.audio.bytes", "audio.bytes") if p in paths), None)
    return _Shard(path, starts, audio, [p for p in paths if p != audio])


def _read_row(shard: _Shard, row: int, columns: list[str]) -> dict:
    rg = int(np.searchsorted(shard.row_group_starts, row, side="right") - 1)
    table = pq.ParquetFile(shard.path).read_row_group(rg, columns=columns)
    return table.slice(row - int(shard.row_group_starts[rg]), 1).to_pylist()[0]


def _rebuild_hint(config: str, path: Path) -> str:
    """What to do about a shard file the view cannot read: the build redoes a shard whose manifest is gone."""
    shard = path.name.split(".")[0]
    return (f" (to rebuild that shard: delete manifests/{config}/{shard}.json and rerun the same `jaspeech build` "
            "command)")


def _within(folder: Path, path: Path) -> bool:
    """True if `path` (after resolving links) lies inside `folder`: a symlink cannot lead out."""
    try:
        return path.resolve().is_relative_to(folder)
    except OSError:
        return False


@dataclass
class _Columns:
    """Leaf columns of the kept rows of every config, concatenated in config order."""

    config: list[np.ndarray] = field(default_factory=list)  # config code per row
    n: list[np.ndarray] = field(default_factory=list)  # position within its config
    shard: list[np.ndarray] = field(default_factory=list)  # index into CorpusIndex.shards
    row: list[np.ndarray] = field(default_factory=list)  # row within its shard
    ids: list[pa.Array] = field(default_factory=list)
    speaker: list[np.ndarray] = field(default_factory=list)
    duration: list[np.ndarray] = field(default_factory=list)
    cer: list[np.ndarray] = field(default_factory=list)
    kana_cer: list[np.ndarray] = field(default_factory=list)
    ovrl: list[np.ndarray] = field(default_factory=list)  # lowest DNSMOS OVRL of the row's spoken turns
    silence: list[np.ndarray] = field(default_factory=list)  # longest leading, trailing or inner silence
    takes: list[np.ndarray] = field(default_factory=list)  # the highest take among the row's spoken turns
    first: list[pa.Array] = field(default_factory=list)
    search: list[pa.Array] = field(default_factory=list)  # flat searchable strings ...
    search_row: list[np.ndarray] = field(default_factory=list)  # ... and the global row each belongs to


class CorpusIndex:
    """A built corpus folder, indexed for the viewer. Build with `open_corpus(folder)`."""

    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.warnings: list[str] = []
        data_dirs = sorted(p for p in (self.folder / "data").glob("*") if p.is_dir() and _within(self.folder, p))
        reject_dirs = sorted(p for p in (self.folder / "rejects").glob("*") if p.is_dir() and _within(self.folder, p))
        self.configs: list[str] = sorted({p.name for p in data_dirs if any(p.glob("*.parquet"))}
                                         | {p.name for p in reject_dirs})
        if not self.configs:
            raise FileNotFoundError(
                f"{folder} holds no built corpus (no data/<config>/*.parquet and no rejects/<config>/): "
                "point at the --out folder of `jaspeech build`")
        self.shards: list[_Shard] = []
        self.speakers: list[str] = []
        self.has_scores: dict[str, bool] = {}
        self.plans: dict[str, dict] = {}
        self._lock = threading.Lock()  # one reader at a time per process for on-demand Parquet reads
        self._audio_cache: OrderedDict = OrderedDict()
        self._orders: dict[tuple[str, bool], np.ndarray] = {}  # sort orders, made on first use
        self._load_rows()
        self._load_rejects()
        self._load_reject_audio()
        for c in self.configs:
            plan = self.folder / "manifests" / c / "plan.json"
            if plan.is_file() and _within(self.folder, plan):
                try:
                    self.plans[c] = json.loads(plan.read_text(encoding="utf-8"))
                except (OSError, ValueError) as e:
                    self.warnings.append(f"could not read {plan.relative_to(self.folder)}: {e} (the build's plan: rebuild "
                                         f"{c!r} with `jaspeech build ... --config {c} --overwrite`)")
        self.assets = {p.name: p for p in sorted((self.folder / "assets").glob("*.png"))
                       if p.is_file() and _within(self.folder, p)}
        from jaspeech.cards.plots import PLOTS  # matplotlib: paid once at start-up, not on a request

        self._plot_titles = dict(PLOTS)

    # ---------------------------------------------------------------------------------- loading rows

    def _load_rows(self) -> None:
        cols = _Columns()
        speaker_code: dict[str, int] = {}
        total = 0
        self.config_offsets = np.zeros(len(self.configs) + 1, dtype=np.int64)
        for ci, config in enumerate(self.configs):
            n_config = 0
            for path in sorted((self.folder / "data" / config).glob("*.parquet")):
                if not (path.is_file() and _within(self.folder, path)):
                    continue
                try:
                    shard = _open_shard(path)
                    pf = pq.ParquetFile(path)
                    names = set(pf.schema_arrow.names)
                    wanted = ["id", "duration"] + [c for c in ("speaker", "caption", "labels") if c in names]
                    leaves = set(shard.leaves)
                    # a full-duplex row's spoken stretches are its `segments` (its `turns` are text only)
                    spoken = "segments" if "segments" in names else "turns"
                    quality = [c.replace("turns.", f"{spoken}.", 1) for c in _QUALITY_LEAVES
                               if c.replace("turns.", f"{spoken}.", 1) in leaves]
                    t = pf.read(columns=wanted + ([c.replace("turns.", f"{spoken}.", 1) for c in _TURN_LEAVES]
                                                  + quality if spoken in names else []))
                except Exception as e:  # a broken shard is reported on the page, the others still show
                    self.warnings.append(f"skipped {path.relative_to(self.folder)}: {type(e).__name__}: {e}"
                                         f"{_rebuild_hint(config, path)}")
                    continue
                rows = t.num_rows
                self.shards.append(shard)
                cols.config.append(np.full(rows, ci, dtype=np.int16))
                cols.n.append(np.arange(n_config, n_config + rows, dtype=np.int64))
                cols.shard.append(np.full(rows, len(self.shards) - 1, dtype=np.int32))
                cols.row.append(np.arange(rows, dtype=np.int64))
                ids = t.column("id").combine_chunks().cast(pa.string())
                cols.ids.append(ids)
                cols.search.append(ids)
                cols.search_row.append(np.arange(total, total + rows))
                cols.duration.append(t.column("duration").to_numpy().astype(np.float32))
                if "speaker" in names:
                    codes = [speaker_code.setdefault(s, len(speaker_code)) if s is not None else -1
                             for s in t.column("speaker").to_pylist()]
                    cols.speaker.append(np.asarray(codes, dtype=np.int32))
                else:
                    cols.speaker.append(np.full(rows, -1, dtype=np.int32))
                cer = np.full(rows, np.nan, dtype=np.float32)
                kana = np.full(rows, np.nan, dtype=np.float32)
                ovrl = np.full(rows, np.nan, dtype=np.float32)
                silence = np.full(rows, np.nan, dtype=np.float32)
                takes = np.zeros(rows, dtype=np.int8)
                first = pa.nulls(rows, pa.string())
                if spoken in names:
                    turns = t.column(spoken).combine_chunks()
                    flat = turns.flatten()
                    parent = pc.list_parent_indices(turns).to_numpy()
                    user = np.flatnonzero(pc.fill_null(pc.equal(flat.field("role"), "user"), False).to_numpy(
                        zero_copy_only=False))
                    for leaf, target in (("cer", cer), ("kana_cer", kana)):
                        values = flat.field(leaf).to_numpy(zero_copy_only=False).astype(np.float32)[user]
                        np.fmax.at(target, parent[user], values)  # worst spoken turn; NaN where none scored
                    self.has_scores[config] = self.has_scores.get(config, False) or bool(np.isfinite(kana).any())
                    # quality, over every spoken turn (null where unspoken or unscored): the worst one counts
                    if f"{spoken}.list.element.dnsmos.ovrl" in quality:
                        values = _leaf(flat, "dnsmos", "ovrl")
                        np.fmin.at(ovrl, parent, values)
                    for leaf in ("leading_silence", "trailing_silence", "longest_silence"):
                        if f"{spoken}.list.element.signal.{leaf}" in quality:
                            np.fmax.at(silence, parent, _leaf(flat, "signal", leaf))
                    if "turns.list.element.takes" in quality:
                        np.maximum.at(takes, parent, flat.field("takes").fill_null(0).to_numpy(
                            zero_copy_only=False).astype(np.int8))
                    uniq, first_at = np.unique(parent[user], return_index=True)
                    pick = np.full(rows, -1, dtype=np.int64)
                    pick[uniq] = user[first_at]
                    first = flat.field("text").take(pa.array(pick, mask=pick < 0))
                    for leaf in ("text", "transcript"):
                        cols.search.append(flat.field(leaf).take(pa.array(user)))
                        cols.search_row.append(parent[user] + total)
                if "caption" in names:
                    first = t.column("caption").combine_chunks()
                    cols.search.append(first)
                    cols.search_row.append(np.arange(total, total + rows))
                if "labels" in names:
                    labels = t.column("labels").combine_chunks()
                    cols.search.append(labels.flatten().cast(pa.string()))
                    cols.search_row.append(pc.list_parent_indices(labels).to_numpy() + total)
                cols.first.append(pc.utf8_slice_codeunits(first.cast(pa.string()), 0, FIRST_CHARS))
                cols.cer.append(cer)
                cols.kana_cer.append(kana)
                cols.ovrl.append(ovrl)
                cols.silence.append(silence)
                cols.takes.append(takes)
                total += rows
                n_config += rows
            self.config_offsets[ci + 1] = total
        self.num_rows = total

        def cat(parts, dtype):
            return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)

        self.row_config = cat(cols.config, np.int16)
        self.row_n = cat(cols.n, np.int64)
        self.row_shard = cat(cols.shard, np.int32)
        self.row_in_shard = cat(cols.row, np.int64)
        self.row_speaker = cat(cols.speaker, np.int32)
        self.row_duration = cat(cols.duration, np.float32)
        self.row_cer = cat(cols.cer, np.float32)
        self.row_kana_cer = cat(cols.kana_cer, np.float32)
        self.row_ovrl = cat(cols.ovrl, np.float32)
        self.row_silence = cat(cols.silence, np.float32)
        self.row_takes = cat(cols.takes, np.int8)
        self.row_id = pa.chunked_array(cols.ids, pa.string()).combine_chunks()
        self.row_first = pa.chunked_array(cols.first, pa.string()).combine_chunks()
        # lower-cased once here, so a search is a plain substring scan (ignore_case would go through RE2)
        self.search_text = pc.utf8_lower(pc.fill_null(
            pa.chunked_array(cols.search, pa.string()).combine_chunks().cast(pa.large_string()), ""))
        self.search_row = cat(cols.search_row, np.int64)
        # ... and laid out as one NUL-separated byte string: bytes.find (memchr / two-way search) is several
        # times faster than a per-string scan when few strings match (benchmarks/view.py)
        joined = pc.binary_join_element_wise(self.search_text, pa.scalar("", pa.large_string()),
                                             pa.scalar("\x00", pa.large_string()))
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset:joined.offset + len(joined) + 1]
        self.search_blob = joined.buffers()[2].to_pybytes()[offsets[0]:offsets[-1]] if len(joined) else b""
        self.search_starts = offsets[:-1] - offsets[0]
        self.speakers = list(speaker_code)
        # ranks for sorting strings with one numpy argsort; rows without a speaker sort last
        self.id_rank = np.empty(total, dtype=np.int64)
        self.id_rank[pc.sort_indices(self.row_id).to_numpy()] = np.arange(total)
        by_name = np.argsort(np.asarray(self.speakers, dtype=object)) if self.speakers else np.zeros(0, np.int64)
        speaker_rank = np.empty(len(self.speakers) + 1, dtype=np.int64)
        speaker_rank[by_name] = np.arange(len(self.speakers))
        speaker_rank[-1] = len(self.speakers)  # code -1 indexes the last slot
        self.speaker_rank = speaker_rank[self.row_speaker]

    # ------------------------------------------------------------------------------- loading rejects

    def _load_rejects(self) -> None:
        schema = pa.schema([("source_index", pa.int64()), ("source_id", pa.string()), ("reason", pa.string()),
                            ("detail", pa.string())])
        tables, codes = [], []
        for ci, config in enumerate(self.configs):
            for path in sorted((self.folder / "rejects" / config).glob("*.jsonl")):
                if not (path.is_file() and _within(self.folder, path)) or path.stat().st_size == 0:
                    continue
                try:
                    t = pajson.read_json(path, parse_options=pajson.ParseOptions(
                        explicit_schema=schema, unexpected_field_behavior="ignore"))
                except (pa.ArrowInvalid, OSError) as e:
                    self.warnings.append(f"skipped {path.relative_to(self.folder)}: {e}{_rebuild_hint(config, path)}")
                    continue
                tables.append(t.select(list(REJECT_FIELDS)))
                codes.append(np.full(t.num_rows, ci, dtype=np.int16))
        t = pa.concat_tables(tables) if tables else schema.empty_table()
        config = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int16)
        order = np.lexsort((t.column("source_index").fill_null(-1).to_numpy(), config))
        self.rejects = t.take(pa.array(order))
        self.reject_config = config[order]
        reasons = pc.fill_null(self.rejects.column("reason"), "").combine_chunks().dictionary_encode()
        self.reject_reasons: list[str] = reasons.dictionary.to_pylist()
        self.reject_reason_code = reasons.indices.to_numpy(zero_copy_only=False).astype(np.int32)
        self.reject_search = pc.utf8_lower(pc.binary_join_element_wise(
            pc.fill_null(self.rejects.column("source_id"), ""), pc.fill_null(self.rejects.column("detail"), ""),
            "\n").combine_chunks())

    def _load_reject_audio(self) -> None:
        """`rejects/<config>/*.audio.parquet` (written by `jaspeech build --keep-reject-audio`):
        source_index, turn, text, transcript, kana_cer and the HF Audio struct of each spoken turn."""
        self.reject_shards: list[_Shard] = []
        self.reject_audio: dict[tuple[int, int], list[dict]] = {}  # (config code, source_index) -> turns
        needed = ["source_index", "turn", "text", "transcript", "kana_cer"]
        for ci, config in enumerate(self.configs):
            for path in sorted((self.folder / "rejects" / config).glob("*.audio.parquet")):
                if not (path.is_file() and _within(self.folder, path)):
                    continue
                try:
                    shard = _open_shard(path)
                    t = pq.ParquetFile(path).read(columns=needed)
                    if shard.audio_leaf != "audio.bytes":
                        raise ValueError("no audio.bytes column")
                except Exception as e:
                    self.warnings.append(f"skipped {path.relative_to(self.folder)}: {type(e).__name__}: {e}"
                                         f"{_rebuild_hint(config, path)}")
                    continue
                self.reject_shards.append(shard)
                for row, r in enumerate(t.to_pylist()):
                    if r["source_index"] is None or r["turn"] is None:
                        continue
                    self.reject_audio.setdefault((ci, r["source_index"]), []).append(
                        {**r, "shard": len(self.reject_shards) - 1, "row": row})
        for turns in self.reject_audio.values():
            turns.sort(key=lambda r: r["turn"])
        has = np.zeros(self.rejects.num_rows, dtype=bool)
        if self.reject_audio:
            si = self.rejects.column("source_index").fill_null(-1).to_numpy()
            has = np.fromiter(((int(c), int(s)) in self.reject_audio for c, s in zip(self.reject_config, si)),
                              dtype=bool, count=len(si))
        self.reject_has_audio = has

    # --------------------------------------------------------------------------------------- lookups

    def config_code(self, config: str) -> int:
        try:
            return self.configs.index(config)
        except ValueError:
            raise NotFound(f"unknown config {config!r}; this folder has {', '.join(self.configs)}") from None

    def _query_config(self, config: str | None) -> int | None:
        if config is None:
            return None
        try:
            return self.config_code(config)
        except NotFound as e:
            raise BadQuery(str(e)) from None

    def _row(self, config: str, n: int) -> int:
        ci = self.config_code(config)
        g = int(self.config_offsets[ci]) + n
        if not 0 <= n < self.config_offsets[ci + 1] - self.config_offsets[ci]:
            raise NotFound(f"config {config!r} has no row {n} (it has "
                           f"{int(self.config_offsets[ci + 1] - self.config_offsets[ci])} rows)")
        return g

    # --------------------------------------------------------------------------------------- queries

    def query_rows(self, q: RowQuery) -> dict:
        """One page of the kept rows that pass every filter, in the requested order."""
        mask = np.ones(self.num_rows, dtype=bool)
        ci = self._query_config(q.config)
        if ci is not None:
            mask[:self.config_offsets[ci]] = False
            mask[self.config_offsets[ci + 1]:] = False
        if q.speaker is not None:
            if q.speaker not in self.speakers:
                raise BadQuery(f"unknown speaker {q.speaker!r}")
            mask &= self.row_speaker == self.speakers.index(q.speaker)
        for (lo, hi), values in ((q.cer, self.row_cer), (q.kana_cer, self.row_kana_cer),
                                 (q.duration, self.row_duration), (q.ovrl, self.row_ovrl),
                                 (q.silence, self.row_silence)):
            if lo is not None:
                mask &= values >= lo  # NaN (unscored) never passes a bound
            if hi is not None:
                mask &= values <= hi
        if q.text:  # last: the other filters may leave few rows whose strings need a look
            found = np.zeros(self.num_rows, dtype=bool)
            found[self._rows_containing(q.text, mask)] = True
            mask &= found
        if q.sort == "position":
            idx = np.flatnonzero(mask)
            idx = idx[::-1] if q.descending else idx
        else:  # the whole table's order, computed once per key; a query keeps the rows that pass
            order = self._order(q.sort, q.descending)
            idx = order[mask[order]]
        page = idx[q.offset:q.offset + q.limit]
        return {"total": int(idx.size), "hours": float(self.row_duration[idx].sum(dtype=np.float64) / 3600),
                "offset": q.offset, "limit": q.limit, "rows": [self._table_row(int(g)) for g in page]}

    def _order(self, sort: str, descending: bool) -> np.ndarray:
        """All rows in `sort` order (ties by position; unscored and speakerless rows last), cached."""
        cached = self._orders.get((sort, descending))
        if cached is None:
            key = {"config": self.row_config, "id": self.id_rank, "speaker": self.speaker_rank,
                   "duration": self.row_duration, "cer": self.row_cer, "kana_cer": self.row_kana_cer,
                   "ovrl": self.row_ovrl, "silence": self.row_silence}[sort]
            if descending:  # negated, so a stable sort keeps ties in position order; NaN stays last
                key = -key.astype(np.float64) if key.dtype.kind == "f" else -key
                if sort == "speaker":  # rows without a speaker stay last
                    key = np.where(self.row_speaker < 0, np.iinfo(np.int64).max, key)
            cached = self._orders[(sort, descending)] = np.argsort(key, kind="stable")
        return cached

    def _rows_containing(self, text: str, mask: np.ndarray) -> np.ndarray:
        """Rows (among those in `mask`, possibly repeated) with a searchable string containing `text`."""
        if mask.sum() < 0.2 * self.num_rows:  # few candidates: scan only their strings
            strings = np.flatnonzero(mask[self.search_row])
            hit = pc.match_substring(self.search_text.take(pa.array(strings)), text.lower())
            return self.search_row[strings[hit.to_numpy(zero_copy_only=False)]]
        return self.search_row[self._matching_strings(text)]

    def _matching_strings(self, text: str) -> np.ndarray:
        """Indices of the searchable strings that contain `text` (case-insensitively)."""
        needle = text.lower().replace("\x00", "").encode()
        blob = self.search_blob
        sample = min(len(blob), 1 << 20)
        expected = blob.count(needle, 0, sample) * len(blob) / max(sample, 1)
        if expected > 0.1 * len(self.search_starts):  # a word in most strings: one vectorised scan is cheaper
            hit = pc.match_substring(self.search_text, needle.decode())
            return np.flatnonzero(hit.to_numpy(zero_copy_only=False))
        hits, pos, find = [], 0, blob.find
        while (i := find(needle, pos)) >= 0:
            hits.append(i)
            pos = find(b"\x00", i) + 1  # one hit per string is enough: go to the next one
            if pos == 0:
                break
        return np.searchsorted(self.search_starts, np.asarray(hits, dtype=np.int64), side="right") - 1

    def _table_row(self, g: int) -> dict:
        spk = int(self.row_speaker[g])
        return {"config": self.configs[self.row_config[g]], "n": int(self.row_n[g]), "id": self.row_id[g].as_py(),
                "speaker": self.speakers[spk] if spk >= 0 else None, "duration": _num(self.row_duration[g]),
                "cer": _num(self.row_cer[g]), "kana_cer": _num(self.row_kana_cer[g]), "ovrl": _num(self.row_ovrl[g]),
                "silence": _num(self.row_silence[g]), "text": self.row_first[g].as_py()}

    def row(self, config: str, n: int) -> dict:
        """Every column of one kept row but the audio bytes, with a diff per transcribed turn."""
        g = self._row(config, n)
        shard = self.shards[self.row_shard[g]]
        with self._lock:
            r = _read_row(shard, int(self.row_in_shard[g]), shard.leaves)
        base = f"/api/audio/{config}/{n}"
        ci = self.configs.index(config)
        out = {"config": config, "n": n, "rows_in_config": int(self.config_offsets[ci + 1] - self.config_offsets[ci])}
        if "turns" in r:
            turns = []
            for i, t in enumerate(r.pop("turns") or []):
                has_audio = t.get("audio") is not None
                turns.append({"index": i, "role": t.get("role"), "text": t.get("text"),
                              "duration": _num(t.get("duration")), "transcript": t.get("transcript"),
                              "cer": _num(t.get("cer")), "kana_cer": _num(t.get("kana_cer")),
                              "text_logprob": _num(t.get("text_logprob")), "worst_span": t.get("worst_span"),
                              "worst_deficit": _num(t.get("worst_deficit")), "takes": t.get("takes"),
                              "dnsmos": _struct(t.get("dnsmos")), "signal": _struct(t.get("signal")),
                              "audio_url": f"{base}/{i}" if has_audio else None,
                              "diff": turn_diffs(t.get("text"), t.get("transcript"))})
            out["turns"] = turns
        if "segments" in r:  # a full-duplex row: its stereo recording's timeline (two lanes) and words
            out["segments"] = [{"kind": g.get("kind"), "role": g.get("role"), "channel": g.get("channel"),
                                "turn": g.get("turn"), "text": g.get("text"), "start": _num(g.get("start")),
                                "end": _num(g.get("end")), "gap": _num(g.get("gap")),
                                "duration": _num((g.get("end") or 0) - (g.get("start") or 0)),
                                "transcript": g.get("transcript"), "cer": _num(g.get("cer")),
                                "kana_cer": _num(g.get("kana_cer")), "dnsmos": _struct(g.get("dnsmos")),
                                "signal": _struct(g.get("signal")),
                                "diff": turn_diffs(g.get("text"), g.get("transcript"))}
                               for g in r.pop("segments") or []]
            out["words"] = [{"channel": w.get("channel"), "segment": w.get("segment"), "word": w.get("word"),
                             "start": _num(w.get("start")), "end": _num(w.get("end"))} for w in r.pop("words") or []]
        if "audio" in r:
            r.pop("audio")
            out["audio_url"] = f"{base}/0"
        out["fields"] = {k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()}  # NaN is no JSON
        return out

    def audio(self, config: str, n: int, turn: int) -> bytes:
        """The stored bytes of one spoken turn (or of a clip: turn 0), read from its row group."""
        g = self._row(config, n)
        shard = self.shards[self.row_shard[g]]
        if shard.audio_leaf is None:
            raise NotFound(f"config {config!r} stores no audio")
        key = ("row", g)
        with self._lock:
            clips = self._audio_cache.get(key)
            if clips is None:
                r = _read_row(shard, int(self.row_in_shard[g]), [shard.audio_leaf])
                if "turns" in r:
                    clips = [((t or {}).get("audio") or {}).get("bytes") for t in r["turns"] or []]
                else:
                    clips = [(r.get("audio") or {}).get("bytes")]
                self._remember(key, clips)
        if not 0 <= turn < len(clips) or clips[turn] is None:
            raise NotFound(f"row {n} of {config!r} has no audio for turn {turn}")
        return clips[turn]

    def _remember(self, key, value) -> None:
        self._audio_cache[key] = value
        while len(self._audio_cache) > _AUDIO_CACHE_ROWS:
            self._audio_cache.popitem(last=False)

    def query_rejects(self, q: RejectQuery) -> dict:
        """One page of rejected input rows, with the count per reason under the config filter."""
        mask = np.ones(self.rejects.num_rows, dtype=bool)
        ci = self._query_config(q.config)
        if ci is not None:
            mask &= self.reject_config == ci
        if q.text:
            mask &= pc.fill_null(pc.match_substring(self.reject_search, q.text.lower()), False).to_numpy(
                zero_copy_only=False)
        if q.audio_only:
            mask &= self.reject_has_audio
        counts = Counter(self.reject_reason_code[mask].tolist())
        by_reason = {self.reject_reasons[c]: n for c, n in sorted(counts.items(), key=lambda kv: -kv[1])}
        if q.reason is not None:
            if q.reason not in self.reject_reasons:
                raise BadQuery(f"unknown reason {q.reason!r}; this folder has {', '.join(self.reject_reasons) or 'none'}")
            mask &= self.reject_reason_code == self.reject_reasons.index(q.reason)
        idx = np.flatnonzero(mask)
        page = idx[q.offset:q.offset + q.limit]
        rows = self.rejects.take(pa.array(page, type=pa.int64())).to_pylist()
        for g, r in zip(page, rows):
            c = int(self.reject_config[g])
            r["config"] = self.configs[c]
            r["audio"] = [
                {"turn": a["turn"], "text": a["text"], "transcript": a["transcript"], "kana_cer": _num(a["kana_cer"]),
                 "audio_url": f"/api/reject-audio/{self.configs[c]}/{r['source_index']}/{a['turn']}",
                 "diff": turn_diffs(a["text"], a["transcript"])}
                for a in self.reject_audio.get((c, r["source_index"]), [])]
        return {"total": int(idx.size), "by_reason": by_reason, "with_audio": int(self.reject_has_audio[mask].sum()),
                "offset": q.offset, "limit": q.limit, "rows": rows}

    def reject_audio_bytes(self, config: str, source_index: int, turn: int) -> bytes:
        ci = self.config_code(config)
        entry = next((a for a in self.reject_audio.get((ci, source_index), []) if a["turn"] == turn), None)
        if entry is None:
            raise NotFound(f"no stored audio for rejected row {source_index} turn {turn} of {config!r}")
        key = ("reject", entry["shard"], entry["row"])
        with self._lock:
            data = self._audio_cache.get(key)
            if data is None:
                r = _read_row(self.reject_shards[entry["shard"]], entry["row"], ["audio.bytes"])
                data = (r.get("audio") or {}).get("bytes")
                self._remember(key, data)
        if data is None:
            raise NotFound(f"the stored audio of rejected row {source_index} turn {turn} of {config!r} is empty")
        return data

    def overview(self) -> dict:
        """Counts per config (kept rows, hours, rejects by reason) and the card's plots."""
        configs = []
        for ci, c in enumerate(self.configs):
            lo, hi = int(self.config_offsets[ci]), int(self.config_offsets[ci + 1])
            kana = self.row_kana_cer[lo:hi]
            reasons = Counter(self.reject_reason_code[self.reject_config == ci].tolist())
            plan = self.plans.get(c, {})
            spk = self.row_speaker[lo:hi]
            configs.append({
                "config": c, "rows": hi - lo, "hours": float(self.row_duration[lo:hi].sum(dtype=np.float64) / 3600),
                "rejects": int(sum(reasons.values())),
                "reject_reasons": {self.reject_reasons[k]: v for k, v in reasons.most_common()},
                "rejects_with_audio": int(self.reject_has_audio[self.reject_config == ci].sum()),
                "retaken": int((self.row_takes[lo:hi] > 1).sum()),  # rows kept from a retake of a turn
                "speakers": sorted({self.speakers[s] for s in np.unique(spk) if s >= 0}),
                "median_kana_cer": _num(float(np.nanmedian(kana))) if np.isfinite(kana).any() else None,
                "median_ovrl": (_num(float(np.nanmedian(self.row_ovrl[lo:hi])))
                                if np.isfinite(self.row_ovrl[lo:hi]).any() else None),
                "corpus": plan.get("corpus"), "input": plan.get("input"), "tts": plan.get("tts"),
                "asr": plan.get("asr"), "captioner": plan.get("captioner"),
            })
        return {"folder": self.folder.name, "configs": configs, "warnings": self.warnings,
                "plots": [{"name": n, "title": self._plot_titles.get(n, n), "url": f"/assets/{n}"} for n in self.assets],
                "sorts": list(SORTS)}


def open_corpus(folder: Path | str) -> CorpusIndex:
    """Index a built corpus folder (raises FileNotFoundError with what to do if it is none)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: give the --out folder of `jaspeech build`")
    return CorpusIndex(folder)
