"""Reading `--input`: a hub id, a local JSONL/JSON/Parquet file or folder, or the bundled `sample`.

Rows are addressed by their 0-based position in the input, which is the accounting key: every
position ends up kept or rejected. A line that is not valid JSON (or not UTF-8) is yielded as
`Malformed`, so it becomes a reject instead of stopping the build. Shard `k` of `S` holds the rows
whose position is `k mod S`, whatever the worker count.

A shard reads only its own rows where the format allows: JSONL lines of other shards are never parsed,
Parquet rows of other shards are never converted to Python (row groups without an own row are not
read at all), and a hub input is streamed (`datasets` streaming, Arrow batches) instead of being
downloaded whole by every task of a job array. Only a JSON array must be parsed whole.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

from jaspeech.synthesis.text import clean_text

SAMPLES_DIR = Path(__file__).parent / "samples"
_LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")  # what a folder input reads (any other file: see folder_files)
NEVER_READ = ("__pycache__",)  # skipped in a folder input, with every name starting with "."
HUB_PREFIX = "hub:"  # `--input hub:owner/name`: a hub id, even one that looks like a local path
# a hub dataset id, owner/name
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# a missing `--input` with one of these endings (or more than one `/`, or starting with `.`, `/`, `~`) is a
# mistyped local path, never a hub id: it fails at once instead of asking the Hub
_FILE_ENDINGS = (*_LOCAL_SUFFIXES, ".csv", ".tsv", ".txt", ".gz", ".zst", ".arrow", ".xlsx", ".ndjson")


def looks_local(spec: str) -> bool:
    """Whether `spec` names a local path rather than a hub id (owner/name): the rule for a missing `--input`. An
    `owner/name` whose `owner` is a folder here is local too (`data/rows` beside a `data/` folder)."""
    return (spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1
            or spec.lower().endswith(_FILE_ENDINGS) or ("/" in spec and Path(spec.split("/")[0]).is_dir()))


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") or part in NEVER_READ for part in rel.parts)


def folder_files(root: Path, skip_unreadable: bool = False,
                 exclude: tuple[Path, ...] = ()) -> tuple[list[Path], list[Path]]:
    """The files a folder input reads, in order (their paths relative to `root`, compared as text), and the
    files skipped with `skip_unreadable`. Hidden files and folders, `__pycache__` and `exclude` (the build's
    own output) are never read; any other file that is not .jsonl/.json/.parquet is an error naming it."""
    skip = [Path(e).resolve() for e in exclude]
    readable, other = [], []
    for f in root.rglob("*"):
        rel = f.relative_to(root)
        if _hidden(rel) or not f.is_file() or any(f.resolve().is_relative_to(e) for e in skip):
            continue
        (readable if f.suffix in _LOCAL_SUFFIXES else other).append(f)
    readable.sort(key=lambda f: f.relative_to(root).as_posix())
    other.sort(key=lambda f: f.relative_to(root).as_posix())
    if other and not skip_unreadable:
        names = ", ".join(f.relative_to(root).as_posix() for f in other[:10]) + (
            f" and {len(other) - 10} more" if len(other) > 10 else "")
        raise ValueError(f"--input {root} holds files jaspeech cannot read: {names}. A folder input reads its .jsonl, "
                         ".json and .parquet files (hidden files and folders skipped): convert or move those files, "
                         "or add --skip-unreadable to skip them (each is listed in the plan and the card)")
    if not readable:
        raise FileNotFoundError(f"no .jsonl, .json or .parquet files under {root}")
    return readable, other


@dataclass(frozen=True)
class Malformed:
    detail: str


Row = tuple[int, object]  # (position, parsed row or Malformed)


def source_id_of(raw: object, id_field: str | None, position: int) -> str:
    """The source row's id field when it holds a usable scalar, else its 0-based position."""
    if id_field and isinstance(raw, dict):
        value = raw.get(id_field)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return clean_text(str(value)).strip() or str(position)
    return str(position)


