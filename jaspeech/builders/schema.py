"""Row schemas shared by every TTS corpus, and the types source adapters return.

One turn structure serves SFT and DPO: `turns` is the conversation in order; user turns are spoken
(text, audio, ASR scores, quality scores), assistant turns are text. DPO rows add `chosen` / `rejected`, so a
collator reads both corpora with one code path.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from datasets import Audio, Features, List, Value

from jaspeech.synthesis.quality.dnsmos import DNSMOS_FIELDS
from jaspeech.synthesis.quality.signal import SIGNAL_FIELDS

TURN = {
    "role": Value("string"),  # "user" | "assistant"
    "text": Value("string"),  # user: the exact text spoken in `audio`; assistant: the response
    # a spoken turn's text as written, when the spoken text differs beyond character widths (footnote markers
    # dropped, Latin words in katakana, markdown as sentences: synthesis/text.py prepare_turn); else null
    "original_text": Value("string"),
    "audio": Audio(),  # FLAC bytes; null for assistant turns
    "duration": Value("float32"),  # seconds of audio; null for assistant turns
    "transcript": Value("string"),  # ASR round-trip transcript; null if not spoken or --asr none
    "cer": Value("float32"),  # kotoba-whisper-normalised CER of transcript vs text
    "kana_cer": Value("float32"),  # CER of the katakana readings (the filter's criterion)
    "asr_passes": Value("int8"),  # 1: the first (greedy) transcript passed; 2: a second, beam-search one did
    # the ear's forced score (builders/ear.py): the text's mean log-probability per piece given the audio, and the
    # stretch of the text the audio supports least with its deficit (nats per piece below the ear's own
    # transcript there); null with --ear transcript
    "text_logprob": Value("float32"),
    "worst_span": Value("string"),
    "worst_deficit": Value("float32"),
    "takes": Value("int8"),  # which take of the turn was kept (1: the first synthesis; 2, 3: retakes)
    # quality of the stored clip (jaspeech/synthesis/quality): DNSMOS P.835 SIG/BAK/OVRL and P.808 MOS (1-5);
    # null for unspoken turns and with --quality none
    "dnsmos": {k: Value("float32") for k in DNSMOS_FIELDS},
    # signal checks (null for unspoken turns): peak |x|, share of samples at full scale, seconds of leading /
    # trailing silence, RMS level in dBFS, the longest silence inside the speech in seconds
    "signal": {k: Value("float32") for k in SIGNAL_FIELDS},
}

COMMON = {
    "id": Value("string"),  # "<config>-<source_id>", unique within the corpus
    "source_dataset": Value("string"),  # hub id of the source corpus (spoken: --source-name, else the input's name)
    "source_id": Value("string"),  # the source row's id field, else its 0-based input position
    "source_index": Value("int64"),  # 0-based position in the input (stable accounting key)
    "speaker": Value("string"),  # one of spk00..spk19
    "duration": Value("float32"),  # total seconds of speech in the row
    "tts_model": Value("string"),
    "asr_model": Value("string"),  # "none" when the round trip was skipped
    "turns": List(TURN),
}

SFT_FEATURES = Features(COMMON)
# speech-to-speech configs: assistant turns are spoken too, in one of the assistant voices (asst00, ...)
S2S_FEATURES = Features({**COMMON, "assistant_speaker": Value("string")})
# what the build did to a row's dialogue beyond speaking it (`jaspeech build spoken`); null when nothing:
# `trailing_user` is "kept-exchanges" (the dialogue ended on a user turn, cut after its last complete exchange: the
# cut turns in `dropped_turns`) or "spoken" (that user turn spoken, unanswered)
PROVENANCE = {"trailing_user": Value("string"),
              "dropped_turns": List({"role": Value("string"), "text": Value("string")})}
SPOKEN_FEATURES = Features({**COMMON, "provenance": PROVENANCE})
SPOKEN_S2S_FEATURES = Features({**COMMON, "assistant_speaker": Value("string"), "provenance": PROVENANCE})
DPO_FEATURES = Features({
    **COMMON,
    "chosen": Value("string"),
    "rejected": Value("string"),
    "source": Value("string"),  # hh-rlhf: the comparison's HH-RLHF subset (harmless-base, ...); else null
})

# full-duplex configs (`<config>-duplex`, builders/duplex.py): one stereo recording per dialogue, the assistant on
# channel 0 (the model's own stream, as Moshi and J-Moshi expect) and the user on channel 1, with the timeline's
# segments (turns and backchannels, each heard and scored like a spoken turn) and every word's time
SEGMENT = {
    "kind": Value("string"),  # "turn" | "backchannel"
    "role": Value("string"),  # "user" | "assistant": who speaks it
    "channel": Value("int8"),  # 0: assistant, 1: user
    "turn": Value("int32"),  # a turn: its index in `turns`; a backchannel: the turn it answers
    "text": Value("string"),  # exactly what is spoken
    "start": Value("float32"),  # seconds on the recording's clock
    "end": Value("float32"),
    "gap": Value("float32"),  # a turn: start minus the previous turn's end (negative: overlap); else null
    "transcript": Value("string"),
    "cer": Value("float32"),
    "kana_cer": Value("float32"),
    "asr_passes": Value("int8"),
    "dnsmos": {k: Value("float32") for k in DNSMOS_FIELDS},
    "signal": {k: Value("float32") for k in SIGNAL_FIELDS},
}
WORD = {
    "role": Value("string"),
    "channel": Value("int8"),
    "segment": Value("int32"),  # index in `segments`
    "word": Value("string"),  # an OpenJTalk morpheme (synthesis/align: the one rule)
    "start": Value("float32"),
    "end": Value("float32"),
}
DUPLEX_FEATURES = Features({
    "id": Value("string"),
    "source_dataset": Value("string"),
    "source_id": Value("string"),
    "source_index": Value("int64"),
    "speaker": Value("string"),  # the user's voice (channel 1)
    "assistant_speaker": Value("string"),  # the assistant's voice (channel 0)
    "audio": Audio(),  # stereo FLAC: channel 0 assistant, channel 1 user
    "duration": Value("float32"),  # seconds: the last segment's end plus the stated tail
    "tts_model": Value("string"),
    "asr_model": Value("string"),
    "align_model": Value("string"),  # what timed the words
    "turns": List({"role": Value("string"), "text": Value("string")}),  # the dialogue's text, in order
    "segments": List(SEGMENT),  # in start order
    "words": List(WORD),  # per segment in order, each segment's words in order
})

REJECT_FIELDS = ("source_index", "source_id", "reason", "detail")


@dataclass
class Turn:
    role: str
    text: object  # not yet validated: adapters pass through whatever the source holds
    spoken: bool


@dataclass
class Example:
    """What a source adapter makes of one input row: the conversation, plus corpus-specific text fields."""

    turns: list[Turn]
    extra: dict[str, object] = field(default_factory=dict)
    # None: every turn must be usable. N: the first N turns must be; a later user/assistant exchange that
    # is missing, empty or unspeakable is dropped with everything after it (a partial dialogue is kept).
    required_turns: int | None = None
    # the source dialogue ends on a user turn with no reply: the pipeline applies --trailing-user to it
    unanswered: bool = False


class RowReject(Exception):
    """Raised anywhere in the pipeline for a row that cannot be kept; becomes a reject record."""

    def __init__(self, reason: str, detail: str = "", position: int | None = None, source_id: str | None = None,
                 audio: list[dict] | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.position = position  # set when the reject is returned for a row of a batch
        self.source_id = source_id
        # rows rejected after synthesis: their spoken turns ({turn, text, transcript, kana_cer, audio}),
        # written beside the rejects with --keep-reject-audio so a person can hear why
        self.audio = audio


def prepare_each(prepare, rows: list[tuple[int, object, str]]) -> list:
    """`prepare(position, raw, source_id)` for each row; a row it rejects (or that trips a bug: `internal_error`,
    the detail says what) becomes its RowReject, so one odd row never costs its group the others."""
    out: list = []
    for position, raw, source_id in rows:
        try:
            out.append(prepare(position, raw, source_id))
        except RowReject as e:
            e.position, e.source_id = position, source_id
            out.append(e)
        except Exception as e:
            out.append(RowReject("internal_error", f"{type(e).__name__}: {e}", position=position, source_id=source_id))
    return out
