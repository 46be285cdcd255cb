"""Training data: readers for our corpora, the original ja-speech-llm corpora and ASR sets; weighted mixing.

Every reader yields `Example`s. Audio is read as raw bytes (`Audio(decode=False)`) and decoded with
soundfile, so an undecodable clip is skipped and counted (`Counters`) instead of killing the run.

Source kinds (`kind` in a recipe's `data.sources`); the schema is detected from the columns:
- `asr`: any ASR set with an audio and a text column (`japanese-asr/whisper_transcriptions.reazonspeech.all`
  uses `audio`/`transcription`; Common Voice `audio`/`sentence`; LibriSpeech `audio`/`text`); task `asr_ja`
  or `asr_en`.
- `jaspeech-sft`: spoken instructions, task `instruction` (spoken turns -> last response) or `asr_ja`
  (each spoken turn with its text). Ours (`turns`, also `jaspeech build spoken` folders), or the original's flat schemas:
  `Atotti/spoken-magpie-ja` (`instruction_audio`, `response`; `instruction` text for `asr_ja`) and
  `Atotti/spoken-multiturn-sft` (`q1_audio`, `a1`, `q2_audio`, `a2`; `q1`/`q2` texts for `asr_ja`).
- `jaspeech-dpo`: spoken prompt turns with `chosen` / `rejected`. Ours (`turns`), or `Atotti/spoken-dpo-49k`
  (`prompt`: a list of `{from, value, audio}`); `first_human_turn: true` keeps only the first human turn,
  as the original's DPO did.
- `fsd50k`: captions (`audio`, `caption`): ours and `Atotti/fsd50k-{cc0,ccby}-Qwen3-Omni-captioned`; task `caption`.
- `text`: text-only chats (`messages`: [{role, content}], e.g. kanhatakeyama/ramdom-to-fixed-multiturn-Calm3);
  each user/assistant pair is one example (task `text`), as the original's text-only source.

A `system` turn (`spoken` corpora) is never heard: its text (several joined by newlines) becomes the first
message, `{"role": "system"}`. The `chat` format renders it through the chat template; the original formats
cannot carry a row's system prompt (`original-v2` has one fixed system line, the original's; `original-v1` none),
so there it is dropped (prompts.render_original keeps only the first system message, the fixed line).

Optional per source: `config` (a name, or a list interleaved like the original's ReazonSpeech
`split_0`...`split_7`), `split`, `streaming`, `limit`, `weight`, `max_seconds` (longer clips skipped),
`max_response_chars` (longer responses skipped, the original used 2048), `audio_column`, `text_column`.
"""
from __future__ import annotations

from pathlib import Path

import itertools
import random
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from jaspeech.synthesis.audio import decode_audio_value

KINDS = ("asr", "jaspeech-sft", "jaspeech-dpo", "fsd50k", "text")


@dataclass
class Example:
    task: str
    turns: list[dict]  # [{role, text, spoken}] for instruction/dpo/text; empty for single-clip tasks
    audio: list[tuple[np.ndarray, int]]  # one clip per spoken turn / per placeholder, in order
    response: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    # speech-to-speech rows: the spoken assistant turns' audio as stored (HF `Audio(decode=False)` values, in
    # order), for S2S training a user adds; the model itself still predicts the response text
    response_audio: list[dict] = field(default_factory=list)


@dataclass
class Counters:
    undecodable: int = 0
    too_long: int = 0
    long_response: int = 0
    used: int = 0
    by_source: dict = field(default_factory=dict)


def _undecoded(feature):
    """The same feature with every `Audio` inside it set to `decode=False`."""
    import datasets

    if isinstance(feature, datasets.Audio):
        return datasets.Audio(decode=False)
    if isinstance(feature, dict):
        return {k: _undecoded(v) for k, v in feature.items()}
    if isinstance(feature, (datasets.List, datasets.LargeList)):
        return type(feature)(_undecoded(feature.feature))
    return feature


def _local_path_hint(path: str) -> str | None:
    """A path that is clearly meant to be local but is not there: say so, and how to make it."""
    p = Path(path).expanduser()
    looks_local = path.startswith((".", "/", "~")) or path.count("/") >= 2 or p.parts[0] in ("build", "runs", "data")
    if p.exists() or not looks_local:  # a Hub id has exactly one slash: owner/name
        return None
    return (f"data source {path!r} is a local path that does not exist (not a Hub id). Build it first, e.g. "
            f"`jaspeech build jaspeech-sft-audio --config magpie --input sample --out {path}` (the README's Quick "
            "start), or point the recipe at another folder with --set data.sources.N.path=FOLDER")


