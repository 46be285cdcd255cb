"""`cosyvoice2`: CosyVoice2 zero-shot TTS on GPU, driving upstream FunAudioLLM/CosyVoice's own classes.

Upstream API (`cosyvoice/cli/cosyvoice.py`):
    CosyVoice2(model_dir, load_jit=False, load_trt=False, load_vllm=False, fp16=False)
    .sample_rate                                   # 24000 for CosyVoice2-0.5B
    .add_zero_shot_spk(prompt_text, PROMPT, zero_shot_spk_id)
    .inference_zero_shot(tts_text, prompt_text, PROMPT, zero_shot_spk_id=..., stream=False,
                         speed=1.0, text_frontend=True)  -> yields {"tts_speech": tensor [1, T]}

PROMPT changed upstream on 2025-12-08 (commit 622a3a1, "use wav file rather than tensor"): before, it
is the reference clip as a 16 kHz [1, T] tensor (`prompt_speech_16k`); after, a wav path
(`prompt_wav`). The version jaspeech[cosyvoice] installs (upstream 6385656, 2025-06-24, carried by the
PyPI wheel cosyvoice2-fr-infer 0.1.5) takes the tensor, so the backend reads the parameter name and
passes what the installed version expects. That wheel's CosyVoice2 also loads `llm-original.pt` etc.
unless `final=True`, which loads upstream's `llm.pt`, `flow.pt`, `hift.pt`; it is passed when accepted.

The 20 reference speakers come from a folder holding `<speaker>.wav` and `<speaker>.txt` (its
transcript) for spk00..spk19; each is registered once. Upstream's text frontend only knows Chinese and
English, so it is switched off (`text_frontend=False`) and we feed our own normalised Japanese: digits
spelled as kanji numerals, one sentence per call (by default the OpenJTalk kana reading of it, see
jaspeech/synthesis/reading.py). Every yielded chunk is kept (with stream=False the model may still yield
one chunk per internal segment; keeping only the last one loses audio).

Runaway or truncated generations are detected by comparing the audio length with what the text
predicts; such a sentence is regenerated with another seed a bounded number of times, then the row
is rejected. Seeds derive from the row, so reruns reproduce the same audio.
"""
from __future__ import annotations

import inspect
import random
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from jaspeech.synthesis.speakers import ASSISTANT_PROFILES, PROFILES, SpeakerProfile
from jaspeech.synthesis.text import estimate_morae

UPSTREAM_WHEEL = "cosyvoice2-fr-infer==0.1.5"
INSTALL_HINT = (
    "the cosyvoice2 backend needs upstream CosyVoice, which is not on PyPI under its own name. Install "
    f"`pip install 'jaspeech[cosyvoice]'` and then `pip install --no-deps {UPSTREAM_WHEEL}` (an Apache-2.0 "
    "wheel carrying upstream's cosyvoice/ and matcha/ packages; --no-deps because it declares pins such "
    "as transformers==4.40.1, numpy==1.26 and deepspeed that jaspeech neither needs nor can install "
    "beside its own)"
)
MAX_PROMPT_SECONDS = 30.0  # upstream's speech tokenizer refuses longer prompts

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
        raise ImportError(f"{INSTALL_HINT} (importing it failed with: {e})") from e
    return CosyVoice2


def load_upstream(model_dir: str, fp16: bool, load_jit: bool, load_trt: bool, load_vllm: bool):
    """Upstream's CosyVoice2 on a local folder (never a hub id: upstream would try to download it)."""
    folder = Path(model_dir)
    if not (folder / "cosyvoice2.yaml").is_file():
        raise FileNotFoundError(
            f"--tts-model {model_dir} is not a CosyVoice2 folder (no cosyvoice2.yaml): download "
            "FunAudioLLM/CosyVoice2-0.5B to a local folder first and pass its path"
        )
    CosyVoice2 = _import_cosyvoice2()
    kwargs = dict(load_jit=load_jit, load_trt=load_trt, load_vllm=load_vllm, fp16=fp16)
    if "final" in inspect.signature(CosyVoice2.__init__).parameters:
        kwargs["final"] = True  # cosyvoice2-fr-infer: load llm.pt/flow.pt/hift.pt, as upstream does
    return CosyVoice2(str(folder), **kwargs)


def load_prompt_16k(path: Path):
    """A reference clip as upstream's older API wants it: mono float32 torch tensor [1, T] at 16 kHz."""
    import torch

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise ValueError(f"cannot read reference clip {path}: {e}; it must be a wav file") from e
    audio = audio.mean(axis=1)
    if not audio.size or not np.any(audio):
        raise ValueError(f"reference clip {path} is empty or silent; use a 3-10 s recording of its .txt")
    if audio.size / sr > MAX_PROMPT_SECONDS:
        raise ValueError(f"reference clip {path} lasts {audio.size / sr:.1f} s; upstream takes at most "
                         f"{MAX_PROMPT_SECONDS:.0f} s (3-10 s is best)")
    if sr != 16000:
        audio = soxr.resample(audio, sr, 16000)
    return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]


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


def _voice_hint(speakers: Path, names: list[str]) -> str:
    return (f"speakers folder {speakers} has no reference clip for {', '.join(names)}: add <voice>.wav (a 3-10 s "
            "clip) and <voice>.txt (its transcript) for each; speech-to-speech configs (--speak assistant|both) "
            f"speak responses in the assistant voices {', '.join(p.name for p in ASSISTANT_PROFILES)}")


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
        self.model = load_upstream(model_dir, fp16=fp16, load_jit=load_jit, load_trt=load_trt, load_vllm=load_vllm)
        self.sample_rate = int(self.model.sample_rate)
        self.name = f"CosyVoice2 ({Path(model_dir).name})"
        self.speakers_dir = speakers
        takes_path = list(inspect.signature(self.model.add_zero_shot_spk).parameters)[1] == "prompt_wav"
        # the assistant voices of speech-to-speech configs are optional: registered where their clips exist
        assistants = [p for p in ASSISTANT_PROFILES
                      if (speakers / f"{p.name}.wav").exists() and (speakers / f"{p.name}.txt").exists()]
        self.voices = {p.name for p in PROFILES} | {p.name for p in assistants}
        for p in (*PROFILES, *assistants):
            prompt_text = (speakers / f"{p.name}.txt").read_text(encoding="utf-8").strip()
            if not prompt_text:
                raise ValueError(f"{speakers / p.name}.txt is empty: it must hold the transcript of {p.name}.wav")
            wav = speakers / f"{p.name}.wav"
            prompt = load_prompt_16k(wav)  # read (and checked) even when upstream reads the file itself
            self.model.add_zero_shot_spk(prompt_text, str(wav) if takes_path else prompt, p.name)
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

    def missing_voices(self, names) -> list[str]:
        """Which of `names` have no registered reference clip (the row builder checks before building)."""
        return [n for n in names if n not in self.voices]

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> tuple[np.ndarray, int]:
        if speaker.name not in self.voices:
            raise FileNotFoundError(_voice_hint(self.speakers_dir, [speaker.name]))
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
