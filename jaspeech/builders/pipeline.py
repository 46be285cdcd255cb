"""One input row -> one output row or one reject: adapter, text preparation, speaker, TTS, round trip.

The row's content depends only on the row (its source id seeds the speaker and the synthesis), never
on the shard, worker or executor that processed it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from jaspeech.builders.corpus import CorpusSpec, SourceConfig
from jaspeech.builders.schema import RowReject
from jaspeech.builders.sources import Malformed
from jaspeech.synthesis.asr import ASRBackend
from jaspeech.synthesis.audio import encode_flac
from jaspeech.synthesis.roundtrip import TurnScore, score_turn, unreadable_kanji
from jaspeech.synthesis.speakers import assign_speaker, stable_hash
from jaspeech.synthesis.text import TextOptions, Unspeakable, clean_text, prepare_for_speech
from jaspeech.synthesis.tts import TTSBackend


@dataclass(frozen=True)
class SynthesisOptions:
    max_kana_cer: float = 0.10
    text: TextOptions = field(default_factory=TextOptions)


@dataclass
class Timers:
    """Seconds spent inside the backends, to measure orchestration overhead against wall time."""

    tts: float = 0.0
    asr: float = 0.0  # both listenings
    asr_second: float = 0.0  # the part of `asr` spent on second listenings
    caption: float = 0.0


@dataclass(frozen=True)
class Heard:
    """A spoken turn's round-trip result: the score that decides, after `passes` listenings."""

    score: TurnScore
    passes: int
    first: TurnScore | None = None  # the failed first listening, when there was a second


@dataclass
class Pending:
    """A row that passed validation and TTS and waits for the round trip."""

    position: int
    source_id: str
    roles: list[str]
    texts: list[str]
    audios: dict[int, tuple[np.ndarray, int]]  # spoken turn index -> (samples, sample_rate)
    speaker: str
    extra: dict

    def reject(self, reason: str, detail: str) -> RowReject:
        return RowReject(reason, detail, position=self.position, source_id=self.source_id)


def source_id_of(raw: object, id_field: str | None, position: int) -> str:
    """The source row's id field when it holds a usable scalar, else its 0-based position."""
    if id_field and isinstance(raw, dict):
        value = raw.get(id_field)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return clean_text(str(value)).strip() or str(position)
    return str(position)


def _response_text(value: object, turn: int) -> str:
    if value is None:
        raise RowReject("missing_response", f"turn {turn} has no text")
    if not isinstance(value, str):
        raise RowReject("bad_type", f"turn {turn} is a {type(value).__name__}, not a string")
    text = clean_text(value)
    if not text.strip():
        raise RowReject("empty_response", f"turn {turn} is empty")
    return text