def _load(spec: dict):
    import datasets

    if hint := _local_path_hint(str(spec["path"])):
        raise FileNotFoundError(hint)
    configs = spec.get("config")
    kw = {"split": spec.get("split", "train"), "streaming": spec.get("streaming", False)}
    if isinstance(configs, list):  # several configs of one repo, interleaved (the original's ReazonSpeech)
        parts = [_load({**spec, "config": c}) for c in configs]
        return datasets.interleave_datasets(parts, stopping_strategy="all_exhausted")
    ds = datasets.load_dataset(spec["path"], configs, **kw)
    for name, feature in (ds.features or {}).items():
        undecoded = _undecoded(feature)
        if undecoded != feature:
            ds = ds.cast_column(name, undecoded)
    return ds


def schema_of(kind: str, columns) -> str:
    """Which schema a source of `kind` has, from its column names; a clear error if none fits."""
    columns = set(columns or [])
    candidates = {
        "asr": [("asr", set())],
        "fsd50k": [("caption", {"caption"})],
        "text": [("messages", {"messages"})],
        "jaspeech-sft": [("turns", {"turns"}), ("magpie", {"instruction_audio", "response"}),
                         ("multiturn", {"q1_audio", "a1", "q2_audio", "a2"})],
        "jaspeech-dpo": [("turns", {"turns", "chosen", "rejected"}), ("prompt", {"prompt", "chosen", "rejected"})],
    }
    if kind not in candidates:
        raise ValueError(f"unknown data source kind {kind!r}; choose one of {', '.join(KINDS)}")
    for name, needed in candidates[kind]:
        if needed <= columns:
            return name
    expected = " or ".join("(" + ", ".join(sorted(n)) + ")" for _, n in candidates[kind])
    raise ValueError(f"a {kind} source needs the columns {expected}; this one has {sorted(columns)}: "
                     "point `path` at a dataset in one of those schemas or change `kind`")


def _rows_to_examples(spec: dict, rows, counters: Counters, schema: str) -> Iterator[Example]:
    kind, task = spec["kind"], spec.get("task")
    # our corpora keep spoken turns up to the build's 120 s default (several encoder windows); the
    # the originals' flat schemas keep the original work's 30 s (one encoder window)
    default = 120.0 if schema == "turns" else 30.0
    max_seconds = float(spec.get("max_seconds", default))
    max_chars = spec.get("max_response_chars")

    def clip(audio) -> tuple[np.ndarray, int] | None:
        try:
            samples, sr = decode_audio_value(audio)
        except Exception:
            counters.undecodable += 1
            return None
        if samples.size / sr > max_seconds:
            counters.too_long += 1
            return None
        return samples, sr

    def short(*texts) -> bool:
        if max_chars is not None and any(len(t or "") > int(max_chars) for t in texts):
            counters.long_response += 1
            return False
        return True

    def spoken_turns(pairs) -> tuple[list[dict], list] | None:
        """[(role, text, audio-or-None)] -> (turns, clips); None if a spoken turn's clip is unusable.

        A user turn is heard when it carries audio (a `-spoken-response` row's user turns are text); an
        assistant turn's audio (speech-to-speech rows) is not an input and is left to `response_audio`.
        """
        turns, clips = [], []
        for role, text, audio in pairs:
            spoken = role == "user" and audio is not None
            if spoken:
                c = clip(audio)
                if c is None:
                    return None
                clips.append(c)
            turns.append({"role": role, "text": text, "spoken": spoken})
        return turns, clips

    for row in rows:
        if kind in ("asr", "fsd50k"):
            c = clip(row.get(spec.get("audio_column", "audio")))
            text = row.get(spec.get("text_column", "caption" if kind == "fsd50k" else "transcription"))
            if c is not None and text and short(text):
                yield Example(task or ("caption" if kind == "fsd50k" else "asr_ja"), [], [c], response=text)
        elif kind == "text":
            messages = row["messages"] or []
            for q, a in zip(messages[::2], messages[1::2]):
                if q["role"] == "user" and a["role"] == "assistant" and q["content"] and a["content"] and short(a["content"]):
                    yield Example("text", [{"role": "user", "text": q["content"], "spoken": False}], [],
                                  response=a["content"])
        elif kind == "jaspeech-sft" and task == "asr_ja":
            for text, audio in _spoken_texts(row, schema):
                if text and (c := clip(audio)) is not None:
                    yield Example("asr_ja", [], [c], response=text)
        elif kind == "jaspeech-sft":
            response_audio, system = [], []
            if schema == "turns":
                system = [t["text"] for t in row["turns"] if t["role"] == "system" and t["text"]]
                pairs = [(t["role"], t["text"], t["audio"] if t["role"] == "user" else None) for t in row["turns"]
                         if t["role"] != "system"]
                response_audio = [t["audio"] for t in row["turns"] if t["role"] == "assistant" and t.get("audio")]
            elif schema == "magpie":
                pairs = [("user", row.get("instruction") or "", row["instruction_audio"]), ("assistant", row["response"], None)]
            else:
                pairs = [("user", row.get("q1") or "", row["q1_audio"]), ("assistant", row["a1"], None),
                         ("user", row.get("q2") or "", row["q2_audio"]), ("assistant", row["a2"], None)]
            if not pairs or pairs[-1][0] != "assistant" or not short(*[p[1] for p in pairs if p[0] == "assistant"]):
                continue
            got = spoken_turns(pairs)
            if got is not None:
                turns, clips = got
                if system:  # the row's system turns (`spoken` corpora), joined, as the one system message up front
                    turns = [{"role": "system", "text": "\n".join(system), "spoken": False}] + turns
                yield Example("instruction", turns[:-1], clips, response=turns[-1]["text"],
                              response_audio=response_audio)
        else:  # jaspeech-dpo
            if schema == "turns":
                pairs = [(t["role"], t["text"], t["audio"] if t["role"] == "user" else None) for t in row["turns"]]
            else:
                pairs = [("user" if t["from"] == "human" else "assistant", t.get("value") or "", t.get("audio"))
                         for t in row["prompt"]]
                if spec.get("first_human_turn"):
                    pairs = [p for p in pairs if p[0] == "user"][:1]
            if not pairs or not short(row["chosen"], row["rejected"]):
                continue
            got = spoken_turns(pairs)
            if got is not None:
                yield Example("dpo", got[0], got[1], chosen=row["chosen"], rejected=row["rejected"])


