"""`jaspeech view` latency on a 100,000-row config: first page and filter changes, server side and over HTTP.

The corpus is written directly in the build's schema (`SFT_FEATURES`; 50 shards of 2,000 rows, row
groups of 64 rows as the build's writer makes them), because a `--tts tone` build carries no scores
(`--asr none`) and the real ASR would take days for 100k rows on this machine: here every spoken turn has
a transcript, CER and kana-CER from a realistic distribution, 1-2 spoken turns per row, 20 speakers.
Each row's audio is the same short FLAC clip (the table never reads audio bytes).

Measured side by side on the same files and queries:
  ours        the viewer's in-memory index of leaf columns (numpy + pyarrow.compute), `CorpusIndex.query_rows`
  http        the same through the real server (`python -m jaspeech view DIR --port 0`), urllib, one connection each
  naive       no index: re-read the leaf columns of every shard per request, then filter (pyarrow)
  duckdb-pq   DuckDB over the Parquet files per request           (only if `duckdb` is importable)
  duckdb-mem  DuckDB over an in-memory table of the same leaf columns (only if `duckdb` is importable)

    python benchmarks/view.py                 # 100k rows, 15 repeats per query
    python benchmarks/view.py --rows 20000 --repeats 5
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jaspeech.builders.schema import SFT_FEATURES  # noqa: E402
from jaspeech.builders.sources import SAMPLES_DIR  # noqa: E402
from jaspeech.view.queries import RowQuery, open_corpus  # noqa: E402

CONFIG = "magpie"
REASONS = ["roundtrip", "not_japanese", "unspeakable_code", "too_long", "empty_text", "tts_error"]
# (label, query string): what a person does on the page
QUERIES = [
    ("first page", {}),
    ("config", {"config": CONFIG}),
    ("speaker", {"speaker": "spk07"}),
    ("kana-CER 0.05-0.1", {"kana_min": "0.05", "kana_max": "0.1"}),
    ("CER >= 0.2", {"cer_min": "0.2"}),
    ("seconds 5-8", {"dur_min": "5", "dur_max": "8"}),
    ("text: 京都", {"q": "京都"}),
    ("text: absent", {"q": "存在しない語句"}),
    ("text: です (common)", {"q": "です"}),
    ("sort kana-CER desc", {"sort": "kana_cer", "order": "desc"}),
    ("combined + sort", {"speaker": "spk03", "kana_min": "0.02", "dur_max": "10", "q": "です", "sort": "duration",
                         "order": "desc"}),
    ("page 1000", {"offset": "50000", "limit": "50"}),
]


def sample_sentences() -> list[str]:
    out = []
    for name in ("magpie", "automultiturn"):
        for line in (SAMPLES_DIR / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if not isinstance(row, dict):  # the samples hold awkward rows on purpose
                continue
            turns = row.get("conversations")
            texts = [c.get("content") for c in turns if isinstance(c, dict)] if isinstance(turns, list) else []
            texts += [row.get(k) for k in ("q1", "q2")]
            out += [t for t in texts if isinstance(t, str) and 5 <= len(t) <= 60 and "```" not in t and "http" not in t]
    return sorted(set(out))


def mishear(text: str, rate: float, rng: random.Random) -> str:
    return "".join(rng.choice("あいうえおかきくけこ") if rng.random() < rate else c for c in text)


def write_corpus(out: Path, rows: int, shards: int, seed: int = 0) -> None:
    """A corpus folder (data/, rejects/, manifests/plan.json) with `rows` kept rows of one config."""
    rng = random.Random(seed)
    sentences = sample_sentences()
    buf = io.BytesIO()
    sf.write(buf, (0.2 * np.sin(np.arange(4000) / 8)).astype(np.float32), 16000, format="FLAC")
    clip = buf.getvalue()
    schema = SFT_FEATURES.arrow_schema
    (out / "data" / CONFIG).mkdir(parents=True)
    (out / "rejects" / CONFIG).mkdir(parents=True)
    (out / "manifests" / CONFIG).mkdir(parents=True)
    per = -(-rows // shards)
    for k in range(shards):
        batch, rejects = [], []
        for i in range(k * per, min(rows, (k + 1) * per)):
            turns = []
            for _ in range(1 if rng.random() < 0.7 else 2):
                text = f"{rng.choice(sentences)}{i % 1000}"
                cer = 0.0 if rng.random() < 0.6 else min(1.0, rng.expovariate(1 / 0.08))
                kana = 0.0 if cer == 0 else min(0.1, cer * rng.uniform(0.2, 1.0))
                duration = 0.15 * len(text) * rng.uniform(0.8, 1.2)
                turns += [{"role": "user", "text": text, "audio": {"bytes": clip, "path": None}, "duration": duration,
                           "transcript": mishear(text, cer, rng), "cer": cer, "kana_cer": kana},
                          {"role": "assistant", "text": "はい、お答えします。" * rng.randint(1, 8), "audio": None,
                           "duration": None, "transcript": None, "cer": None, "kana_cer": None}]
            batch.append({"id": f"{CONFIG}-{i:07d}", "source_dataset": "llm-jp/magpie-sft-v1.0", "source_id": str(i),
                          "source_index": i, "speaker": f"spk{rng.randrange(20):02d}",
                          "duration": sum(t["duration"] or 0 for t in turns), "tts_model": "synthetic",
                          "asr_model": "synthetic", "turns": turns})
            if rng.random() < 0.05:
                rejects.append({"source_index": rows + i, "source_id": str(rows + i), "reason": rng.choice(REASONS),
                                "detail": "synthetic reject for the benchmark"})
        name = f"train-{k:05d}-of-{shards:05d}"
        with pq.ParquetWriter(out / "data" / CONFIG / f"{name}.parquet", schema, compression="zstd") as w:
            for s in range(0, len(batch), 64):  # the build's writer: one row group per 64 rows
                w.write_table(pa.Table.from_pylist(batch[s:s + 64], schema=schema))
        (out / "rejects" / CONFIG / f"{name}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rejects), encoding="utf-8")
    (out / "manifests" / CONFIG / "plan.json").write_text(json.dumps(
        {"corpus": "jaspeech-sft-audio", "config": CONFIG, "input": "synthetic", "tts": "synthetic",
         "asr": "synthetic"}), encoding="utf-8")


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm: the first call may fill caches; a person's first page is measured separately below
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def stats(ms: list[float]) -> str:
    return f"{np.median(ms):8.1f} {np.percentile(ms, 95):7.1f}"


def naive_query(folder: Path, params: dict) -> int:
    """What a server without an index does: read the leaf columns of every shard, then filter."""
    cols = ["id", "speaker", "duration", "turns.list.element.role", "turns.list.element.kana_cer",
            "turns.list.element.text"]
    tables = [pq.ParquetFile(f).read(columns=cols) for f in sorted((folder / "data" / CONFIG).glob("*.parquet"))]
    t = pa.concat_tables(tables)
    mask = pa.array(np.ones(t.num_rows, dtype=bool))
    if "speaker" in params:
        mask = pc.and_(mask, pc.equal(t.column("speaker"), params["speaker"]))
    return int(pc.sum(mask).as_py())


DUCK_ROWS = """
    SELECT id, speaker, duration,
           list_max(list_transform(list_filter(turns, lambda x: x.role = 'user'), lambda x: x.cer)) AS cer,
           list_max(list_transform(list_filter(turns, lambda x: x.role = 'user'), lambda x: x.kana_cer)) AS kana_cer,
           list_filter(turns, lambda x: x.role = 'user')[1].text AS first,
           array_to_string(list_transform(list_filter(turns, lambda x: x.role = 'user'),
                                          lambda x: x.text || chr(10) || coalesce(x.transcript, '')), chr(10)) AS search
    FROM read_parquet('{glob}')"""


def duck_sql(source: str, qs: str) -> tuple[str, list]:
    p = dict(urllib.parse.parse_qsl(qs))
    where, args = ["TRUE"], []
    for key, column, op in (("speaker", "speaker", "="), ("kana_min", "kana_cer", ">="), ("kana_max", "kana_cer", "<="),
                            ("cer_min", "cer", ">="), ("dur_min", "duration", ">="), ("dur_max", "duration", "<=")):
        if key in p:
            where.append(f"{column} {op} CAST(? AS {'VARCHAR' if key == 'speaker' else 'FLOAT'})")  # as stored
            args.append(p[key] if key == "speaker" else float(p[key]))
    if "q" in p:
        where.append("(search ILIKE ? OR id ILIKE ?)")
        args += [f"%{p['q']}%"] * 2
    order = {"kana_cer": "kana_cer", "duration": "duration"}.get(p.get("sort", ""), "id")
    desc = " DESC NULLS LAST" if p.get("order") == "desc" else ""
    sql = (f"SELECT *, count(*) OVER () AS total FROM ({source}) WHERE {' AND '.join(where)} "
           f"ORDER BY {order}{desc} LIMIT {int(p.get('limit', 50))} OFFSET {int(p.get('offset', 0))}")
    return sql, args


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--shards", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--folder", type=Path, default=None, help="reuse (or keep) the generated corpus here")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    folder = args.folder or Path(tmp.name) / "corpus"
    if not (folder / "data" / CONFIG).exists():
        t0 = time.perf_counter()
        write_corpus(folder, args.rows, args.shards)
        print(f"wrote {args.rows:,} rows in {args.shards} shards in {time.perf_counter() - t0:.0f} s "
              f"({sum(f.stat().st_size for f in folder.rglob('*.parquet')) / 2**20:.0f} MiB)", file=sys.stderr)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    index = open_corpus(folder)
    start_s = time.perf_counter() - t0
    print(f"index: {index.num_rows:,} rows in {start_s:.2f} s, peak RSS +{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0:.0f} MB")

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "jaspeech", "view", str(folder), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    url = next(line.strip() for line in proc.stdout if line.startswith("http://"))
    print(f"server: `jaspeech view` ready in {time.perf_counter() - t0:.1f} s (imports + index), "
          f"RSS {rss_mb(proc.pid):.0f} MB")

    def http(qs: str) -> dict:
        with urllib.request.urlopen(f"{url}api/rows?{qs}", timeout=60) as r:
            return json.loads(r.read())

    try:
        t0 = time.perf_counter()
        for path in ("", "static/app.js", "static/app.css", "api/overview", "api/rows?"):
            with urllib.request.urlopen(url + path, timeout=60) as r:
                r.read()
        print(f"page open (html, js, css, overview, first page; cold): {(time.perf_counter() - t0) * 1000:.0f} ms")

        duck = None
        try:
            import duckdb

            duck = duckdb.connect()
            glob = str(folder / "data" / CONFIG / "*.parquet")
            t0 = time.perf_counter()
            duck.execute(f"CREATE TABLE idx AS {DUCK_ROWS.format(glob=glob)}")
            duck_start = time.perf_counter() - t0
        except ImportError:
            print("duckdb is not installed: its columns are left out (pip install duckdb to compare)")

        head = f"{'query':<20} {'total':>7} | {'ours ms':>8} {'p95':>7} | {'http ms':>8} {'p95':>7}"
        if duck is not None:
            head += f" | {'duckdb-mem':>10} {'p95':>7} | {'duckdb-pq':>9} {'p95':>7}"
        print(f"\nmedian and p95 over {args.repeats} runs (after one warm-up), milliseconds")
        print(head)
        worst_http = 0.0
        for label, params in QUERIES:
            qs = urllib.parse.urlencode(params)
            q = RowQuery.parse(params)
            total = index.query_rows(q)["total"]
            assert http(qs)["total"] == total
            ours = timed(lambda: index.query_rows(q), args.repeats)
            over_http = timed(lambda: http(qs), args.repeats)
            worst_http = max(worst_http, float(np.percentile(over_http, 95)))
            line = f"{label:<20} {total:>7} | {stats(ours)} | {stats(over_http)}"
            if duck is not None:
                sql, params = duck_sql("SELECT * FROM idx", qs)
                got = duck.execute(sql, params).fetchall()
                assert not got or got[0][-1] == total, (label, got[:1], total)
                mem = timed(lambda: duck.execute(sql, params).fetchall(), args.repeats)
                sql_pq, params_pq = duck_sql(DUCK_ROWS.format(glob=glob), qs)
                pq_ms = timed(lambda: duck.execute(sql_pq, params_pq).fetchall(), max(3, args.repeats // 5))
                line += f" | {stats(mem)}    | {stats(pq_ms)}  "
            print(line)
        naive = timed(lambda: naive_query(folder, {"speaker": "spk07"}), max(3, args.repeats // 5))
        print(f"{'naive (no index)':<20} {'':>7} | {stats(naive)} | (re-reads the leaf columns of every shard)")
        if duck is not None:
            print(f"duckdb-mem table built in {duck_start:.2f} s")
        print(f"\ntarget: first page and every filter change < 300 ms over HTTP; worst p95 here "
              f"{worst_http:.1f} ms: {'met' if worst_http < 300 else 'NOT met'}")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        tmp.cleanup()


if __name__ == "__main__":
    main()