class RowBuilder:
    def __init__(
        self,
        corpus: CorpusSpec,
        config: SourceConfig,
        tts: TTSBackend,
        asr: ASRBackend | None,
        options: SynthesisOptions = SynthesisOptions(),
    ) -> None:
        self.corpus, self.config, self.tts, self.asr, self.options = corpus, config, tts, asr, options
        self.timers = Timers()

    def build(self, position: int, raw: object, source_id: str) -> dict:
        """Return the output row, or raise `RowReject`."""
        result = self.finish([self.prepare(position, raw, source_id)])[0]
        if isinstance(result, RowReject):
            raise result
        return result

    def prepare(self, position: int, raw: object, source_id: str) -> Pending:
        """Everything but the round trip: validation, text preparation, speaker and TTS. Raises RowReject."""
        if isinstance(raw, Malformed):
            raise RowReject("malformed", raw.detail)
        example = self.config.adapter(raw)
        extra = self.corpus.check_extra(example.extra) if self.corpus.check_extra else example.extra
        speaker = assign_speaker(self.config.hub_id, source_id)

        texts: list[str] = []
        for i, turn in enumerate(example.turns):
            if turn.spoken:
                try:
                    texts.append(prepare_for_speech(turn.text, self.options.text))
                except Unspeakable as e:
                    raise RowReject(e.reason, f"turn {i}: {e.detail}" if e.detail else f"turn {i}") from None
                if getattr(self.tts, "reads_with_openjtalk", False) and (chars := unreadable_kanji(texts[-1])):
                    raise RowReject("unreadable_kanji", f"turn {i}: no reading for {chars}")
            else:
                texts.append(_response_text(turn.text, i))
        spoken = [i for i, t in enumerate(example.turns) if t.spoken]
        audios = {i: self._synthesize(texts[i], speaker, source_id, i) for i in spoken}
        return Pending(position, source_id, [t.role for t in example.turns], texts, audios, speaker.name, extra)

    def finish(self, pending: list[Pending]) -> list[dict | RowReject]:
        """The round trip for several rows in one ASR call (GPU backends batch it), then the output rows.

        A turn whose first transcript fails the threshold is listened to once more, more carefully
        (`transcribe(..., strong=True)`: beam search), in one call for all such turns of the group;
        the row is rejected only if that fails too. Most first-pass failures on clean synthetic speech
        are the ear's (Whisper base greedy mishearing a rare word), not the voice's, so the second
        listening keeps them at the cost of decoding a few clips again. The turn records the transcript
        that decided (`asr_passes`: 1 or 2). If a batched call fails, each row is retried alone, so one
        bad clip rejects only its own row.
        """
        if self.asr is None:
            return [self._row(p, {}) for p in pending]
        clips = [(n, i) for n, p in enumerate(pending) for i in sorted(p.audios)]
        try:
            heard = self._transcribe([pending[n].audios[i] for n, i in clips])
        except RowReject as batch_error:
            if len(pending) == 1:
                return [pending[0].reject(batch_error.reason, batch_error.detail)]
            return [r for p in pending for r in self.finish([p])]
        scores: list[dict[int, Heard]] = [{} for _ in pending]
        for (n, i), text in zip(clips, heard):
            scores[n][i] = Heard(score_turn(pending[n].texts[i], text), 1)
        again = [(n, i) for n, i in clips if self._fails(scores[n][i].score)]
        errors = self._listen_again(pending, scores, again) if again else {}
        return [errors[n] if n in errors else self._row(p, scores[n]) for n, p in enumerate(pending)]

    def _fails(self, score: TurnScore) -> bool:
        return math.isnan(score.kana_cer) or score.kana_cer > self.options.max_kana_cer

    def _listen_again(self, pending: list[Pending], scores: list[dict[int, Heard]],
                      clips: list[tuple[int, int]]) -> dict[int, RowReject]:
        """Listen again to `clips` (row, turn), updating `scores`; returns rejects for rows it could not run for."""
        try:
            heard = self._transcribe([pending[n].audios[i] for n, i in clips], strong=True)
        except RowReject as e:
            rows = sorted({n for n, _ in clips})
            if len(rows) == 1:
                return {rows[0]: pending[rows[0]].reject(e.reason, f"second listening: {e.detail}")}
            errors: dict[int, RowReject] = {}
            for n in rows:
                errors.update(self._listen_again(pending, scores, [c for c in clips if c[0] == n]))
            return errors
        for (n, i), text in zip(clips, heard):
            scores[n][i] = Heard(score_turn(pending[n].texts[i], text), 2, first=scores[n][i].score)
        return {}

    def _row(self, p: Pending, heard: dict[int, Heard]) -> dict | RowReject:
        for i, h in sorted(heard.items()):
            if self._fails(h.score):
                first = f"first {h.first.kana_cer:.3f} heard {h.first.transcript!r}; " if h.first else ""
                return p.reject(
                    "roundtrip",
                    f"turn {i}: kana_cer {h.score.kana_cer:.3f} > {self.options.max_kana_cer:g} after "
                    f"{h.passes} listening{'s' if h.passes > 1 else ''}; {first}heard {h.score.transcript!r}",
                )
        turns = []
        for i, role in enumerate(p.roles):
            if i in p.audios:
                samples, sr = p.audios[i]
                h = heard.get(i)
                s = h.score if h else None
                turns.append(
                    {
                        "role": role,
                        "text": p.texts[i],
                        "audio": {"bytes": encode_flac(samples, sr), "path": None},
                        "duration": len(samples) / sr,
                        "transcript": s.transcript if s else None,
                        "cer": s.cer if s else None,
                        "kana_cer": s.kana_cer if s else None,
                        "asr_passes": h.passes if h else None,
                    }
                )
            else:
                turns.append({"role": role, "text": p.texts[i], "audio": None, "duration": None,
                              "transcript": None, "cer": None, "kana_cer": None, "asr_passes": None})
        return {
            "id": f"{self.config.name}-{p.source_id}",
            "source_dataset": self.config.hub_id,
            "source_id": p.source_id,
            "source_index": p.position,
            "speaker": p.speaker,
            "duration": sum(len(a) / sr for a, sr in p.audios.values()),
            "tts_model": self.tts.name,
            "asr_model": self.asr.name if self.asr else "none",
            "turns": turns,
            **p.extra,
        }

    def _synthesize(self, text: str, speaker, source_id: str, turn: int) -> tuple[np.ndarray, int]:
        seed = stable_hash("seed", self.config.hub_id, source_id, str(turn)) % (2**31)
        t0 = time.perf_counter()
        try:
            samples, sr = self.tts.synthesize(text, speaker, seed)
        except Exception as e:  # a backend failure on one row must not stop the build
            raise RowReject("tts_error", f"turn {turn}: {type(e).__name__}: {e}") from None
        finally:
            self.timers.tts += time.perf_counter() - t0
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0 or not np.all(np.isfinite(samples)) or float(np.max(np.abs(samples))) < 1e-4:
            raise RowReject("tts_empty", f"turn {turn}: TTS returned no usable audio")
        seconds = samples.size / sr
        if seconds > self.options.text.max_seconds:
            raise RowReject(
                "audio_too_long", f"turn {turn}: {seconds:.1f} s > {self.options.text.max_seconds:g} s"
            )
        return samples, sr

    def _transcribe(self, audios: list[tuple[np.ndarray, int]], strong: bool = False) -> list[str]:
        if not audios:
            return []
        t0 = time.perf_counter()
        try:
            transcripts = self.asr.transcribe(audios, strong=True) if strong else self.asr.transcribe(audios)
        except Exception as e:
            raise RowReject("asr_error", f"{type(e).__name__}: {e}") from None
        finally:
            seconds = time.perf_counter() - t0
            self.timers.asr += seconds
            if strong:
                self.timers.asr_second += seconds
        if len(transcripts) != len(audios):
            raise RowReject("asr_error", f"{len(transcripts)} transcripts for {len(audios)} clips")
        return list(transcripts)
