"""`jaspeech-sft-audio`: spoken instructions for multi-task SFT.

Configs:
- `magpie` from `llm-jp/magpie-sft-v1.0` (`{id, conversations: [{role, content}, ...]}`): the first user
  turn is spoken, the first assistant turn after it is the response.
- `automultiturn` from `kanhatakeyama/AutoMultiTurnByCalm3-22B` (flat `q1, a1, q2, a2`): both questions
  are spoken, both answers are text. A row whose second exchange is missing, empty or unspeakable keeps
  its first exchange (a one-turn row), as the original corpus did; an unusable first exchange rejects it.
  A second question with no answer is a dialogue ending on the user: `--trailing-user speak` speaks it
  unanswered, `reject` rejects the row, the default keeps the first exchange.

Each config has two spoken variants (`--speak`): `<config>-s2s`, where the assistant's responses are spoken
too (speech-to-speech; the assistant in one of the assistant voices, never the row's user voice), and
`<config>-spoken-response`, where only the responses are spoken. A response that cannot be spoken (code,
URLs, tables, formulas) rejects the row from those configs only; the text config keeps it. `<config>-duplex`
speaks every turn too, as one stereo recording per dialogue with a timeline (builders/duplex.py).
"""
from __future__ import annotations

from jaspeech.builders.adapters import field, require_mapping, turn_list
from jaspeech.builders.corpus import CorpusSpec, OriginalRelease, SourceConfig, speak_variants
from jaspeech.builders.duplex import make_speech_builder
from jaspeech.builders.schema import S2S_FEATURES, SFT_FEATURES, Example, RowReject, Turn


def magpie(raw: object) -> Example:
    row = require_mapping(raw)
    conversations = turn_list(row, "conversations")
    user = next((i for i, t in enumerate(conversations) if t.get("role") == "user"), None)
    if user is None:
        raise RowReject("no_user_turn", "no turn with role 'user'")
    reply = next((t for t in conversations[user + 1 :] if t.get("role") == "assistant"), None)
    if reply is None:
        raise RowReject("no_response", "no assistant turn after the first user turn")
    return Example(
        turns=[
            Turn("user", conversations[user].get("content"), spoken=True),
            Turn("assistant", reply.get("content"), spoken=False),
        ]
    )


def automultiturn(raw: object) -> Example:
    """A second question without an answer (`a2` absent or null) ends the dialogue on the user: --trailing-user
    decides (by default the first exchange is kept, as before)."""
    row = require_mapping(raw)
    turns = [
        Turn("user", field(row, "q1"), spoken=True),
        Turn("assistant", field(row, "a1"), spoken=False),
        Turn("user", row.get("q2"), spoken=True),  # optional: checked like any turn, dropped if unusable
        Turn("assistant", row.get("a2"), spoken=False),
    ]
    unanswered = row.get("q2") is not None and row.get("a2") is None
    return Example(turns=turns[:3] if unanswered else turns, required_turns=2, unanswered=unanswered)


SPEC = CorpusSpec(
    name="jaspeech-sft-audio",
    pretty_name="JaSpeech SFT audio: spoken Japanese instructions",
    features=SFT_FEATURES,
    make_builder=make_speech_builder,
    card_template="sft.md.j2",
    task_categories=("automatic-speech-recognition", "text-generation"),
    summary="Japanese instructions spoken by TTS, with the text responses they ask for, "
    "for supervised fine-tuning of speech LLMs.",
    language=("ja",),
    tags=("speech", "synthetic", "tts", "japanese", "instruction-tuning"),
    configs=speak_variants({
        "magpie": SourceConfig(
            name="magpie",
            hub_id="llm-jp/magpie-sft-v1.0",
            license="apache-2.0",
            adapter=magpie,
            id_field="id",
            description="Single-turn instructions synthesised with Magpie; the instruction is spoken.",
            original_columns={"instruction_audio": "turns[0].audio", "response": "turns[1].text"},
            original=OriginalRelease("Atotti/spoken-magpie-ja", rows=132_000, hours=700.0),
            bibtex="""@misc{llmjp2024magpiesft,
  title = {magpie-sft-v1.0},
  author = {{LLM-jp}},
  year = {2024},
  howpublished = {\\url{https://huggingface.co/datasets/llm-jp/magpie-sft-v1.0}}
}
@article{xu2024magpie,
  title = {Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned LLMs with Nothing},
  author = {Xu, Zhangchen and Jiang, Fengqing and Niu, Luyao and Deng, Yuntian and Poovendran, Radha and Choi, Yejin and Lin, Bill Yuchen},
  journal = {arXiv preprint arXiv:2406.08464},
  year = {2024}
}""",
        ),
        "automultiturn": SourceConfig(
            name="automultiturn",
            hub_id="kanhatakeyama/AutoMultiTurnByCalm3-22B",
            license="other",
            license_name="automultiturn-mixed-open",
            license_link="https://huggingface.co/datasets/kanhatakeyama/AutoMultiTurnByCalm3-22B",
            license_parts="The first questions come from open datasets, each under its own licence: oasst2 "
            "(Apache-2.0), dolly-ja (CC-BY-SA-3.0: **ShareAlike**, derived works keep that licence), minnade "
            "(CC0-1.0) and chatbot-arena conversations (CC-BY-4.0); the answers and second questions were "
            "generated with CALM3-22B-Chat (Apache-2.0). Check the source card for which row came from where "
            "before reusing a row under one licence.",
            adapter=automultiturn,
            id_field=None,
            id_note="The source has no id column: `source_id` is the row's 0-based position in it.",
            description="Two-turn conversations generated with CALM3-22B-Chat; both questions are spoken. "
            "A row whose second exchange is missing, empty or unspeakable keeps its first exchange.",
            original_columns={
                "q1_audio": "turns[0].audio",
                "a1": "turns[1].text",
                "q2_audio": "turns[2].audio",
                "a2": "turns[3].text",
            },
            original=OriginalRelease("Atotti/spoken-multiturn-sft", rows=59_000, hours=265.0),
            bibtex="""@misc{hatakeyama2024automultiturn,
  title = {AutoMultiTurnByCalm3-22B},
  author = {Hatakeyama, Kan},
  year = {2024},
  howpublished = {\\url{https://huggingface.co/datasets/kanhatakeyama/AutoMultiTurnByCalm3-22B}}
}""",
        ),
    }, S2S_FEATURES),
)
