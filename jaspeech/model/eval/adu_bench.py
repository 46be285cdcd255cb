"""ADU-Bench (Japanese): generate spoken-question answers, judge them with an LLM, summarise.

Layout read: the ADU-Bench dataset root as released (a download of the `KuofengGao/ADU-Bench` dataset
repository), which holds the question files under `input/` and the audio beside them:

    <root>/input/ADU-Multilingual/japanese.jsonl     one question per line: question, answer, source,
                                                    category, audio
    <root>/ADU-Multilingual/japanese/*.wav           the spoken questions

Each line's `audio` is a path relative to the dataset root (the released scripts run from there), e.g.
`ADU-Multilingual/japanese/0001_ja_....wav`; `--language` picks `input/ADU-Multilingual/<language>.jsonl`.

The judge prompt is the released ADU-Bench one (evaluation.py). The released scorer's faults are
fixed: a failed request or a reply without a 0-10 score is retried with backoff and, if it still fails,
the item is reported as *missing*, never scored 0; the raw judge text of every try is kept; `--swap`
also judges with the reference and the response in the other order and averages both; and both steps
resume from their output files: a rerun keeps every good answer and judgement and retries the missing
ones (the files are append-only logs, the last line of an item counts). A run where no item could be
answered, or none judged, fails with `AduBenchError` naming what to check.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import soundfile as sf

from jaspeech.openai_api import ApiError, audio_part, chat

QUESTIONS_DIR = Path("input") / "ADU-Multilingual"

PROMPT_TEMPLATE = (
    "Please evaluate the following LALMs' response for the user query and a reference is provided.\n\n"
    "Query: {query}\nReference: {reference}\nResponse: {response}\n\n"
    "Please rate the helpfulness, relevance, accuracy, and comprehensiveness of the LALMs' response.\n"
    "Please provide an overall score on a scale of 0 to 10, where a higher score indicates better overall "
    "performance.\nDO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the score.\n\nOutput:\n"
)
# the same prompt with the response shown before the reference, to average out position bias
SWAPPED_TEMPLATE = PROMPT_TEMPLATE.replace(
    "Reference: {reference}\nResponse: {response}", "Response: {response}\nReference: {reference}"
)
SYSTEM = "You are a helpful and precise assistant for checking the quality of the predicted answer."
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def parse_score(text: str) -> float | None:
    """The first number in the reply (as the released scorer reads it), if it is a valid 0-10 score."""
    match = _NUMBER.search(text or "")
    if not match:
        return None
    score = float(match.group(1))
    return score if 0.0 <= score <= 10.0 else None


class AduBenchError(Exception):
    """The data cannot be read, or the run answered or judged nothing; the message says what to check."""


@dataclass
class Question:
    id: str
    question: str
    answer: str
    source: str
    category: str
    audio: Path


def questions_file(data: Path, language: str) -> Path:
    """`<root>/input/ADU-Multilingual/<language>.jsonl`, or an error that says which folder to pass."""
    data = Path(data)
    path = data / QUESTIONS_DIR / f"{language}.jsonl"
    if path.is_file():
        return path
    folder = data / QUESTIONS_DIR
    if folder.is_dir():
        found = sorted(f.stem for f in folder.glob("*.jsonl"))
        raise AduBenchError(f"no {path.relative_to(data)} under {data}; languages there: "
                            f"{', '.join(found) or 'none'} (choose one with --language)")
    raise AduBenchError(f"{data} is not the ADU-Bench dataset root: {QUESTIONS_DIR}/{language}.jsonl is missing. "
                        "Pass --data the folder holding input/ and ADU-Multilingual/ (a download of the "
                        "KuofengGao/ADU-Bench dataset repository)")


def load_questions(data: Path, language: str = "japanese") -> list[Question]:
    """The questions of one language, audio paths resolved against the dataset root."""
    data = Path(data)
    path = questions_file(data, language)
    rel = path.relative_to(data).as_posix()
    out: list[Question] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            fields = {k: item[k] for k in ("question", "answer", "audio")}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise AduBenchError(f"{path}, line {n}: not a question line with question, answer and audio "
                                f"({type(e).__name__}: {e})") from e
        if not all(isinstance(v, str) and v for v in fields.values()):
            raise AduBenchError(f"{path}, line {n}: question, answer and audio must be non-empty strings")
        audio = Path(fields["audio"])
        out.append(Question(id=f"{rel}:{n}", question=fields["question"], answer=fields["answer"],
                            source=str(item.get("source", "")), category=str(item.get("category", "")),
                            audio=audio if audio.is_absolute() else data / audio))
    if not out:
        raise AduBenchError(f"{path} holds no questions: check that --data is the ADU-Bench dataset root and "
                            "--language names one of its input/ADU-Multilingual/*.jsonl")
    return out


def _latest(path: Path) -> dict[str, dict]:
    """The last line of each item in an append-only results file."""
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


def _append(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_audio(q: Question):
    if not q.audio.is_file():
        raise FileNotFoundError(f"audio file not found: {q.audio}")
    samples, sr = sf.read(q.audio, dtype="float32", always_2d=False)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return samples, sr


def openai_responder(url: str, model: str, prompt: str | None = None, **kw) -> Callable[[Question], str]:
    """Answer each spoken question with an OpenAI-compatible audio chat model (e.g. a vLLM baseline)."""

    def respond(q: Question) -> str:
        content = [audio_part(*_read_audio(q))] + ([{"type": "text", "text": prompt}] if prompt else [])
        return chat(url, model, [{"role": "user", "content": content}], **kw)

    return respond


def jaspeech_responder(path: str, max_new_tokens: int = 512) -> Callable[[Question], str]:
    """Answer each spoken question with a local JaSpeechLLM checkpoint (spoken-instruction prompt, greedy)."""
    from jaspeech.model.eval.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path)
    prompt = checkpoint.prompt("instruction", [{"role": "user", "spoken": True}])

    def respond(q: Question) -> str:
        return checkpoint.generate(prompt, [_read_audio(q)], max_new_tokens)[0]

    return respond


def generate(questions: list[Question], respond: Callable[[Question], str], out: Path,
             model: str) -> dict[str, dict]:
    """responses.jsonl: one answer per question. A rerun keeps the answers `model` gave and retries the
    failed ones (and every answer of another model)."""
    stored = _latest(out)
    done: dict[str, dict] = {}
    for q in questions:
        row = stored.get(q.id)
        if row and row.get("response") is not None and row.get("model") == model:
            done[q.id] = row
            continue
        try:
            row = {"id": q.id, "model": model, "audio": str(q.audio), "response": respond(q), "error": None}
        except Exception as e:  # recorded per item; a run that answers nothing fails in `run`
            row = {"id": q.id, "model": model, "audio": str(q.audio), "response": None,
                   "error": f"{type(e).__name__}: {e}"}
        _append(out, row)
        done[q.id] = row
    return done


def judge(questions: list[Question], responses: dict[str, dict], out: Path, judge_url: str, judge_model: str,
          swap: bool = False, **kw) -> dict[str, dict]:
    """judgments.jsonl: score (mean over orders), per-order scores and raw judge texts.

    A rerun keeps a stored judgement only when it has a score for the same response, judge and number of
    orders; a missing one (no response then, or a judge failure) is judged again.
    """
    templates = (PROMPT_TEMPLATE, SWAPPED_TEMPLATE) if swap else (PROMPT_TEMPLATE,)
    stored = _latest(out)
    done: dict[str, dict] = {}
    for q in questions:
        response = (responses.get(q.id) or {}).get("response")
        row = stored.get(q.id)
        if (row and row.get("score") is not None and row.get("response") == response
                and row.get("judge_model") == judge_model and len(row.get("scores", [])) == len(templates)):
            done[q.id] = row
            continue
        row = {"id": q.id, "category": q.category, "source": q.source, "question": q.question,
               "answer": q.answer, "response": response, "judge_model": judge_model, "scores": [], "raw": [],
               "score": None, "missing": None}
        if response is None:
            row["missing"] = "no response"
        else:
            for template in templates:
                prompt = template.format(query=q.question, reference=q.answer, response=response)
                messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]
                try:
                    text = chat(judge_url, judge_model, messages, max_tokens=16,
                                accept=lambda t: parse_score(t) is not None, **kw)
                    row["raw"].append(text)
                    row["scores"].append(parse_score(text))
                except ApiError as e:
                    row["raw"].append(e.attempts)
                    row["missing"] = f"judge failed: {e}"
                    break
            if row["missing"] is None:
                row["score"] = sum(row["scores"]) / len(row["scores"])
        _append(out, row)
        done[q.id] = row
    return done


def summarize(judgments: dict[str, dict], model: str) -> dict:
    scored = [j for j in judgments.values() if j["score"] is not None]
    by_category: dict[str, list[float]] = {}
    for j in scored:
        by_category.setdefault(j["category"], []).append(j["score"])
    return {
        "model": model,
        "benchmark": "ADU-Bench (ja)",
        "mean": sum(j["score"] for j in scored) / len(scored) if scored else None,
        "n": len(scored),
        "missing": len(judgments) - len(scored),
        "by_category": {k: sum(v) / len(v) for k, v in sorted(by_category.items())},
    }


def _first_errors(messages: Iterable[str], k: int = 3) -> str:
    seen: list[str] = []
    for m in messages:
        if m and m not in seen:
            seen.append(m)
        if len(seen) == k:
            break
    return "; ".join(seen)


def run(data: Path, language: str, respond: Callable[[Question], str], model: str, out: Path, judge_url: str,
        judge_model: str, swap: bool = False, judge_key_env: str = "OPENAI_API_KEY", **kw) -> dict:
    """Answer, judge and summarise into `out` (adu-bench.{responses,judgments}.jsonl, adu-bench.summary.json).

    Raises `AduBenchError` when no question could be answered, or no answer judged, after writing what
    was done: the message names the first errors and what to check.
    """
    questions = load_questions(data, language)
    out.mkdir(parents=True, exist_ok=True)
    responses = generate(questions, respond, out / "adu-bench.responses.jsonl", model)
    answered = [q for q in questions if responses[q.id]["response"] is not None]
    if not answered:
        errors = _first_errors(responses[q.id]["error"] for q in questions)
        raise AduBenchError(
            f"none of the {len(questions)} questions could be answered ({errors}). Check that --data is the "
            f"ADU-Bench dataset root, so that the audio paths resolve (first: {questions[0].audio}), and that "
            "the model answers (--model, --model-url). A rerun retries them.")
    judgments = judge(questions, responses, out / "adu-bench.judgments.jsonl", judge_url, judge_model, swap=swap,
                      api_key_env=judge_key_env, **kw)
    summary = summarize(judgments, model)
    (out / "adu-bench.summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")
    if summary["n"] == 0:
        errors = _first_errors(judgments[q.id]["missing"] for q in answered)
        raise AduBenchError(
            f"none of the {len(answered)} answers could be judged ({errors}). Check --judge-url {judge_url}, "
            f"--judge-model {judge_model} and the key in ${judge_key_env}. A rerun retries them.")
    return summary
