"""`jaspeech-dpo-audio`: spoken preference prompts for DPO.

Configs:
- `hh-rlhf` from `llm-jp/hh-rlhf-12k-ja` (`{conversations: [{from, value}, ...], chosen, rejected}`): every
  human turn of the context is spoken, earlier assistant turns stay text; the context ends on a human turn.
- `chatbot-arena` from `cyberagent/chatbot-arena-ja-calm2-7b-chat-experimental` (`{prompt, chosen,
  rejected}`): a single spoken prompt.
"""
from __future__ import annotations

from jaspeech.builders.adapters import field, require_mapping, turn_list
from jaspeech.builders.corpus import CorpusSpec, SourceConfig
from jaspeech.builders.schema import DPO_FEATURES, Example, RowReject, Turn
from jaspeech.synthesis.text import clean_text

_HUMAN = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "bot"}


def _preference(row: dict) -> dict[str, object]:
    return {"chosen": row.get("chosen"), "rejected": row.get("rejected")}


def check_preference(extra: dict) -> dict:
    """Both responses must be non-empty text and differ, else the pair teaches nothing."""
    out = {}
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
            raise RowReject("malformed", f"conversations[{i}].from is {who!r}, not human or gpt")
    if turns[-1].role != "user":
        raise RowReject("malformed", "the context does not end on a human turn")
    return Example(turns=turns, extra=_preference(row))


def chatbot_arena(raw: object) -> Example:
    row = require_mapping(raw)
    return Example(turns=[Turn("user", field(row, "prompt"), spoken=True)], extra=_preference(row))


SPEC = CorpusSpec(
    name="jaspeech-dpo-audio",
    pretty_name="JaSpeech DPO audio: spoken Japanese preference prompts",
    features=DPO_FEATURES,
    card_template="dpo.md.j2",
    task_categories=("automatic-speech-recognition", "text-generation"),
    check_extra=check_preference,
    summary="Japanese preference data whose prompts are spoken by TTS, with text chosen and rejected "
    "responses, for DPO of speech LLMs.",
    configs={
        "hh-rlhf": SourceConfig(
            name="hh-rlhf",
            hub_id="llm-jp/hh-rlhf-12k-ja",
            license="mit",
            adapter=hh_rlhf,
            id_field=None,
            description="Japanese translation of 12k Anthropic HH-RLHF comparisons; every human turn is spoken.",
            original_columns={"prompt_audio": "turns[*].audio (user turns)", "chosen": "chosen", "rejected": "rejected"},
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
            description="Chatbot Arena prompts with CALM2-7B-Chat responses ranked by a reward model.",
            original_columns={"prompt_audio": "turns[0].audio", "chosen": "chosen", "rejected": "rejected"},
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
