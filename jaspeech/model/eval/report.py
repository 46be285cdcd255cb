"""`jaspeech eval report DIR`: the seed's results table (model | ADU-Bench (ja) | CER %) from result files.

CER is the normalised CER on Common Voice 8.0 ja test (the seed's column), read from metric lines
(`*.jsonl` lines with `cer_norm`, as `eval cer` / `eval asr` write them); ADU-Bench from summaries
(`*.json` with `"benchmark": "ADU-Bench (ja)"`). The seed's published rows are appended as reference
lines, marked as such.
"""
from __future__ import annotations

import json
from pathlib import Path

SEED = Path(__file__).parent / "seed_results.json"
CER_DATASET = "common_voice_8_0"


def collect(results: Path) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for f in sorted(Path(results).rglob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "cer_norm" in row and CER_DATASET in str(row.get("dataset", "")):
                table.setdefault(str(row.get("model")), {})["cer"] = row["cer_norm"]
    for f in sorted(Path(results).rglob("*.json")):
        try:
            row = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("benchmark") == "ADU-Bench (ja)":
            entry = table.setdefault(str(row.get("model")), {})
            entry["adu"], entry["adu_n"], entry["adu_missing"] = row.get("mean"), row.get("n"), row.get("missing")
    return table


def _num(x, fmt: str) -> str:
    return "n/a" if x is None else fmt % x


def render(results: Path) -> str:
    table = collect(results)
    lines = ["| model | ADU-Bench (ja) | CER % |", "|---|---:|---:|"]
    for model, r in sorted(table.items()):
        adu = _num(r.get("adu"), "%.2f")
        if r.get("adu_missing"):
            adu += f" ({r['adu_missing']} missing of {r['adu_n'] + r['adu_missing']})"
        lines.append(f"| {model} | {adu} | {_num(r.get('cer'), '%.2f')} |")
    seed = json.loads(SEED.read_text(encoding="utf-8"))
    for r in seed["rows"]:
        lines.append(f"| {r['model']} *(published, seed reference)* | n/a | {r['cer_norm']:.2f} |")
    lines.append("")
    lines.append(f"CER: normalised CER (kotoba-whisper protocol) on Common Voice 8.0 ja test. Reference lines: "
                 f"{seed['source']}.")
    return "\n".join(lines) + "\n"
