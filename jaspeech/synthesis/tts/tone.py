"""`tone`: a trivial synthetic backend (one short tone per character) for scale benchmarks and tests.

It produces no speech; use it only with `--asr none`.
"""
from __future__ import annotations

import numpy as np

from jaspeech.synthesis.speakers import SpeakerProfile, stable_hash


class ToneTTS:
    name = "tone-per-character (synthetic, benchmarks only)"

    def __init__(self, sample_rate: int = 16000, seconds_per_char: float = 0.05) -> None:
        self.sample_rate = sample_rate
        self._n = int(sample_rate * seconds_per_char)
        self._t = np.arange(self._n, dtype=np.float32) / sample_rate

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> tuple[np.ndarray, int]:
        number = int("".join(c for c in speaker.name if c.isdigit()))
        base = 120.0 + 10.0 * (number if speaker.name.startswith("spk") else 20 + number)  # asstNN above spkNN
        pieces = [
            0.3 * np.sin(2 * np.pi * (base + (stable_hash(str(seed), c) % 400)) * self._t) for c in text
        ]
        audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return audio.astype(np.float32), self.sample_rate
