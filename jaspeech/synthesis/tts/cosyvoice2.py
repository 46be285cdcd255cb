"""`cosyvoice2`: CosyVoice2 zero-shot TTS on GPU, following upstream FunAudioLLM/CosyVoice.

Upstream API (`cosyvoice/cli/cosyvoice.py`):
    CosyVoice2(model_dir, load_jit=False, load_trt=False, load_vllm=False, fp16=False)
    .sample_rate                                   # 24000 for CosyVoice2-0.5B
    .add_zero_shot_spk(prompt_text, prompt_wav_path, zero_shot_spk_id)
    .inference_zero_shot(tts_text, prompt_text, prompt_wav, zero_shot_spk_id=..., stream=False,
                         speed=1.0, text_frontend=True)  -> yields {"tts_speech": tensor [1, T]}

The 20 reference speakers come from a folder holding `<speaker>.wav` and `<speaker>.txt` (its
transcript) for spk00..spk19; each is registered once. Upstream's text frontend only knows Chinese and
English, so it is switched off (`text_frontend=False`) and we feed our own normalised Japanese: digits
spelled as kanji numerals, one sentence per call. Every yielded chunk is kept (with stream=False the
model may still yield one chunk per internal segment; keeping only the last one loses audio).

Runaway or truncated generations are detected by comparing the audio length with what the text
predicts; such a sentence is regenerated with another seed a bounded number of times, then the row
is rejected. Seeds derive from the row, so reruns reproduce the same audio.
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np

from jaspeech.synthesis.speakers import PROFILES, SpeakerProfile
from jaspeech.synthesis.text import estimate_morae

INSTALL_HINT = (
    "the cosyvoice2 backend needs upstream CosyVoice, which is not on PyPI under its own name (the PyPI "
    "package `cosyvoice` is an unrelated fork). Install it from source: git clone --recursive "
    "https://github.com/FunAudioLLM/CosyVoice && pip install -r CosyVoice/requirements.txt && "
    "export PYTHONPATH=$PWD/CosyVoice:$PWD/CosyVoice/third_party/Matcha-TTS:$PYTHONPATH"
)

_DIGITS = "〇一二三四五六七八九"
_UNITS = [(10**12, "兆"), (10**8, "億"), (10**4, "万")]
_SMALL = [(1000, "千"), (100, "百"), (10, "十")]


def _below_10000(n: int) -> str:
    out = ""
    for value, name in _SMALL:
        q, n = divmod(n, value)
        if q:
            out += ("" if q == 1 else _DIGITS[q]) + name
    return out + (_DIGITS[n] if n else "")


def kanji_number(n: int) -> str:
    """2024 -> 二千二十四, 10000 -> 一万: how Japanese reads integers, for a TTS that reads digits in Chinese."""
    if n == 0:
        return "零"
    out = ""
    for value, name in _UNITS:
        q, n = divmod(n, value)
        if q:
            out += _below_10000(q) + name
    return out + _below_10000(n)


def _number(match: re.Match) -> str:
    whole, frac = match.group(1).replace(",", ""), match.group(2)
    text = kanji_number(int(whole)) if len(whole) <= 16 else "".join(_DIGITS[int(d)] for d in whole)
    if frac:
        text += "点" + "".join(_DIGITS[int(d)] for d in frac)
    return text


def normalize_japanese(text: str) -> str:
    """Spell numbers as kanji numerals (the model would otherwise read digits in Chinese)."""
    text = re.sub(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?", _number, text)
    return text.replace("%", "パーセント")


def split_sentences(text: str, max_chars: int = 80) -> list[str]:
    """Sentences on 。！？; overlong ones further on 、 so each call stays short and stable."""
    out: list[str] = []
    for sentence in (s for s in re.split(r"(?<=[。！？!?])", text) if s.strip()):
        if len(sentence) <= max_chars:
            out.append(sentence)
            continue
        piece = ""
        for clause in re.split(r"(?<=[、,])", sentence):
            if piece and len(piece) + len(clause) > max_chars:
                out.append(piece)
                piece = ""
            piece += clause
        if piece:
            out.append(piece)
    return out


def plausible_seconds(text: str) -> tuple[float, float]:
    """The range of durations a sentence may have; outside it, the generation ran away or stopped early."""
    expected = estimate_morae(text) / 8.0  # ~8 morae/s for read Japanese
    return max(0.25, 0.35 * expected), 2.5 * expected + 1.0


def _import_cosyvoice2():
    try:
        from cosyvoice.cli.cosyvoice import CosyVoice2
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return CosyVoice2


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except ImportError:  # pragma: no cover - upstream always has torch
        pass


def _to_numpy(chunk) -> np.ndarray:
    if hasattr(chunk, "detach"):
        chunk = chunk.detach().float().cpu().numpy()
    return np.asarray(chunk, dtype=np.float32).reshape(-1)


class CosyVoice2TTS:
    reads_with_openjtalk = False

    def __init__(self, model_dir: str, speakers_dir: str, fp16: bool = True, load_jit: bool = False,
                 load_trt: bool = False, load_vllm: bool = False, max_retries: int = 2,
                 sentence_pause: float = 0.25) -> None:
        speakers = Path(speakers_dir)
        missing = [f"{p.name}{suffix}" for p in PROFILES for suffix in (".wav", ".txt")
                   if not (speakers / f"{p.name}{suffix}").exists()]
        if missing:
            raise FileNotFoundError(
                f"speakers folder {speakers} lacks {', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}: "
                "it needs <speaker>.wav (a 3-10 s reference clip) and <speaker>.txt (its transcript) "
                f"for {PROFILES[0].name}..{PROFILES[-1].name}"
            )
        CosyVoice2 = _import_cosyvoice2()
        self.model = CosyVoice2(model_dir, load_jit=load_jit, load_trt=load_trt, load_vllm=load_vllm, fp16=fp16)
        self.sample_rate = int(self.model.sample_rate)
        self.name = f"CosyVoice2 ({Path(model_dir).name})"
        for p in PROFILES:
            prompt_text = (speakers / f"{p.name}.txt").read_text(encoding="utf-8").strip()
            self.model.add_zero_shot_spk(prompt_text, str(speakers / f"{p.name}.wav"), p.name)
        self.max_retries = max_retries
        self._pause = np.zeros(int(sentence_pause * self.sample_rate), np.float32)

    def _generate(self, sentence: str, speaker: str) -> np.ndarray:
        chunks = [
            _to_numpy(out["tts_speech"])
            for out in self.model.inference_zero_shot(
                sentence, "", "", zero_shot_spk_id=speaker, stream=False, text_frontend=False
            )
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> tuple[np.ndarray, int]:
        pieces: list[np.ndarray] = []
        for k, sentence in enumerate(split_sentences(normalize_japanese(text))):
            low, high = plausible_seconds(sentence)
            for attempt in range(self.max_retries + 1):
                _seed_everything(seed + 7919 * k + 104729 * attempt)
                audio = self._generate(sentence, speaker.name)
                seconds = audio.size / self.sample_rate
                if low <= seconds <= high:
                    break
            else:
                raise RuntimeError(
                    f"sentence {k}: {seconds:.2f} s is outside the plausible {low:.2f}-{high:.2f} s "
                    f"after {self.max_retries + 1} tries (runaway or truncated generation)"
                )
            pieces += [audio, self._pause]
        audio = np.concatenate(pieces[:-1]) if pieces else np.zeros(0, np.float32)
        return audio, self.sample_rate
