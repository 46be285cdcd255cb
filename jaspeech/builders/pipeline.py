"""One input row -> one output row or one reject: adapter, text preparation, speaker, TTS, round trip, quality.

The row's content depends only on the row (its source id seeds the speaker and the synthesis), never
on the shard, worker or executor that processed it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from jaspeech.builders.corpus import CorpusSpec, SourceConfig
from jaspeech.builders.ear import EarRule, Span, forced_fails, worst_span
from jaspeech.builders.schema import RowReject, prepare_each
from jaspeech.builders.sources import Malformed
from jaspeech.synthesis.asr import ASRBackend, Forced
from jaspeech.synthesis.audio import decode_audio, encode_flac
from jaspeech.synthesis.batch import SynthesisItem, synthesize_batch
from jaspeech.synthesis.quality import QualityScorer, scorer_version, signal_checks
from jaspeech.synthesis.roundtrip import TurnScore, score_turn, unreadable_kanji
from jaspeech.synthesis.speakers import (ASSISTANT_PROFILES, SpeakerProfile, assign_assistant_voice, assign_speaker,
                                          stable_hash)
from jaspeech.synthesis.text import (PIECE_CHARS, TextOptions, Unspeakable, clean_text, prepare_turn,
                                     synthesis_pieces)
from jaspeech.synthesis.tts import TTSBackend


@dataclass(frozen=True)
class SynthesisOptions:
    max_kana_cer: float = 0.10
    text: TextOptions = field(default_factory=TextOptions)  # spoken user turns
    # spoken assistant turns (speech-to-speech configs): responses are long, so their cap is generous
    response: TextOptions = field(default_factory=lambda: TextOptions(max_seconds=600.0))
    # attach the audio of rows rejected after synthesis to their RowReject (--keep-reject-audio), so a
    # person can hear whether the voice or the ear was wrong; off by default (it costs a FLAC encode)
    keep_reject_audio: bool = False
    # quality filters (off by default, see docs/quality.md): reject a row whose spoken turn has a DNSMOS OVRL
    # below `min_dnsmos` (`low_quality`) or a silence longer than `max_silence` seconds (`long_silence`)
    min_dnsmos: float | None = None
    max_silence: float | None = None
    # the round trip's rule (builders/ear.py): the forced score (`EarRule`) or, with None, today's transcript rule
    # alone (kana-CER after a second, beam-search listening); and how many takes a spoken turn gets before its
    # row is rejected (each retake with the next seed of the row, in the same voice)
    rule: EarRule | None = field(default_factory=EarRule)
    max_takes: int = 3
    # a dialogue that ends on a user turn (`Example.unanswered`): keep-exchanges | speak | reject (--trailing-user)
    trailing_user: str = "keep-exchanges"


# a retake's pace against the voice's own (take 2: 7 % slower, take 3: 7 % faster)
RETAKE_PACE = (0.93, 1.07)


@dataclass
class Timers:
    """Seconds spent inside the backends, to measure orchestration overhead against wall time."""

    tts: float = 0.0  # retakes included
    asr: float = 0.0  # every listening and forced score
    asr_second: float = 0.0  # the part of `asr` spent on second listenings
    asr_forced: float = 0.0  # the part of `asr` spent on forced scores
    retake: float = 0.0  # the part of `tts` and `asr` spent on retakes
    caption: float = 0.0
    quality: float = 0.0  # decoding the stored clips, signal checks and the MOS model


@dataclass(frozen=True)
class Stored:
    """A kept spoken turn as the row stores it: its FLAC bytes, and the quality of what those bytes decode to."""

    flac: bytes
    dnsmos: dict | None
    signal: dict


@dataclass(frozen=True)
class Heard:
    """A spoken turn's round-trip result: the score that decides, after `passes` listenings of take `take`."""

    score: TurnScore
    passes: int
    first: TurnScore | None = None  # the failed first listening, when there was a second
    forced: Forced | None = None  # the ear's forced score of the text (None with the transcript rule)
    span: Span | None = None  # the stretch that failed the rule, else the one the audio supports least
    take: int = 1  # which take of the turn this is (1: the first synthesis)
    audio: tuple | None = field(default=None, repr=False, compare=False)  # a retake's audio (kept for its reject)
    failed: bool = False  # the round trip's decision for this take (builders/ear.py), made once when it is heard