def _spoken_texts(row: dict, schema: str) -> list[tuple[str, dict]]:
    """(text, audio) of every spoken turn of an SFT row, for ASR on the spoken instructions."""
    if schema == "turns":
        return [(t["text"], t["audio"]) for t in row["turns"] if t["role"] == "user"]
    if schema == "magpie":
        if "instruction" not in row:
            raise ValueError("task asr_ja on a spoken-magpie source needs its `instruction` text column")
        return [(row["instruction"], row["instruction_audio"])]
    if "q1" not in row:
        raise ValueError("task asr_ja on a spoken-multiturn source needs its `q1`/`q2` text columns")
    return [(row["q1"], row["q1_audio"]), (row["q2"], row["q2_audio"])]


def iter_source(spec: dict, counters: Counters) -> Iterator[Example]:
    rows = _load(spec)
    if spec.get("limit"):
        rows = rows.take(int(spec["limit"]))
    columns = list(rows.features or {})
    if not columns:  # a streamed source of unknown features: look at its first row
        it = iter(rows)
        first = next(it, None)
        columns, rows = list(first or {}), itertools.chain([first] if first is not None else [], it)
    schema = schema_of(spec["kind"], columns)
    yield from _rows_to_examples(spec, rows, counters, schema)


def mixture(sources: list[dict], seed: int = 0, counters: Counters | None = None) -> Iterator[Example]:
    """Endless weighted mix of the sources (each cycled when exhausted), deterministic for a seed."""
    counters = counters if counters is not None else Counters()
    rng = random.Random(seed)
    iterators = [iter_source(s, counters) for s in sources]
    weights = [float(s.get("weight", 1.0)) for s in sources]
    empty_rounds = [0] * len(sources)
    while True:
        i = rng.choices(range(len(sources)), weights=weights)[0]
        try:
            example = next(iterators[i])
            empty_rounds[i] = 0
        except StopIteration:
            empty_rounds[i] += 1
            if empty_rounds[i] > 1:
                raise ValueError(f"data source {sources[i].get('path')} yields no usable example (skipped so far: "
                                 f"{counters.undecodable} undecodable, {counters.too_long} over max_seconds, "
                                 f"{counters.long_response} over max_response_chars): check its path, config and "
                                 "columns, or raise those limits") from None
            iterators[i] = iter_source(sources[i], counters)
            continue
        counters.used += 1
        name = sources[i].get("name", sources[i].get("path"))
        counters.by_source[name] = counters.by_source.get(name, 0) + 1
        yield example


def warn_skipped(counters: Counters) -> None:
    if counters.undecodable or counters.too_long or counters.long_response:
        warnings.warn(f"skipped {counters.undecodable} undecodable and {counters.too_long} over-long clips, "
                      f"{counters.long_response} over-long responses", stacklevel=2)
