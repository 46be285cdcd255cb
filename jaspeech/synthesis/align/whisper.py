"""Teacher-forced Whisper alignment through CTranslate2 (`WhisperModel.model.align`), the default aligner.

Whisper's cross-attention, read through dynamic time warping, says when each token of a KNOWN text is spoken
(the same pass faster-whisper uses for its word timestamps). Here the text is the one the TTS spoke, so nothing
is decoded. One clip is one synthesised sentence, at most one 30 s window. Token times are 20 ms frames
(50 per second). Byte-level tokens that split a character are merged, so every token piece is whole text.
"""
from __future__ import annotations

import numpy as np

from jaspeech.synthesis.align import AlignError, Forced
from jaspeech.synthesis.audio import resample

WHISPER_SR = 16000
TOKENS_PER_SECOND = 50


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted: a BPE token's characters back to its bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class WhisperAligner:
    def __init__(self, model: str | None = None, compute_type: str = "int8") -> None:
        import os

        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        from jaspeech.synthesis.asr.faster_whisper import whisper_base_dir

        path = model or str(whisper_base_dir())
        self.name = "openai/whisper-base (CTranslate2 align)" if model is None else f"{model} (CTranslate2 align)"
        threads = int(os.environ.get("JASPEECH_ASR_THREADS", "0")) or (os.cpu_count() or 1)
        self._model = WhisperModel(path, device="auto", compute_type=compute_type, cpu_threads=threads)
        self._tokenizer = Tokenizer(self._model.hf_tokenizer, self._model.model.is_multilingual,
                                    task="transcribe", language="ja")
        self._bytes = _byte_decoder()

    def score(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[Forced]:
        return [self._one(x, sr, text) for (x, sr), text in zip(audios, texts)]

    def _token_bytes(self, token: int) -> bytes:
        return bytes(self._bytes[c] for c in self._model.hf_tokenizer.id_to_token(token))

    def _one(self, x: np.ndarray, sr: int, text: str) -> Forced:
        from faster_whisper.audio import pad_or_trim

        audio = resample(np.asarray(x, dtype=np.float32), sr, WHISPER_SR)
        if audio.size > 30 * WHISPER_SR:
            raise AlignError(f"a sentence of {audio.size / WHISPER_SR:.1f} s is longer than Whisper's 30 s window")
        tokens = self._tokenizer.encode(text)
        if not tokens:
            raise AlignError(f"no tokens for {text!r}")
        features = self._model.feature_extractor(audio)[:, :-1]
        encoded = self._model.encode(pad_or_trim(features))
        result = self._model.model.align(encoded, self._tokenizer.sot_sequence, [tokens], features.shape[-1],
                                         median_filter_width=7)[0]
        text_idx = np.array([p[0] for p in result.alignments])
        time_idx = np.array([p[1] for p in result.alignments])
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        times = time_idx[jumps] / TOKENS_PER_SECOND  # the start of each token, then of the end-of-text token
        if times.size < len(tokens) + 1:
            raise AlignError(f"{times.size} token times for {len(tokens)} tokens")
        probs = list(result.text_token_probs)
        pieces, logprobs, starts, ends, buf, first = [], [], [], [], b"", None
        for k, tok in enumerate(tokens):  # merge tokens until their bytes make whole characters
            buf += self._token_bytes(tok)
            first = k if first is None else first
            try:
                piece = buf.decode("utf-8")
            except UnicodeDecodeError:
                continue
            pieces.append(piece)
            logprobs.append(float(np.sum(np.log(np.maximum(probs[first : k + 1], 1e-12)))))
            starts.append(float(times[first]))
            ends.append(float(times[k + 1]))
            buf, first = b"", None
        if buf or "".join(pieces) != text:
            raise AlignError(f"the tokens spell {''.join(pieces)!r}, not {text!r}")
        return Forced(pieces, logprobs, starts, ends)