@dataclass
class Planned:
    """A row that passed validation, with its texts prepared: what the group's one TTS call will speak."""

    position: int
    source_id: str
    roles: list[str]
    texts: list[str]
    voices: dict[int, SpeakerProfile]  # spoken turn index -> voice
    speaker: str
    extra: dict
    originals: list[str | None] = field(default_factory=list)  # a spoken turn's text as written, if it differs

    def pieces(self, hub_id: str, max_chars: int = PIECE_CHARS) -> list[tuple[int, SynthesisItem]]:
        """(turn, item) for every piece of every spoken turn, in turn order. A long text (a spoken response) is
        cut at sentence ends (`synthesis_pieces`; `max_chars=1`: every sentence its own piece, as the duplex
        builder needs); each piece is seeded from the row, never from its group."""
        return [(i, item) for i, voice in sorted(self.voices.items())
                for item in turn_items(hub_id, self.source_id, i, self.texts[i], voice, max_chars=max_chars)]


def turn_items(hub_id: str, source_id: str, turn: int, text: str, voice: SpeakerProfile,
               take: int = 1, max_chars: int = PIECE_CHARS) -> list[SynthesisItem]:
    """The synthesis items of one spoken turn's take: its pieces, seeded by the row, the turn and the take alone
    (take 1 keeps the seeds every earlier build used). A retake draws the next seed of the same row, in the same
    voice at a slightly different pace (`RETAKE_PACE`): a deterministic voice (Kokoro, OpenJTalk) says a text the
    same way whatever the seed, so only its pace can give the ear another take."""
    key = ("seed", hub_id, source_id, str(turn)) + (() if take == 1 else (f"take{take}",))
    seed = stable_hash(*key) % (2**31)
    if take > 1:
        voice = replace(voice, speed=round(voice.speed * RETAKE_PACE[(take - 2) % len(RETAKE_PACE)], 4))
    return [SynthesisItem(piece, voice, seed if k == 0 else (seed + k) % (2**31))
            for k, piece in enumerate(synthesis_pieces(text, max_chars))]


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
    voices: dict[int, SpeakerProfile] = field(default_factory=dict)  # spoken turn index -> voice (for retakes)
    originals: list[str | None] = field(default_factory=list)  # as Planned.originals

    def reject(self, reason: str, detail: str, heard: dict | None = None, keep_audio: bool = False) -> RowReject:
        """A reject of this row; with `keep_audio`, carrying its spoken turns (and what the ear heard)."""
        return RowReject(reason, detail, position=self.position, source_id=self.source_id,
                         audio=reject_audio(self.texts, self.audios, heard) if keep_audio else None)


