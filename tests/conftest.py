"""Shared fixtures: output accounting and tiny input files written in each source's schema."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

DATA = Path(__file__).resolve().parent / "data"  # test data carried in the repository

# Builds in tests skip the DNSMOS model (~1 s per clip on 2 cores) unless they ask for it (`quality="dnsmos"`):
# only the tests about quality pay for it (tests/synthesis/test_quality.py, tests/builders/test_quality_build.py).
# Inherited by the worker and CLI subprocesses that tests start. The signal checks run in every build.
os.environ.setdefault("JASPEECH_QUALITY", "none")


def kept_and_rejected(out: Path, config: str, by: str = "position") -> tuple[list, list]:
    """Input positions (or source ids, `by="id"`) in data/ and in rejects/ (lists, so duplicates show)."""
    column, reject_key = ("source_index", "source_index") if by == "position" else ("id", "source_id")
    kept: list = []
    for f in sorted((out / "data" / config).glob("*.parquet")):
        kept += pq.read_table(f, columns=[column]).column(column).to_pylist()
    rejected: list = []
    for f in sorted((out / "rejects" / config).glob("*.jsonl")):
        rejected += [json.loads(line)[reject_key] for line in f.read_text(encoding="utf-8").splitlines()]
    return kept, rejected


def reject_reasons(out: Path, config: str) -> dict[int, str]:
    reasons = {}
    for f in sorted((out / "rejects" / config).glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            reasons[r["source_index"]] = r["reason"]
    return reasons


def assert_accounted(out: Path, config: str, n_input: int | None = None, ids: list | None = None):
    """Every input row kept or rejected exactly once: by position (0..n_input-1) or by source id."""
    kept, rejected = kept_and_rejected(out, config, by="position" if ids is None else "id")
    expected = set(range(n_input)) if ids is None else set(ids)
    assert len(set(kept)) == len(kept), "a row was written twice"
    assert len(set(rejected)) == len(rejected), "a row was rejected twice"
    assert not set(kept) & set(rejected), "a row is both kept and rejected"
    assert set(kept) | set(rejected) == expected, "a row was lost"
    return kept, rejected


def write_jsonl(path: Path, rows: list) -> Path:
    """Rows may be dicts (dumped) or raw strings (written as-is, for broken lines)."""
    with open(path, "w", encoding="utf-8", errors="surrogatepass") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "corpus"
