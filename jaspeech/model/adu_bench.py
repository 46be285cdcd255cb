"""ADU-Bench (Japanese): generate spoken-question answers, judge them with an LLM, summarise.

Layout read: question JSONL files (lines with `question`, `answer`, `source`, `category`, `audio`, the
audio path relative to the file) anywhere under `--data`; `--language japanese` keeps the files whose
path mentions the language (ADU-Bench keeps each language in its own folder) or items whose
`language` field says so.

The judge prompt is the released ADU-Bench one (evaluation.py). The released scorer's faults are
fixed: a failed request or a reply without a 0-10 score is retried with backoff and, if it still fails,
the item is reported as *missing*, never scored 0; the raw judge text of every try is kept; `--swap`
also judges with the reference and the response in the other order and averages both; and both steps
resume from their output files.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import soundfile as sf

from jaspeech.openai_api import ApiError, audio_part, chat

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


@dataclass
class Question:
    id: str
    question: str
    answer: str
    source: str
    category: str
    audio: Path


def load_questions(data: Path, language: str | None = "japanese") -> list[Question]:
    data = Path(data)
    files = sorted(data.rglob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no question .jsonl files under {data}")
    out: list[Question] = []
    for f in files:
        rel = f.relative_to(data).as_posix()
        in_language_folder = language is None or language.lower() in rel.lower()
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines()):
            if not line.strip():
                continue
            item = json.loads(line)
            if not in_language_folder and str(item.get("language", "")).lower() != language.lower():
                continue
            out.append(Question(id=f"{rel}:{n}", question=item["question"], answer=item["answer"],
                                source=item.get("source", ""), category=item.get("category", ""),
                                audio=(f.parent / item["audio"]).resolve()))
    return out


def _done(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["id"]: r for r in rows}


def _append(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def openai_responder(url: str, model: str, prompt: str | None = None, **kw) -> Callable[[Question], str]:
    """Answer each spoken question with an OpenAI-compatible audio chat model (e.g. a vLLM baseline)."""

    def respond(q: Question) -> str:
        samples, sr = sf.read(q.audio, dtype="float32", always_2d=False)
        content = [audio_part(samples, sr)] + ([{"type": "text", "text": prompt}] if prompt else [])
        return chat(url, model, [{"role": "user", "content": content}], **kw)

    return respond


def jaspeech_responder(path: str, max_new_tokens: int = 512) -> Callable[[Question], str]:
    """Answer each spoken question with a local JaSpeechLLM checkpoint (spoken-instruction prompt, greedy)."""
    import torch

    from jaspeech.model import JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = JaSpeechLLMForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
    processor = JaSpeechLLMProcessor.from_pretrained(path)
    prompt = processor.render(processor.task_messages("instruction", [{"role": "user", "spoken": True}]),
                              add_generation_prompt=True)
    tok = processor.tokenizer

    def respond(q: Question) -> str:
        samples, sr = sf.read(q.audio, dtype="float32", always_2d=False)
        inputs = {k: v.to(device) for k, v in processor(text=[prompt], audio=[(samples, sr)]).items()}
        inputs["input_features"] = inputs["input_features"].to(dtype)
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        return processor.batch_decode(out, skip_special_tokens=True)[0].strip()

    return respond


def generate(questions: list[Question], respond: Callable[[Question], str], out: Path) -> dict[str, dict]:
    """responses.jsonl: one line per question; resumes, and retries questions whose answer failed before."""
    done = {k: v for k, v in _done(out).items() if v.get("response") is not None}
    for q in questions:
        if q.id in done:
            continue
        try:
            row = {"id": q.id, "audio": str(q.audio), "response": respond(q), "error": None}
        except (ApiError, OSError, RuntimeError) as e:
            row = {"id": q.id, "audio": str(q.audio), "response": None, "error": f"{type(e).__name__}: {e}"}
        _append(out, row)
        done[q.id] = row
    return done


def judge(questions: list[Question], responses: dict[str, dict], out: Path, judge_url: str, judge_model: str,
          swap: bool = False, **kw) -> dict[str, dict]:
    """judgments.jsonl: score (mean over orders), per-order scores and raw judge texts; resumable."""
    done = _done(out)
    for q in questions:
        if q.id in done:
            continue
        response = (responses.get(q.id) or {}).get("response")
        row = {"id": q.id, "category": q.category, "source": q.source, "question": q.question,
               "answer": q.answer, "response": response, "scores": [], "raw": [], "score": None, "missing": None}
        if response is None:
            row["missing"] = "no response"
        else:
            for template in (PROMPT_TEMPLATE, SWAPPED_TEMPLATE) if swap else (PROMPT_TEMPLATE,):
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