def _parse_line(line: bytes) -> object:
    try:
        return json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as e:
        return Malformed(f"not UTF-8: {e.reason} at byte {e.start}")
    except json.JSONDecodeError as e:
        return Malformed(f"invalid JSON: {e.msg} at column {e.colno}")
    except RecursionError:
        return Malformed("invalid JSON: nested too deeply")


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(64).lstrip()
    return head.startswith(b"[")


class InputSource:
    """One resolved `--input`: iterate rows by position, optionally only one shard's.

    A folder is read by a fixed rule (`folder_files`): its `.jsonl`, `.json` and `.parquet` files, in the order
    of their paths relative to the folder; hidden files and folders and `__pycache__` are never read, nor the
    build's own `--out` folder (`exclude`). Any other file is an error naming it, unless `skip_unreadable`, which
    skips it and lists it in `skipped` (the plan and the card record them).
    """

    def __init__(self, spec: str, config_name: str, hub_id: str, split: str = "train", *,
                 skip_unreadable: bool = False, exclude: tuple[Path, ...] = ()) -> None:
        self.spec = spec
        self._hub_id = hub_id
        self._split = split
        self.skipped: list[Path] = []
        self.hub_name = spec[len(HUB_PREFIX):] if spec.startswith(HUB_PREFIX) else spec
        if spec == "sample":
            self.files = [SAMPLES_DIR / f"{config_name}.jsonl"]
        elif spec.startswith(HUB_PREFIX):
            if not HUB_ID.fullmatch(self.hub_name):
                raise FileNotFoundError(f"--input {spec!r}: after 'hub:' comes a hub dataset id, owner/name")
            self.files = []
        elif Path(spec).exists():
            p = Path(spec)
            if p.is_dir():
                self.files, self.skipped = folder_files(p, skip_unreadable, exclude)
            elif p.suffix not in _LOCAL_SUFFIXES:
                raise ValueError(f"unsupported input file {p} (use .jsonl, .json or .parquet)")
            else:
                self.files = [p]
        elif looks_local(spec):
            raise FileNotFoundError(
                f"--input {spec!r}: no such file or folder (looked in {Path.cwd()}). Check the path; if you meant "
                f"a Hugging Face Hub dataset, pass its id as owner/name, or hub:owner/name when the id "
                "looks like a file name")
        elif HUB_ID.fullmatch(spec):
            self.files = []
        else:
            raise FileNotFoundError(f"--input {spec!r} is neither 'sample', an existing path nor a hub id "
                                    "(owner/name)")

    @property
    def is_hub(self) -> bool:
        return not self.files

    def fingerprint(self) -> list[list]:
        """Names and sizes of the local input files: a plan notices a changed input without re-reading it."""
        return [[self._name(f), f.stat().st_size] for f in self.files]

    def skipped_files(self) -> list[list]:
        """Names and sizes of the files a folder input skipped (--skip-unreadable): the plan and the card list them."""
        return [[self._name(f), f.stat().st_size] for f in self.skipped]

    def _name(self, f: Path) -> str:
        root = Path(self.spec)
        return f.relative_to(root).as_posix() if root.is_dir() else f.name

    def _first_column(self) -> list[str] | None:
        import datasets

        features = datasets.load_dataset(self.hub_name, split=self._split, streaming=True).features
        return list(features)[:1] if features else None

    def _hub_stream(self, columns: list[str] | None = None):
        """The hub split as a stream of Arrow tables, in the dataset's row order (never downloaded whole)."""
        import datasets

        try:
            ds = datasets.load_dataset(self.hub_name, split=self._split, streaming=True)
        except Exception as e:
            hint = ("; gated datasets need `hf auth login` (or HF_TOKEN) and the dataset's terms accepted on "
                    f"https://huggingface.co/datasets/{self.hub_name}") if "gated" in str(e).lower() or "401" in str(e) \
                else "; check the id and --split, or pass a local file or folder"
            raise FileNotFoundError(f"cannot read hub dataset {self.hub_name!r} ({type(e).__name__}: {e}){hint}") from e
        if columns:
            ds = ds.select_columns(columns)
        return ds.with_format("arrow").iter(batch_size=1024)

    def _iter_file(self, path: Path) -> Iterator[object]:
        if path.suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                yield from batch.to_pylist()
            return
        if _is_json_array(path):
            try:
                items = json.loads(path.read_bytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}: not a valid JSON array: {e}; give a JSON array of row objects, JSONL (one object "
                                 "per line) or Parquet") from e
            yield from items
            return
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    yield line  # parsed lazily: a shard parses only its own rows

    @staticmethod
    def _own_parquet_rows(path: Path, first_pos: int, shard: int, num_shards: int, end: int | None):
        """(position, row) of one Parquet file for this shard: only own rows become Python objects."""
        pf = pq.ParquetFile(path)
        base = first_pos
        for rg in range(pf.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            stop = n if end is None else min(n, end - base)
            own = list(range((shard - base) % num_shards, max(stop, 0), num_shards))
            if own:
                rows = pf.read_row_group(rg).take(own).to_pylist()
                yield from zip((base + i for i in own), rows)
            base += n

    @staticmethod
    def _own_table_rows(tables, shard: int, num_shards: int, end: int | None):
        base = 0
        for t in tables:
            stop = t.num_rows if end is None else min(t.num_rows, end - base)
            if stop <= 0:
                return
            own = list(range((shard - base) % num_shards, stop, num_shards))
            if own:
                yield from zip((base + i for i in own), t.take(own).to_pylist())
            base += t.num_rows

    def iter_rows(self, shard: int = 0, num_shards: int = 1, limit: int | None = None) -> Iterator[Row]:
        """Yield (position, row) for positions `shard mod num_shards`, below `limit` if given."""
        if self.is_hub:
            yield from self._own_table_rows(self._hub_stream(), shard, num_shards, limit)
            return
        pos = 0
        for path in self.files:
            if path.suffix == ".parquet":
                n = pq.ParquetFile(path).metadata.num_rows
                yield from self._own_parquet_rows(path, pos, shard, num_shards, limit)
                pos += n
                if limit is not None and pos >= limit:
                    return
                continue
            for item in self._iter_file(path):
                if limit is not None and pos >= limit:
                    return
                if pos % num_shards == shard:
                    yield pos, _parse_line(item) if isinstance(item, bytes) else item
                pos += 1

    def iter_column(self, name: str, limit: int | None = None) -> Iterator[tuple[int, object]]:
        """(position, row) with only column `name` where the format allows: the planner's duplicate scan."""
        if self.is_hub:
            yield from self._own_table_rows(self._hub_stream([name]), 0, 1, limit)
            return
        pos = 0
        for path in self.files:
            if path.suffix == ".parquet":
                pf = pq.ParquetFile(path)
                cols = [name] if name in pf.schema_arrow.names else []
                for batch in pf.iter_batches(batch_size=4096, columns=cols):
                    for row in (batch.to_pylist() if cols else [{}] * batch.num_rows):
                        if limit is not None and pos >= limit:
                            return
                        yield pos, row
                        pos += 1
                continue
            for item in self._iter_file(path):
                if limit is not None and pos >= limit:
                    return
                yield pos, _parse_line(item) if isinstance(item, bytes) else item
                pos += 1

    def count(self, limit: int | None = None) -> int:
        if self.is_hub:
            n = sum(t.num_rows for t in self._hub_stream(self._first_column()))
        else:
            n = 0
            for path in self.files:
                if path.suffix == ".parquet":
                    n += pq.ParquetFile(path).metadata.num_rows
                else:
                    n += sum(1 for _ in self._iter_file(path))
        return n if limit is None else min(n, limit)


def open_source(spec, input_spec: str, cfg, split: str, skip_unreadable: bool = False, out: Path | None = None):
    """The corpus's own reader if it brings one (FSD50K: a release folder), else `InputSource` with the folder rules
    (`--skip-unreadable`; the build's `--out` is never read as input, even when it lies inside the input folder)."""
    name = getattr(cfg, "sample", "") or getattr(cfg, "base", "") or cfg.name  # a spoken variant reads its base's sample
    if spec.open_source is not None:
        return spec.open_source(input_spec, name, cfg.hub_id, split)
    return InputSource(input_spec, name, cfg.hub_id, split, skip_unreadable=skip_unreadable,
                       exclude=(Path(out),) if out is not None else ())
