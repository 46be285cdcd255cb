"""Reading `--input`: a hub id, a local JSONL/JSON/Parquet file or folder, or the bundled `sample`.

Rows are addressed by their 0-based position in the input, which is the accounting key: every
position ends up kept or rejected. A line that is not valid JSON (or not UTF-8) is yielded as
`Malformed`, so it becomes a reject instead of stopping the build. Shard `k` of `S` holds the rows
whose position is `k mod S`, whatever the worker count.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq

SAMPLES_DIR = Path(__file__).parent / "samples"
_LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Malformed:
    detail: str


Row = tuple[int, object]  # (position, parsed row or Malformed)


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
        self._hub = None
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

    def _hub_dataset(self):
        if self._hub is None:
            import datasets

            self._hub = datasets.load_dataset(self.spec, split=self._split)
        return self._hub

    def _iter_file(self, path: Path) -> Iterator[object]:
        if path.suffix == ".parquet":
            for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
                yield from batch.to_pylist()
        elif _is_json_array(path):
            try:
                items = json.loads(path.read_bytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}: not a valid JSON array: {e}") from e
            yield from items
        else:
            with open(path, "rb") as f:
                for line in f:
                    if line.strip():
                        yield line  # parsed lazily: a shard parses only its own rows

    def iter_rows(self, shard: int = 0, num_shards: int = 1, limit: int | None = None) -> Iterator[Row]:
        """Yield (position, row) for positions `shard mod num_shards`, below `limit` if given."""
        if self.is_hub:
            ds = self._hub_dataset()
            end = len(ds) if limit is None else min(limit, len(ds))
            for pos in range(shard, end, num_shards):
                yield pos, ds[pos]
            return
        pos = 0
        for path in self.files:
            for item in self._iter_file(path):
                if limit is not None and pos >= limit:
                    return
                if pos % num_shards == shard:
                    yield pos, _parse_line(item) if isinstance(item, bytes) else item
                pos += 1

    def count(self, limit: int | None = None) -> int:
        if self.is_hub:
            n = len(self._hub_dataset())
        else:
            n = 0
            for path in self.files:
                if path.suffix == ".parquet":
                    n += pq.ParquetFile(path).metadata.num_rows
                else:
                    n += sum(1 for _ in self._iter_file(path))
        return n if limit is None else min(n, limit)
