"""`cosyvoice2-upstream`: CosyVoice2 zero-shot TTS driving upstream FunAudioLLM/CosyVoice's own inference API.

Kept beside our batched runtime (`--tts cosyvoice2`, cosyvoice2_runtime/) for comparison: one sentence at a
time, as upstream's API runs it, 0.73 GPU-hours per audio-hour on an H200 (benchmarks/gpu_cost.py).

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
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from jaspeech.synthesis.speakers import SpeakerProfile
from jaspeech.synthesis.tts.zero_shot import (  # noqa: F401  (kanji_number, normalize_japanese: used by tests)
    MAX_PROMPT_SECONDS, kanji_number, normalize_japanese, plausible_seconds, reference_voices, split_sentences,
    voice_hint)

UPSTREAM_WHEEL = "cosyvoice2-fr-infer==0.1.5"
INSTALL_HINT = (
    "the cosyvoice2-upstream backend needs upstream CosyVoice, which is not on PyPI under its own name. Install "
    f"`pip install 'jaspeech[cosyvoice-upstream]'` and then `pip install --no-deps {UPSTREAM_WHEEL}` (an Apache-2.0 "
    "wheel carrying upstream's cosyvoice/ and matcha/ packages; --no-deps because it declares pins such "
    "as transformers==4.40.1, numpy==1.26 and deepspeed that jaspeech neither needs nor can install "
    "beside its own). The batched runtime, --tts cosyvoice2, needs none of it: `pip install 'jaspeech[cosyvoice]'`"
)

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


def attend_to_the_whole_cache(encoder) -> None:
    """Make upstream's decode steps see every cached position under transformers >= 4.53.

    Upstream's `Qwen2Encoder.forward_one_step` passes an attention mask as long as the new input only (1 at
    every decode step). transformers 4.51, upstream's pin, ignored an all-ones mask; from the masking rewrite
    on (seen in 5.x), the short mask is padded with False to the cache length, so each step after the prompt
    attends to the first position alone and the speech tokens come out of a model that hears nothing. A mask
    of ones over cache + input is what 4.51 computed, in every version (tests/synthesis/cosyvoice2_runtime/
    test_llm.py shows the difference on the tiny model).
    """
    import torch

    step = encoder.forward_one_step

    def forward_one_step(xs, masks, cache=None):
        seen = (cache.get_seq_length() if cache is not None else 0) + xs.shape[1]
        return step(xs, torch.ones(1, 1, seen, dtype=torch.bool, device=xs.device), cache)

    encoder.forward_one_step = forward_one_step


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


class CosyVoice2TTS:
    reads_with_openjtalk = False

    def __init__(self, model_dir: str, speakers_dir: str, fp16: bool = True, load_jit: bool = False,
                 load_trt: bool = False, load_vllm: bool = False, max_retries: int = 2,
                 sentence_pause: float = 0.25) -> None:
        speakers = Path(speakers_dir)
        voices = reference_voices(speakers)
        self.model = load_upstream(model_dir, fp16=fp16, load_jit=load_jit, load_trt=load_trt, load_vllm=load_vllm)
        encoder = getattr(getattr(getattr(self.model, "model", None), "llm", None), "llm", None)
        if hasattr(encoder, "forward_one_step"):  # upstream's Qwen2Encoder (not a vLLM engine)
            attend_to_the_whole_cache(encoder)
        self.sample_rate = int(self.model.sample_rate)
        self.name = f"CosyVoice2 ({Path(model_dir).name})"
        self.speakers_dir = speakers
        takes_path = list(inspect.signature(self.model.add_zero_shot_spk).parameters)[1] == "prompt_wav"
        self.voices = {p.name for p in voices}
        for p in voices:
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
            raise FileNotFoundError(voice_hint(self.speakers_dir, [speaker.name]))
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
