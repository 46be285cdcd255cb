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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

from jaspeech.synthesis.text import clean_text

SAMPLES_DIR = Path(__file__).parent / "samples"
_LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


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
    """One resolved `--input`: iterate rows by position, optionally only one shard's."""

    def __init__(self, spec: str, config_name: str, hub_id: str, split: str = "train") -> None:
        self.spec = spec
        self._hub_id = hub_id
        self._split = split
        if spec == "sample":
            self.files = [SAMPLES_DIR / f"{config_name}.jsonl"]
        elif Path(spec).exists():
            p = Path(spec)
            self.files = sorted(f for f in p.rglob("*") if f.suffix in _LOCAL_SUFFIXES) if p.is_dir() else [p]
            if not self.files:
                raise FileNotFoundError(f"no .jsonl, .json or .parquet files under {spec}")
            bad = [f for f in self.files if f.suffix not in _LOCAL_SUFFIXES]
            if bad:
                raise ValueError(f"unsupported input file {bad[0]} (use .jsonl, .json or .parquet)")
        elif "/" in spec and not spec.startswith((".", "/")):
            self.files = []
        else:
            raise FileNotFoundError(f"--input {spec!r} is neither 'sample', an existing path nor a hub id")

    @property
    def is_hub(self) -> bool:
        return not self.files

    def fingerprint(self) -> list[list]:
        """Names and sizes of the local input files: a plan notices a changed input without re-reading it."""
        root = Path(self.spec)
        return [[str(f.relative_to(root)) if root.is_dir() else f.name, f.stat().st_size] for f in self.files]

    def _first_column(self) -> list[str] | None:
        import datasets

        features = datasets.load_dataset(self.spec, split=self._split, streaming=True).features
        return list(features)[:1] if features else None

    def _hub_stream(self, columns: list[str] | None = None):
        """The hub split as a stream of Arrow tables, in the dataset's row order (never downloaded whole)."""
        import datasets

        try:
            ds = datasets.load_dataset(self.spec, split=self._split, streaming=True)
        except Exception as e:
            hint = ("; gated datasets need `hf auth login` (or HF_TOKEN) and the dataset's terms accepted on "
                    f"https://huggingface.co/datasets/{self.spec}") if "gated" in str(e).lower() or "401" in str(e) \
                else "; check the id and --split, or pass a local file or folder"
            raise FileNotFoundError(f"cannot read hub dataset {self.spec!r} ({type(e).__name__}: {e}){hint}") from e
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


def open_source(spec, input_spec: str, cfg, split: str):
    """The corpus's own reader if it brings one (FSD50K: a release folder), else `InputSource`."""
    factory = spec.open_source or InputSource
    # a spoken variant reads its base config's sample
    return factory(input_spec, getattr(cfg, "sample", "") or getattr(cfg, "base", "") or cfg.name, cfg.hub_id, split)
