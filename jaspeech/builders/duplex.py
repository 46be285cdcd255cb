"""Full-duplex configs (`<config>-duplex`, `build spoken --duplex`): one stereo recording per dialogue.

Every turn is spoken (the assistant in its voice on channel 0, the user in theirs on channel 1), synthesised
sentence by sentence as in the speech-to-speech configs; the timeline (`synthesis/duplex/timeline.py`) places the
turns with drawn gaps and overlaps and adds backchannels in the listener's voice at the speaker's pauses; the
mix writes them on their channels. Each turn and backchannel is heard and scored as one clip, exactly as a
spoken turn of the other configs (the RowBuilder's round trip and quality stage): a turn the ear does not hear
rejects the dialogue, a backchannel it does not hear is dropped. Every word gets its time from the aligner,
sentence by sentence. Then the checks (`synthesis/duplex/mix.py`): a row that fails one is rejected, never fixed.

The row's content depends only on the row: voices, synthesis seeds, gaps and backchannels are seeded by
(source dataset, source id).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jaspeech.builders.corpus import CorpusSpec, SourceConfig
from jaspeech.builders.pipeline import Pending, Planned, RowBuilder, make_tts_builder
from jaspeech.builders.schema import RowReject, prepare_each
from jaspeech.synthesis.align import AlignError, Word, word_times
from jaspeech.synthesis.audio import encode_flac, resample
from jaspeech.synthesis.batch import SynthesisItem, synthesize_batch
from jaspeech.synthesis.duplex.mix import clipping_problems, isolation_problems, mix, span_problems, trim_silence
from jaspeech.synthesis.duplex.timeline import (CHANNELS, Segment, Slot, TimingOptions, Turn, backchannel_slots,
                                                duration_of, plan_timeline)
from jaspeech.synthesis.speakers import assign_assistant_voice, assign_speaker, stable_hash

# plan fields -> TimingOptions fields (the `--duplex-*` flags)
TIMING_FIELDS = {"duplex_gap_mean": "gap_mean", "duplex_gap_sd": "gap_sd", "duplex_pause_rate": "pause_rate",
                 "duplex_max_overlap": "max_overlap", "duplex_backchannel_rate": "backchannel_rate"}


def timing_of(plan: dict) -> TimingOptions:
    """The timeline's options from a plan; a field the plan lacks keeps its documented default."""
    return TimingOptions(**{f: plan[k] for k, f in TIMING_FIELDS.items() if plan.get(k) is not None})


@dataclass
class DuplexPending:
    """A dialogue after synthesis, alignment and timeline, waiting for the ear and the mix."""

    turns: Pending  # every turn, its sentences joined as the other configs join them: what the ear hears
    pieces: dict[int, list[np.ndarray]]  # turn -> its sentence pieces' samples (at `sr`)
    words: dict[int, list[list[Word]]]  # turn -> per piece, its words on the piece's clock
    backchannels: dict[int, tuple[np.ndarray, list[Word]]]  # slot index -> samples and words
    slots: list[Slot]
    segments: list[Segment]
    sr: int

    @property
    def position(self) -> int:
        return self.turns.position

    @property
    def source_id(self) -> str:
        return self.turns.source_id


