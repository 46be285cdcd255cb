"""`jaspeech-dpo-audio`: spoken preference prompts for DPO.

Configs:
- `hh-rlhf` from `llm-jp/hh-rlhf-12k-ja` (`{conversations: [{from, value}, ...], chosen, rejected, source}`):
  every human turn of the context is spoken, earlier assistant turns stay text; the context ends on a
  human turn. `source` (the HH-RLHF subset: harmless-base, helpful-base, ...) is kept as a column. A role
  that is neither a known human nor a known assistant value rejects the row (`unknown_role`, naming it).
  The source has no id column: `source_id` is the row's position.
- `chatbot-arena` from `cyberagent/chatbot-arena-ja-calm2-7b-chat-experimental` (`{prompt, chosen,
  rejected}`): a single spoken prompt.
"""
from __future__ import annotations

from jaspeech.builders.adapters import field, require_mapping, turn_list
from jaspeech.builders.corpus import CorpusSpec, OriginalRelease, SourceConfig
from jaspeech.builders.pipeline import make_tts_builder
from jaspeech.builders.schema import DPO_FEATURES, Example, RowReject, Turn
from jaspeech.synthesis.text import clean_text

_HUMAN = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "bot"}


def _preference(row: dict, source: object = None) -> dict[str, object]:
    return {"chosen": row.get("chosen"), "rejected": row.get("rejected"), "source": source}


def check_preference(extra: dict) -> dict:
    """Both responses must be non-empty text and differ, else the pair teaches nothing."""
    source = extra.get("source")
    if source is not None and not isinstance(source, str):
        raise RowReject("bad_type", f"source is a {type(source).__name__}, not a string")
    out: dict[str, object] = {"source": clean_text(source).strip() or None if source is not None else None}
    for name in ("chosen", "rejected"):
        value = extra.get(name)
        if value is None:
            raise RowReject(f"missing_{name}", f"field {name!r} is absent or null")
        if not isinstance(value, str):
            raise RowReject("bad_type", f"{name} is a {type(value).__name__}, not a string")
        value = clean_text(value)
        if not value.strip():
            raise RowReject(f"empty_{name}", f"{name} is empty")
        out[name] = value
    if out["chosen"].strip() == out["rejected"].strip():
        raise RowReject("chosen_equals_rejected", "chosen and rejected are identical")
    return out


def hh_rlhf(raw: object) -> Example:
    row = require_mapping(raw)
    turns = []
    for i, t in enumerate(turn_list(row, "conversations")):
        who = t.get("from")
        if who in _HUMAN:
            turns.append(Turn("user", t.get("value"), spoken=True))
        elif who in _ASSISTANT:
            turns.append(Turn("assistant", t.get("value"), spoken=False))
        else:
            known = ", ".join(sorted(_HUMAN | _ASSISTANT))
            raise RowReject("unknown_role", f"conversations[{i}].from is {who!r}, not one of {known}")
    if turns[-1].role != "user":
        raise RowReject("malformed", "the context does not end on a human turn")
    return Example(turns=turns, extra=_preference(row, row.get("source")))


def chatbot_arena(raw: object) -> Example:
    row = require_mapping(raw)
    return Example(turns=[Turn("user", field(row, "prompt"), spoken=True)], extra=_preference(row))


SPEC = CorpusSpec(
    name="jaspeech-dpo-audio",
    pretty_name="JaSpeech DPO audio: spoken Japanese preference prompts",
    features=DPO_FEATURES,
    make_builder=make_tts_builder,
    card_template="dpo.md.j2",
    task_categories=("automatic-speech-recognition", "text-generation"),
    check_extra=check_preference,
    summary="Japanese preference data whose prompts are spoken by TTS, with text chosen and rejected "
    "responses, for DPO of speech LLMs.",
    language=("ja",),
    tags=("speech", "synthetic", "tts", "japanese", "dpo", "preference"),
    configs={
        "hh-rlhf": SourceConfig(
            name="hh-rlhf",
            hub_id="llm-jp/hh-rlhf-12k-ja",
            license="mit",
            adapter=hh_rlhf,
            id_field=None,
            id_note="The source has no id column: `source_id` is the row's 0-based position in it.",
            description="Japanese translation of 12k Anthropic HH-RLHF comparisons; every human turn is spoken. "
            "`source` keeps the comparison's HH-RLHF subset (harmless-base, helpful-base, ...).",
            original_columns={
                "prompt[*].value": "turns[*].text",
                "prompt[*].audio": "turns[*].audio (user turns; null for assistant turns)",
                "prompt[*].from": "turns[*].role (human -> user, gpt -> assistant)",
                "chosen": "chosen",
                "rejected": "rejected",
            },
            original=OriginalRelease("Atotti/spoken-dpo-49k", rows=12_000, hours=32.0,
                                     note="approximate: the hh-rlhf part of the original release"),
            bibtex="""@misc{llmjp2024hhrlhf12kja,
  title = {hh-rlhf-12k-ja},
  author = {{LLM-jp}},
  year = {2024},
  howpublished = {\\url{https://huggingface.co/datasets/llm-jp/hh-rlhf-12k-ja}}
}
@article{bai2022training,
  title = {Training a Helpful and Harmless Assistant with Reinforcement Learning from Human Feedback},
  author = {Bai, Yuntao and others},
  journal = {arXiv preprint arXiv:2204.05862},
  year = {2022}
}""",
        ),
        "chatbot-arena": SourceConfig(
            name="chatbot-arena",
            hub_id="cyberagent/chatbot-arena-ja-calm2-7b-chat-experimental",
            license="cc-by-4.0",
            adapter=chatbot_arena,
            id_field=None,
            gated=True,
            id_note="The source has no id column: `source_id` is the row's 0-based position in it.",
            description="Chatbot Arena prompts with CALM2-7B-Chat responses ranked by a reward model.",
            original_columns={
                "prompt[0].value": "turns[0].text",
                "prompt[0].audio": "turns[0].audio",
                "chosen": "chosen",
                "rejected": "rejected",
            },
            original=OriginalRelease("Atotti/spoken-dpo-49k", rows=29_000, hours=78.0,
                                     note="approximate: the chatbot-arena part of the original release"),
            bibtex="""@misc{cyberagent2024chatbotarenaja,
  title = {chatbot-arena-ja-calm2-7b-chat-experimental},
  author = {{CyberAgent}},
  year = {2024},
  howpublished = {\\url{https://huggingface.co/datasets/cyberagent/chatbot-arena-ja-calm2-7b-chat-experimental}}
}
@article{zheng2023judging,
  title = {Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena},
  author = {Zheng, Lianmin and others},
  journal = {arXiv preprint arXiv:2306.05685},
  year = {2023}
}""",
        ),
    },
)