def reject_audio(texts: list[str] | dict[int, str], audios: dict[int, tuple[np.ndarray, int]],
                 heard: dict | None = None) -> list[dict]:
    """Spoken turns of a rejected row as `writer.REJECT_AUDIO` records (turn, text, transcript, kana_cer, audio)."""
    heard = heard or {}
    records = []
    for i, (samples, sr) in sorted(audios.items()):
        h = heard.get(i)
        records.append({"turn": i, "text": texts[i], "transcript": h.score.transcript if h else None,
                        "kana_cer": h.score.kana_cer if h else None,
                        "audio": {"bytes": encode_flac(samples, sr), "path": None}})
    return records


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
        quality: QualityScorer | None = None,
    ) -> None:
        self.corpus, self.config, self.tts, self.asr, self.options = corpus, config, tts, asr, options
        if asr is not None and options.rule is not None and not callable(getattr(asr, "score", None)):
            raise TypeError(f"the forced round trip needs an ear with score(audios, texts); {asr.name} has none: "
                            "build with --ear transcript, or add score() to the backend (synthesis/asr/__init__.py)")
        self.quality = quality
        self.timers = Timers()
        # written into every shard manifest: `jaspeech rescore` skips shards already scored by this version
        self.manifest_fields = {"quality_scorer": scorer_version(quality)}

    def build(self, position: int, raw: object, source_id: str) -> dict:
        """Return the output row, or raise `RowReject`."""
        result = self.finish([self.prepare(position, raw, source_id)])[0]
        if isinstance(result, RowReject):
            raise result
        return result

    def prepare(self, position: int, raw: object, source_id: str) -> Pending:
        """Everything but the round trip for one row: validation, text preparation, speaker and TTS. Raises RowReject."""
        [result] = self.synthesize([self.plan(position, raw, source_id)])
        if isinstance(result, RowReject):
            raise result
        return result

    def prepare_group(self, rows: list[tuple[int, object, str]]) -> list[Pending | RowReject]:
        """`prepare` for a group of rows (position, raw, source id) with ONE batched TTS call for all their texts.

        Each row is planned alone (a row that fails validation is rejected before any synthesis), then every
        piece of every planned row goes to the backend together (`synthesize_batch`), so a GPU backend decodes
        them as one batch. Results come back in the rows' order. A row's audio never depends on its group:
        its seeds come from the row, and a batching backend must give each item what it would give it alone.
        """
        planned = prepare_each(self.plan, rows)
        ready = iter(self.synthesize([p for p in planned if isinstance(p, Planned)]))
        return [next(ready) if isinstance(p, Planned) else p for p in planned]

    def plan(self, position: int, raw: object, source_id: str) -> Planned:
        """Validation and text preparation: which turns are spoken, in which voice, with what exact text."""
        if isinstance(raw, Malformed):
            raise RowReject("malformed", raw.detail)
        example = self.config.adapter(raw)
        extra = self.corpus.check_extra(example.extra) if self.corpus.check_extra else example.extra
        if example.unanswered:
            extra = {**extra, **self._trailing_user(example)}
        speaker = assign_speaker(self.config.hub_id, source_id)
        voices = {"user": speaker}
        if self.config.speak != "user":  # speech-to-speech configs: the assistant speaks in its own voice
            for turn in example.turns:
                turn.spoken = turn.role == "assistant" or (self.config.speak == "both" and turn.role == "user")
            voices["assistant"] = assign_assistant_voice(self.config.hub_id, source_id)
            extra = {**extra, "assistant_speaker": voices["assistant"].name}

        texts: list[str] = []
        originals: list[str | None] = []
        for i, turn in enumerate(example.turns):
            try:
                text, original = self._turn_text(i, turn)
                texts.append(text)
                originals.append(original)
            except RowReject:
                if example.required_turns is None or i < example.required_turns:
                    raise
                break  # an optional later exchange that cannot be used: keep the dialogue before it
        if len(texts) < len(example.turns):  # whole user/assistant exchanges only
            del texts[len(texts) - (len(texts) - example.required_turns) % 2:]
            del originals[len(texts):]
            example.turns = example.turns[: len(texts)]
        spoken = {i: voices[turn.role] for i, turn in enumerate(example.turns) if turn.spoken}
        return Planned(position, source_id, [t.role for t in example.turns], texts, spoken, speaker.name, extra,
                       originals)

    def _trailing_user(self, example) -> dict:
        """Apply --trailing-user to a dialogue that ends on a user turn; returns its provenance (where the config's
        schema records one). keep-exchanges cuts it after its last assistant turn (no assistant turn: nothing to
        keep, `no_response`), speak keeps it, reject rejects it (`no_response`)."""
        choice = self.options.trailing_user
        last = max((i for i, t in enumerate(example.turns) if t.role == "assistant"), default=None)
        if choice == "reject" or (choice == "keep-exchanges" and last is None):
            raise RowReject("no_response", "the dialogue ends on a user turn, with no assistant reply after it"
                            + ("" if last is None else " (--trailing-user keep-exchanges keeps its earlier exchanges)"))
        record = {"trailing_user": "spoken", "dropped_turns": []}
        if choice == "keep-exchanges":
            dropped, example.turns = example.turns[last + 1:], example.turns[: last + 1]
            record = {"trailing_user": "kept-exchanges", "dropped_turns": [
                {"role": t.role, "text": t.text if isinstance(t.text, str) else None} for t in dropped]}
        return {"provenance": record} if "provenance" in self.corpus.features_of(self.config.name) else {}

    def synthesize(self, planned: list[Planned]) -> list[Pending | RowReject]:
        """Every piece of every row in one `synthesize_batch` call, then each row's turns joined and checked.

        A row's turns are judged in order, as if spoken one after another: the first turn that failed (the
        backend raised, gave no usable audio, or ran past the length limit) rejects the row, and with
        `--keep-reject-audio` the reject carries the turns before it (and the overlong turn itself). If the
        batched call itself fails, each row is synthesised alone, so one bad row rejects only itself.
        """
        if not planned:
            return []
        pieces = [p.pieces(self.config.hub_id) for p in planned]
        t0 = time.perf_counter()
        try:
            results = synthesize_batch(self.tts, [item for row in pieces for _, item in row])
        except Exception as e:
            if len(planned) == 1:
                results = [e] * len(pieces[0])
            else:
                return [r for p in planned for r in self.synthesize([p])]
        finally:
            self.timers.tts += time.perf_counter() - t0
        out: list[Pending | RowReject] = []
        start = 0
        for p, row in zip(planned, pieces):
            mine = results[start : start + len(row)]
            start += len(row)
            out.append(self._assemble(p, [(turn, audio) for (turn, _), audio in zip(row, mine)]))
        return out

    def _assemble(self, p: Planned, pieces: list[tuple[int, object]]) -> Pending | RowReject:
        """The row's spoken turns from its synthesised pieces, checked turn by turn (see `synthesize`)."""
        audios: dict[int, tuple[np.ndarray, int]] = {}
        for i in sorted(p.voices):
            try:
                audios[i] = self._turn_audio(i, p.texts[i], p.roles[i], [a for t, a in pieces if t == i])
            except RowReject as e:
                if self.options.keep_reject_audio and (audios or e.audio):  # the turns made so far, and this one
                    e.audio = reject_audio(p.texts, audios) + (e.audio or [])
                e.position, e.source_id = p.position, p.source_id
                return e
        return Pending(p.position, p.source_id, p.roles, p.texts, audios, p.speaker, p.extra, p.voices, p.originals)

    def _turn_text(self, i: int, turn) -> tuple[str, str | None]:
        """The exact text of turn `i` and, for a spoken turn whose text was rewritten, the text as written:
        spoken turns made speakable (or rejected), responses checked.

        A spoken response is first checked as a response (missing, empty, wrong type), then made
        speakable like an instruction: markdown lists and headings become sentences; code, URLs, tables
        and formulas reject the row (from the speech-to-speech config only: the text config keeps it).
        """
        if not turn.spoken:
            return _response_text(turn.text, i), None
        if turn.role == "assistant":
            _response_text(turn.text, i)
        try:
            spoken = prepare_turn(turn.text, self._text_options(turn.role))
        except Unspeakable as e:
            raise RowReject(e.reason, f"turn {i}: {e.detail}" if e.detail else f"turn {i}") from None
        if getattr(self.tts, "reads_with_openjtalk", False) and (chars := unreadable_kanji(spoken.text)):
            raise RowReject("unreadable_kanji", f"turn {i}: no reading for {chars}")
        return spoken.text, spoken.original_text

    def finish(self, pending: list[Pending]) -> list[dict | RowReject]:
        """The round trip, then the quality stage, for several rows in one call each; then the output rows.

        Rows that pass the round trip are encoded as stored (FLAC) and scored from the decoded bytes: signal
        checks for every spoken turn and, unless `--quality none`, one batched MOS call for the group's clips
        (`--min-dnsmos` / `--max-silence` reject a row here, `low_quality` / `long_silence`). If the batched
        call fails, each row is scored alone, so one bad clip rejects only its own row (`quality_error`).
        """
        return self.finish_later(pending)()

    def finish_later(self, pending: list[Pending]) -> Callable[[], list[dict | RowReject]]:
        """`finish` in two parts: the round trip now, and a function that does the rest and returns the rows.

        The rest (FLAC encoding, decoding, signal checks, the MOS model) needs only the CPU, so run_shard calls it
        on a helper thread while the next group is synthesised: on a GPU node the scoring no longer leaves the GPU
        waiting. It touches nothing the next group's synthesis or round trip uses but `timers.quality`, and the
        rows are the same whichever thread makes them.
        """
        heard = self._round_trip(pending)
        results: list[dict | RowReject | None] = [None] * len(pending)
        passed: list[int] = []
        for n, h in enumerate(heard):
            if isinstance(h, RowReject):  # the round trip rejected the row (roundtrip, asr_error)
                results[n] = h
            else:
                passed.append(n)

        def rest() -> list[dict | RowReject]:
            """An unexpected error rejects only its own row (`internal_error`); the others keep what they heard."""
            flacs: dict[int, dict[int, bytes]] = {}
            for n in passed:
                try:
                    flacs[n] = {i: encode_flac(samples, sr) for i, (samples, sr) in pending[n].audios.items()}
                except Exception as e:
                    results[n] = pending[n].reject("internal_error", f"{type(e).__name__}: {e}")
            encoded = [n for n in passed if n in flacs]
            stored = self._measure([pending[n] for n in encoded], [flacs[n] for n in encoded])
            for n, turns in zip(encoded, stored):
                p, h = pending[n], heard[n]
                try:
                    results[n] = turns if isinstance(turns, RowReject) else \
                        self._quality_reject(p, h, turns) or self._row(p, h, turns)
                except Exception as e:
                    results[n] = p.reject("internal_error", f"{type(e).__name__}: {e}")
            return results

        return rest

    def _round_trip(self, pending: list[Pending]) -> list[dict[int, Heard] | RowReject]:
        """Each row's heard turns, in one ASR call per listening (GPU backends batch it); {} for every row with
        --asr none.

        Every spoken turn is transcribed (greedy) and, with the forced rule (`--ear forced`, the default), scored
        by the ear with its text teacher-forced (`ASRBackend.score`); `ear.forced_fails` decides. With the
        transcript rule (`--ear transcript`) a turn whose first transcript fails the kana-CER threshold is
        listened to once more with beam search, as before. A turn that still fails is synthesised again with the
        row's next seed in the same voice and heard again (`--max-takes`, 3 by default: up to 2 retakes); the
        row is rejected only when every take fails, and its reject lists every take, best first. If a batched
        call fails, each row is retried alone, so one bad clip rejects only its own row.
        """
        if self.asr is None:
            return [{} for _ in pending]
        clips = [(n, i) for n, p in enumerate(pending) for i in sorted(p.audios)]
        try:
            heard = self._hear(pending, clips, [pending[n].audios[i] for n, i in clips])
        except RowReject as batch_error:
            if len(pending) == 1:
                return [pending[0].reject(batch_error.reason, batch_error.detail,
                                          keep_audio=self.options.keep_reject_audio)]
            return [r for p in pending for r in self._round_trip([p])]
        scores: list[dict[int, Heard]] = [{} for _ in pending]
        for (n, i), h in heard.items():
            scores[n][i] = h
        takes = {c: [heard[c]] for c in clips if self._fails(heard[c])}
        self._retake(pending, scores, takes)
        out: list[dict[int, Heard] | RowReject] = []
        for n, p in enumerate(pending):
            failed = {i: takes[(n, i)] for i in sorted(p.audios) if (n, i) in takes and self._fails(scores[n][i])}
            out.append(self._roundtrip_reject(p, scores[n], failed) if failed else scores[n])
        return out

    def _hear(self, pending: list[Pending], clips: list[tuple[int, int]],
              audios: list[tuple[np.ndarray, int]], take: int = 1) -> dict[tuple[int, int], Heard]:
        """One take of each clip (row, turn) heard: transcribed, forced-scored (forced rule) or listened to again
        when the first transcript fails (transcript rule). Raises RowReject (asr_error) if a call fails."""
        texts = [pending[n].texts[i] for n, i in clips]
        transcripts = self._transcribe(audios)
        rule = self.options.rule
        forced = self._score(audios, texts) if rule is not None else [None] * len(clips)
        heard = {c: self._judged(Heard(score_turn(t, said), 1, forced=f, take=take))
                 for c, t, said, f in zip(clips, texts, transcripts, forced)}
        if rule is None:
            again = [k for k, c in enumerate(clips) if heard[c].failed]
            if again:
                try:
                    second = self._transcribe([audios[k] for k in again], strong=True)
                except RowReject as e:
                    raise RowReject(e.reason, f"second listening: {e.detail}") from None
                for k, text in zip(again, second):
                    c = clips[k]
                    heard[c] = self._judged(Heard(score_turn(texts[k], text), 2, first=heard[c].score, take=take))
        return heard

    def _retake(self, pending: list[Pending], scores: list[dict[int, Heard]],
                takes: dict[tuple[int, int], list[Heard]]) -> None:
        """Synthesise the failing turns (`takes`' keys) again, one take at a time for all of them, with the next
        seed of their row, and hear each new take. A take that passes replaces the turn's audio and heard score;
        every take's result is appended to `takes`. A retake that cannot be made or heard ends the retakes."""
        failing = list(takes)
        t0 = time.perf_counter()
        try:
            for take in range(2, self.options.max_takes + 1):
                if not failing:
                    break
                made = self._synthesize_take(pending, failing, take)
                ready = [c for c in failing if c in made]
                try:
                    heard = self._hear(pending, ready, [made[c] for c in ready], take=take)
                except RowReject:
                    break
                for c in ready:
                    takes[c].append(replace(heard[c], audio=made[c]))
                    if not self._fails(heard[c]):
                        n, i = c
                        scores[n][i] = heard[c]
                        pending[n].audios[i] = made[c]
                failing = [c for c in failing if self._fails(scores[c[0]][c[1]])]
        finally:
            self.timers.retake += time.perf_counter() - t0

    def _synthesize_take(self, pending: list[Pending], clips: list[tuple[int, int]],
                         take: int) -> dict[tuple[int, int], tuple[np.ndarray, int]]:
        """Take `take` of each clip (row, turn), in one `synthesize_batch` call; clips whose take failed are left
        out (their earlier take stands)."""
        items = {c: turn_items(self.config.hub_id, pending[c[0]].source_id, c[1], pending[c[0]].texts[c[1]],
                               pending[c[0]].voices[c[1]], take) for c in clips if c[1] in pending[c[0]].voices}
        t0 = time.perf_counter()
        try:
            results = synthesize_batch(self.tts, [item for row in items.values() for item in row])
        except Exception:
            return {}
        finally:
            self.timers.tts += time.perf_counter() - t0
        made, start = {}, 0
        for (n, i), row in items.items():
            mine = results[start : start + len(row)]
            start += len(row)
            try:
                made[(n, i)] = self._turn_audio(i, pending[n].texts[i], pending[n].roles[i], list(mine))
            except RowReject:
                pass
        return made

    def _measure(self, pending: list[Pending], flacs: list[dict[int, bytes]]) -> list[dict[int, Stored] | RowReject]:
        """Quality of each row's stored turns (decoded from `flacs`): signal checks, then one MOS call for all."""
        if not pending:
            return []
        t0 = time.perf_counter()
        try:
            clips = [(n, i, decode_audio(data)) for n, f in enumerate(flacs) for i, data in sorted(f.items())]
            signals = [signal_checks(samples, sr) for _, _, (samples, sr) in clips]
            mos = self.quality.score([audio for _, _, audio in clips]) if self.quality else [None] * len(clips)
            if len(mos) != len(clips):
                raise RuntimeError(f"{len(mos)} scores for {len(clips)} clips")
        except Exception as e:
            if len(pending) == 1:
                return [pending[0].reject("quality_error", f"{type(e).__name__}: {e}",
                                          keep_audio=self.options.keep_reject_audio)]
            return [r for p, f in zip(pending, flacs) for r in self._measure([p], [f])]
        finally:
            self.timers.quality += time.perf_counter() - t0
        out: list[dict[int, Stored]] = [{} for _ in pending]
        for (n, i, _), sig, m in zip(clips, signals, mos):
            out[n][i] = Stored(flacs[n][i], m, sig)
        return out

    def _quality_reject(self, p: Pending, heard: dict[int, Heard], stored: dict[int, Stored]) -> RowReject | None:
        """`low_quality` / `long_silence` for the first spoken turn that fails a quality filter (if any is set)."""
        lo, most = self.options.min_dnsmos, self.options.max_silence
        for i, s in sorted(stored.items()):
            if lo is not None and s.dnsmos is not None and not s.dnsmos["ovrl"] >= lo:
                scores = ", ".join(f"{k} {v:.3f}" for k, v in s.dnsmos.items())
                return p.reject("low_quality", f"turn {i}: DNSMOS OVRL {s.dnsmos['ovrl']:.3f} < {lo:g} ({scores})",
                                heard, keep_audio=self.options.keep_reject_audio)
            silences = {k: s.signal[k] for k in ("leading_silence", "longest_silence", "trailing_silence")}
            if most is not None and max(silences.values()) > most:
                kind, seconds = max(silences.items(), key=lambda kv: kv[1])
                detail = ", ".join(f"{k.split('_')[0]} {v:.3f} s" for k, v in silences.items())
                return p.reject("long_silence", f"turn {i}: {kind.replace('_', ' ')} {seconds:.3f} s > {most:g} s "
                                f"({detail})", heard, keep_audio=self.options.keep_reject_audio)
        return None

    def _fails(self, heard: Heard) -> bool:
        return heard.failed

    def _judged(self, heard: Heard) -> Heard:
        """The take with the round trip's decision (builders/ear.py) and the stretch it names: with the forced rule,
        a stretch of the text the audio does not support fails it whatever the transcript says (the row records
        the failing stretch, else the least supported one); with the transcript rule, the kana-CER threshold
        decides."""
        rule = self.options.rule
        if rule is not None and heard.forced is not None:
            failed = forced_fails(heard.forced, rule)
            return replace(heard, failed=failed is not None,
                           span=failed or worst_span(heard.forced, rule.window, rule.floor))
        kana = heard.score.kana_cer
        return replace(heard, failed=math.isnan(kana) or kana > self.options.max_kana_cer)

    def _roundtrip_reject(self, p: Pending, heard: dict[int, Heard], failed: dict[int, list[Heard]]) -> RowReject:
        """`roundtrip` for the first failed turn: every take it got, the best first (the least unsupported
        stretch with the forced rule, the best listening's kana-CER with the transcript rule), and the head names
        the best take's best listening, not the last one heard."""
        i, takes = min(failed.items())
        forced = self.options.rule is not None and all(h.span is not None for h in takes)

        def best_listening(h: Heard) -> TurnScore:
            return min([h.score] + ([h.first] if h.first else []), key=lambda s: (math.isnan(s.kana_cer), s.kana_cer))

        ranked = sorted(takes, key=lambda h: (h.span.deficit if forced else best_listening(h).kana_cer, h.take))
        best = ranked[0]
        if forced:
            head = (f"turn {i}: the audio does not say \u300c{best.span.text}\u300d ({best.span.deficit:.2f} nats per "
                    f"piece below the ear's own transcript at {best.span.start:.2f}-{best.span.end:.2f} s, limit "
                    f"{self.options.rule.max_deficit:g})")
        else:
            head = f"turn {i}: kana_cer {best_listening(best).kana_cer:.3f} > {self.options.max_kana_cer:g}"
        details = []
        for h in ranked:
            first = f", first listening kana_cer {h.first.kana_cer:.3f} heard {h.first.transcript!r}" if h.first else ""
            last = "second listening " if h.first else ""
            span = f", worst \u300c{h.span.text}\u300d {h.span.deficit:.2f}" if h.span is not None else ""
            details.append(f"take {h.take}: {last}kana_cer {h.score.kana_cer:.3f}{span}, heard {h.score.transcript!r}"
                           f"{first}")
        if best.audio is not None:  # the reject carries the best take's audio, beside what the ear heard of it
            p = replace(p, audios={**p.audios, i: best.audio})
        return p.reject("roundtrip", f"{head}; {len(takes)} take{'s' if len(takes) > 1 else ''}, best first: "
                        + "; ".join(details), {**heard, i: replace(best, audio=None)},
                        keep_audio=self.options.keep_reject_audio)

    def _row(self, p: Pending, heard: dict[int, Heard], stored: dict[int, Stored]) -> dict:
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
                        "original_text": p.originals[i] if p.originals else None,
                        "audio": {"bytes": stored[i].flac, "path": None},
                        "duration": len(samples) / sr,
                        "transcript": s.transcript if s else None,
                        "cer": s.cer if s else None,
                        "kana_cer": s.kana_cer if s else None,
                        "asr_passes": h.passes if h else None,
                        "text_logprob": h.forced.text_logprob if h and h.forced else None,
                        "worst_span": h.span.text if h and h.span else None,
                        "worst_deficit": h.span.deficit if h and h.span else None,
                        "takes": h.take if h else None,
                        "dnsmos": stored[i].dnsmos,
                        "signal": stored[i].signal,
                    }
                )
            else:
                turns.append({"role": role, "text": p.texts[i], "original_text": None, "audio": None,
                              "duration": None, "transcript": None, "cer": None, "kana_cer": None, "asr_passes": None,
                              "text_logprob": None, "worst_span": None, "worst_deficit": None, "takes": None,
                              "dnsmos": None, "signal": None})
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

    def _text_options(self, role: str) -> TextOptions:
        return self.options.response if role == "assistant" else self.options.text

    def _turn_audio(self, turn: int, text: str, role: str, results: list) -> tuple[np.ndarray, int]:
        """A turn's audio from its pieces' results: joined by the short pause a speaker makes between
        sentences, and scored as one turn. Raises RowReject for a failed, empty or overlong turn."""
        for r in results:
            if isinstance(r, Exception):  # a backend failure on one row must not stop the build
                raise RowReject("tts_error", f"turn {turn}: {type(r).__name__}: {r}")
        parts = [np.asarray(samples, dtype=np.float32).reshape(-1) for samples, _ in results]
        sr = results[-1][1]
        if len(parts) > 1:
            gap = np.zeros(int(0.3 * sr), dtype=np.float32)
            parts = [x for part in parts for x in (part, gap)][:-1]
        samples = np.concatenate(parts)
        if samples.size == 0 or not np.all(np.isfinite(samples)) or float(np.max(np.abs(samples))) < 1e-4:
            raise RowReject("tts_empty", f"turn {turn}: TTS returned no usable audio")
        seconds = samples.size / sr
        limit = self._text_options(role).max_seconds
        if seconds > limit:
            kept = reject_audio({turn: text}, {turn: (samples, sr)}) if self.options.keep_reject_audio else None
            raise RowReject("audio_too_long", f"turn {turn}: {seconds:.1f} s > {limit:g} s", audio=kept)
        return samples, sr

    def _score(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[Forced]:
        """The ear's forced scores of `texts` on `audios` (timed apart); RowReject (asr_error) if the call fails."""
        t0 = time.perf_counter()
        try:
            forced = self.asr.score(audios, texts)
        except Exception as e:
            raise RowReject("asr_error", f"forced score: {type(e).__name__}: {e}") from None
        finally:
            seconds = time.perf_counter() - t0
            self.timers.asr += seconds
            self.timers.asr_forced += seconds
        if len(forced) != len(audios):
            raise RowReject("asr_error", f"{len(forced)} forced scores for {len(audios)} clips")
        return list(forced)

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


def make_tts_builder(spec: CorpusSpec, plan: dict, out: Path | None = None) -> RowBuilder:
    """The row builder of the TTS corpora (SFT and DPO): the plan's TTS and ASR backends, loaded once.

    A zero-shot backend's speaker registration is cached in `<out>/cache/`, beside the build (computed by the
    first process of a build, read by every later one)."""
    from jaspeech.synthesis.asr import make_asr
    from jaspeech.synthesis.quality import make_quality
    from jaspeech.synthesis.tts import make_tts

    config = spec.configs[plan["config"]]
    tts = make_tts(plan["tts"], model=plan.get("tts_model"), speakers=plan.get("speakers"),
                   reading=plan.get("tts_reading"), cache_dir=Path(out) / "cache" if out is not None else None)
    if config.speak != "user" and (missing := getattr(tts, "missing_voices", lambda names: [])(
            [p.name for p in ASSISTANT_PROFILES])):  # zero-shot voices need reference clips: fail before any row
        raise FileNotFoundError(
            f"{config.name} speaks responses in the assistant voices, and --speakers {plan.get('speakers')} has no "
            f"reference clip for {', '.join(missing)}: add <voice>.wav (3-10 s) and <voice>.txt (its transcript)")
    return RowBuilder(
        spec,
        config,
        tts,
        make_asr(plan["asr"], plan["asr_model"]),
        SynthesisOptions(plan["max_kana_cer"], TextOptions(max_seconds=plan["max_seconds"]),
                         TextOptions(max_seconds=plan.get("max_response_seconds") or 600.0),
                         keep_reject_audio=bool(plan.get("keep_reject_audio")),
                         min_dnsmos=plan.get("min_dnsmos"), max_silence=plan.get("max_silence"),
                         rule=EarRule() if (plan.get("ear") or "transcript") == "forced" else None,
                         max_takes=int(plan.get("max_takes") or 1),
                         trailing_user=plan.get("trailing_user") or "keep-exchanges"),
        make_quality(plan.get("quality") or "none"),
    )