class DuplexBuilder:
    """prepare_group: plan, TTS, alignment, timeline; finish: the ear and quality (RowBuilder.finish), the mix,
    the checks, the row."""

    def __init__(self, inner: RowBuilder, aligner, align_model: str, timing: TimingOptions = TimingOptions()) -> None:
        self.inner, self.aligner, self.align_model, self.timing = inner, aligner, align_model, timing
        self.timers = inner.timers
        self.manifest_fields = inner.manifest_fields
        self.hub_id = inner.config.hub_id

    # -- before the ear ---------------------------------------------------------------------------------------
    def prepare_group(self, rows: list[tuple[int, object, str]]) -> list[DuplexPending | RowReject]:
        """Every row of the group planned, spoken, timed and placed; an unexpected error makes each row go alone,
        so only the row that trips it is lost (`internal_error`), never its group."""
        try:
            return self._prepare_group(rows)
        except Exception as e:
            if len(rows) > 1:
                return [r for row in rows for r in self.prepare_group([row])]
            [(position, _, source_id)] = rows
            return [RowReject("internal_error", f"{type(e).__name__}: {e}", position, source_id)]

    def _prepare_group(self, rows: list[tuple[int, object, str]]) -> list[DuplexPending | RowReject]:
        planned = prepare_each(self.inner.plan, rows)
        ready = [p for p in planned if isinstance(p, Planned)]
        spoken = self._speak_turns(ready)
        slots = {n: self._slots(p) for n, p in enumerate(spoken) if not isinstance(p, RowReject)}
        voiced = self._speak_backchannels(ready, spoken, slots)
        done = iter(voiced)
        return [next(done) if isinstance(p, Planned) else p for p in planned]

    def _speak_turns(self, planned: list[Planned]) -> list[DuplexPending | RowReject]:
        """One TTS call for every sentence of every row; each row's turns checked and aligned sentence by sentence."""
        pieces = [p.pieces(self.hub_id, max_chars=1) for p in planned]  # one piece per sentence: its pauses
        t0 = time.perf_counter()
        try:
            results = synthesize_batch(self.inner.tts, [item for row in pieces for _, item in row])
        except Exception as e:
            if len(planned) > 1:
                return [r for p in planned for r in self._speak_turns([p])]
            results = [e] * len(pieces[0]) if pieces else []
        finally:
            self.timers.tts += time.perf_counter() - t0
        out: list[DuplexPending | RowReject] = []
        start = 0
        for p, row in zip(planned, pieces):
            mine = [(turn, audio) for (turn, _), audio in zip(row, results[start : start + len(row)])]
            start += len(row)
            joined = self.inner._assemble(p, mine)  # the checks of every spoken turn: tts_error, tts_empty, too long
            if isinstance(joined, RowReject):
                out.append(joined)
                continue
            try:
                out.append(self._align_turns(p, joined, row, mine))
            except RowReject as e:
                e.position, e.source_id = p.position, p.source_id
                out.append(e)
        return out

    def _align_turns(self, p: Planned, joined: Pending, row: list, mine: list) -> DuplexPending:
        sr = max(r[1] for _, r in mine)
        by_turn: dict[int, list[np.ndarray]] = {}
        texts: dict[int, list[str]] = {}
        for (turn, item), (_, (samples, rate)) in zip(row, mine):
            x = trim_silence(resample(np.asarray(samples, dtype=np.float32).reshape(-1), rate, sr), sr)
            by_turn.setdefault(turn, []).append(x)
            texts.setdefault(turn, []).append(item.text)
        flat = [(turn, k) for turn in sorted(by_turn) for k in range(len(by_turn[turn]))]
        words = self._align([(by_turn[t][k], sr) for t, k in flat], [texts[t][k] for t, k in flat])
        if isinstance(words, RowReject):
            raise words
        per_turn: dict[int, list[list[Word]]] = {}
        for (turn, _), w in zip(flat, words):
            per_turn.setdefault(turn, []).append(w)
        return DuplexPending(joined, by_turn, per_turn, {}, [], [], sr)

    def _align(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[list[Word]] | RowReject:
        t0 = time.perf_counter()
        try:
            forced = self.aligner.score(audios, texts)
            if len(forced) != len(audios):
                raise AlignError(f"{len(forced)} alignments for {len(audios)} clips")
            return [word_times(text, f, len(x) / sr) for (x, sr), text, f in zip(audios, texts, forced)]
        except AlignError as e:
            return RowReject("align_error", str(e))
        except Exception as e:
            return RowReject("align_error", f"{type(e).__name__}: {e}")
        finally:
            self.timers.asr += time.perf_counter() - t0

    def _turn_plans(self, d: DuplexPending) -> list[Turn]:
        out = []
        for i in sorted(d.pieces):
            role = d.turns.roles[i]
            last = d.words[i][-1]
            tail = (last[-1].end - last[-1].start) if last else 0.0
            out.append(Turn(i, role, CHANNELS[role], d.turns.texts[i], tuple(len(x) / d.sr for x in d.pieces[i]), tail))
        return out

    def _slots(self, d: DuplexPending) -> list[Slot]:
        seed = stable_hash("duplex-backchannels", self.hub_id, d.source_id) % (2**32)
        return backchannel_slots(self._turn_plans(d), self.timing, seed)

    def _voice(self, p: Planned, role: str):
        for i, v in p.voices.items():
            if p.roles[i] == role:
                return v
        return assign_speaker(self.hub_id, p.source_id) if role == "user" else \
            assign_assistant_voice(self.hub_id, p.source_id)

    def _speak_backchannels(self, planned: list[Planned], spoken: list, slots: dict[int, list[Slot]]) -> list:
        """One TTS call for every backchannel of the group; a backchannel whose synthesis or alignment fails is
        dropped (its slot gets no audio), never its dialogue. Then each row's timeline."""
        items, owners = [], []
        for n, row_slots in slots.items():
            roles = spoken[n].turns.roles
            for k, s in enumerate(row_slots):
                listener = "assistant" if roles[s.turn] == "user" else "user"
                seed = stable_hash("backchannel", self.hub_id, spoken[n].source_id, str(k)) % (2**31)
                items.append(SynthesisItem(s.text, self._voice(planned[n], listener), seed))
                owners.append((n, k))
        t0 = time.perf_counter()
        try:
            results = synthesize_batch(self.inner.tts, items)
        except Exception as e:
            results = [e] * len(items)
        finally:
            self.timers.tts += time.perf_counter() - t0
        for (n, k), r in zip(owners, results):
            d = spoken[n]
            if isinstance(r, Exception):
                continue
            x = trim_silence(resample(np.asarray(r[0], dtype=np.float32).reshape(-1), r[1], d.sr), d.sr)
            if x.size == 0 or not np.all(np.isfinite(x)) or float(np.max(np.abs(x))) < 1e-4:
                continue
            words = self._align([(x, d.sr)], [slots[n][k].text])
            if not isinstance(words, RowReject):
                d.backchannels[k] = (x, words[0])
        for n, row_slots in slots.items():
            d = spoken[n]
            d.slots = [dataclasses.replace(s, duration=len(d.backchannels[k][0]) / d.sr if k in d.backchannels else 0)
                       for k, s in enumerate(row_slots)]
            seed = stable_hash("duplex-gaps", self.hub_id, d.source_id) % (2**32)
            d.segments = plan_timeline(self._turn_plans(d), d.slots, self.timing, seed)
        return spoken

    # -- the ear, the mix, the checks ---------------------------------------------------------------------------
    def finish(self, pending: list[DuplexPending]) -> list[dict | RowReject]:
        """The RowBuilder's round trip and quality stage for every turn and backchannel of the group in one call
        (each backchannel as a one-clip row of its own, so a failed one drops only itself); then each row."""
        clips: list[Pending] = []
        owners: list[tuple[int, int]] = []  # (row, -1 for the turns | backchannel segment's slot)
        for n, d in enumerate(pending):
            clips.append(d.turns)
            owners.append((n, -1))
            for seg in d.segments:
                if seg.kind == "backchannel":
                    p = d.turns
                    clips.append(Pending(p.position, p.source_id, [seg.role], [seg.text],
                                         {0: (d.backchannels[seg.index][0], d.sr)}, p.speaker, p.extra))
                    owners.append((n, seg.index))
        heard = self.inner.finish(clips)
        turns: dict[int, dict | RowReject] = {}
        backchannels: dict[int, dict[int, dict]] = {n: {} for n in range(len(pending))}
        for (n, k), result in zip(owners, heard):
            if k < 0:
                turns[n] = result
            elif not isinstance(result, RowReject):
                backchannels[n][k] = result["turns"][0]
        out: list[dict | RowReject] = []
        for n, d in enumerate(pending):
            if isinstance(turns[n], RowReject):
                out.append(turns[n])
                continue
            try:
                out.append(self._row(d, turns[n], backchannels[n]))
            except RowReject as e:
                e.position, e.source_id = d.position, d.source_id
                out.append(e)
            except Exception as e:
                out.append(RowReject("internal_error", f"{type(e).__name__}: {e}", d.position, d.source_id))
        return out

    def _row(self, d: DuplexPending, turns_row: dict, heard_bc: dict[int, dict]) -> dict:
        segments = [s for s in d.segments if s.kind == "turn" or s.index in heard_bc]
        audios = [d.pieces[s.index] if s.kind == "turn" else [d.backchannels[s.index][0]] for s in segments]
        duration = duration_of(segments, self.timing)
        stereo = mix(segments, audios, d.sr, duration)
        words = []
        for m, s in enumerate(segments):
            per_piece = d.words[s.index] if s.kind == "turn" else [d.backchannels[s.index][1]]
            for start, piece_words in zip(s.starts, per_piece):
                words += [{"role": s.role, "channel": s.channel, "segment": m, "word": w.text,
                           "start": round(start + w.start, 3), "end": round(start + w.end, 3)} for w in piece_words]
        if problems := isolation_problems(stereo, d.sr, segments):
            raise RowReject("duplex_leak", _listed(problems))
        if problems := clipping_problems(stereo):
            raise RowReject("duplex_clipping", _listed(problems))
        if problems := span_problems(stereo, d.sr, segments, words):
            raise RowReject("duplex_span", _listed(problems))
        rows = []
        for s in segments:
            heard = turns_row["turns"][s.index] if s.kind == "turn" else heard_bc[s.index]
            rows.append({"kind": s.kind, "role": s.role, "channel": s.channel,
                         "turn": s.index if s.kind == "turn" else s.turn, "text": heard["text"],
                         "start": round(s.start, 3), "end": round(s.end, 3),
                         "gap": None if s.gap is None else round(s.gap, 3),
                         **{k: heard[k] for k in ("transcript", "cer", "kana_cer", "asr_passes", "dnsmos", "signal")}})
        extra = {k: v for k, v in d.turns.extra.items() if k != "assistant_speaker"}
        return {
            "id": turns_row["id"],
            "source_dataset": turns_row["source_dataset"],
            "source_id": d.source_id,
            "source_index": d.position,
            "speaker": d.turns.speaker,
            "assistant_speaker": d.turns.extra.get("assistant_speaker"),
            "audio": {"bytes": encode_flac(stereo, d.sr), "path": None},
            "duration": round(duration, 3),
            "tts_model": turns_row["tts_model"],
            "asr_model": turns_row["asr_model"],
            "align_model": self.align_model,
            "turns": [{"role": r, "text": t} for r, t in zip(d.turns.roles, d.turns.texts)],
            "segments": rows,
            "words": words,
            **extra,
        }


def _listed(problems: list[str]) -> str:
    return "; ".join(problems[:3]) + (f" (+{len(problems) - 3} more)" if len(problems) > 3 else "")


def make_aligner(asr):
    """(aligner, its name for the rows' `align_model`): the ear's own teacher-forced pass (`score`) where it has
    one; Whisper base through faster-whisper for an ear without it; with --asr none, the even split of each
    sentence's voiced frames."""
    if asr is None:
        from jaspeech.synthesis.align import EvenAligner

        return EvenAligner(), EvenAligner.name
    if not hasattr(asr, "score"):
        from jaspeech.synthesis.asr import make_asr

        asr = make_asr("faster-whisper")
    return asr, f"{asr.name}: forced alignment"


def make_builder(spec: CorpusSpec, plan: dict, out: Path | None = None) -> DuplexBuilder:
    """The duplex builder around the TTS corpora's row builder (every turn spoken, as speech-to-speech)."""
    config: SourceConfig = spec.configs[plan["config"]]
    both = dataclasses.replace(spec, configs={**spec.configs, config.name: dataclasses.replace(config, speak="both")})
    inner = make_tts_builder(both, plan, out)
    # one take per turn: the timeline, the words and the mix are made from the first take's sentences, which a
    # retake (another pace) would no longer match; a turn the ear rejects rejects its dialogue, as before retakes
    inner.options = dataclasses.replace(inner.options, max_takes=1)
    aligner, name = make_aligner(inner.asr)
    return DuplexBuilder(inner, aligner, name, timing_of(plan))


def make_speech_builder(spec: CorpusSpec, plan: dict, out: Path | None = None):
    """The builder of a config of a TTS corpus with speech variants: the duplex one for `-duplex` configs, else
    the RowBuilder (`pipeline.make_tts_builder`)."""
    if spec.configs[plan["config"]].speak == "duplex":
        return make_builder(spec, plan, out)
    return make_tts_builder(spec, plan, out)
