"""`--tts cosyvoice2`: CosyVoice2 zero-shot TTS as one batched call per group of rows, on our own runtime.

`synthesize_batch(items)` speaks every item of a group together: each item's text is made Japanese-safe
(numbers as kanji numerals) and cut into sentences, exactly as the upstream-API backend does
(`zero_shot.py`), and then every sentence of every item goes through three batched stages:

    LM     llm.py      all sentences decoded together (continuous batching over `max_batch` slots)
    flow   flow.py     sentences sorted by length, cut into batches by a frame budget (graphs.py), right-padded
    HiFT   hift.py     sentences sorted by length, batched by a frame budget, right-padded and re-masked,
                       each row with its own generator; one copy to the host per batch

A sentence whose audio is implausibly short or long for its text (a runaway or truncated generation,
`plausible_seconds`) is generated again with the next seed, up to `max_retries` times, in the next round
of the same three stages; then its item fails (the row is rejected as `tts_error`). A sentence's seed is
`seed + 7919 * k + 104729 * attempt` (k: its place in the item), the LM's random numbers are keyed by
(seed, step) and HiFT's generator by the seed, so an item's audio depends on the item alone, never on
its batch-mates or on which round another item's retry lands in.

The sampler draws from counter-based random numbers, not upstream's global generator, so a seed gives
different audio than upstream's own inference; rows record `tts_model` with the runtime's version.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jaspeech.synthesis.batch import Audio, SynthesisItem
from jaspeech.synthesis.speakers import SpeakerProfile
from jaspeech.synthesis.tts.zero_shot import (normalize_japanese, plausible_seconds, reference_voices,
                                              split_sentences, voice_hint)

from .config import read_config
from .flow import CosyVoice2Flow
from .graphs import FlowODE, budget_batches, to_device
from .frontend import SpeakerPrompt, TextTokenizer, load_speakers
from .hift import CosyVoice2HiFT
from .llm import CosyVoice2LM, LMPrompt

RUNTIME_VERSION = 2  # bump when a seed's audio changes (sampler, noise, retries): rows record it in tts_model
# v2: HiFT batched (float rounding), the GPU sampler in float32, attention over the live cache length


@dataclass
class _Sentence:
    item: int  # index of its item in the call
    k: int  # its place among the item's sentences
    text: str
    tokens: list[int]
    attempt: int = 0
    audio: np.ndarray | None = None

    def seed(self, item_seed: int) -> int:
        return (item_seed + 7919 * self.k + 104729 * self.attempt) % (2**31)


class CosyVoice2Runtime:
    """The batched backend: upstream's unchanged model folder, speakers registered once (see frontend.py)."""

    reads_with_openjtalk = False

    def __init__(self, model_dir: str | Path, speakers: dict[str, SpeakerPrompt], device: str | None = None,
                 dtype: torch.dtype | None = None, max_batch: int | None = None, flow_batch: int | None = None,
                 max_retries: int = 2, sentence_pause: float = 0.25, flow_frames: int | None = None,
                 hift_frames: int | None = None, flow_graphs: bool = False) -> None:
        folder = Path(model_dir)
        config = read_config(folder)  # fails first, naming what a model folder holds
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        gpu = self.device.type == "cuda"
        # upstream runs its LM and flow in fp16 on GPUs (fp16=True) and HiFT in fp32; float32 on CPU
        self.dtype = dtype or (torch.float16 if gpu else torch.float32)
        self.tokenizer = TextTokenizer.from_folder(folder)
        self.lm = CosyVoice2LM.from_folder(folder, self.device, self.dtype)
        self.flow = CosyVoice2Flow.from_folder(folder, self.device, self.dtype)
        # the fixed noise on the device once (flow.py slices it per call). flow_graphs (GPU only, off by default):
        # the ODE as one CUDA graph per (rows, frames) bucket (graphs.FlowODE); benchmarks/device_account.py
        # predicts it slower on a 1-10 s sentence mix (the flow's batches are compute-bound, and the buckets'
        # padding adds ~60 % FLOPs), so it stays an option until a GPU run says otherwise
        self.flow.decoder.rand_noise = self.flow.decoder.rand_noise.to(self.device)
        self.flow_ode = FlowODE(self.flow.decoder, capture=True) if gpu and flow_graphs else None
        self.hift = CosyVoice2HiFT.from_folder(folder, self.device)
        self.sample_rate = int(config.get("sample_rate", 24000))
        self.speakers = speakers
        self.max_batch = max_batch or (256 if gpu else 16)
        # the flow's and HiFT's batches: at most flow_batch rows, and rows x padded mel frames within a budget
        # (the flow's score tensors also grow with frames², bounded by flow_quadratic); sized so a group of
        # 64 eight-second sentences is one batch on a GPU and peak memory stays a few GiB per stage
        self.flow_batch = flow_batch or (64 if gpu else 8)
        self.flow_frames = flow_frames or (65536 if gpu else 8192)
        self.flow_quadratic = 64 * 1024 ** 2 if gpu else 8 * 1024 ** 2
        self.hift_frames = hift_frames or (32768 if gpu else 8192)
        self.max_waste = 0.15  # at most this share of a flow or HiFT batch is padding (rows are length-sorted)
        self.max_retries = max_retries
        self._pause = np.zeros(int(sentence_pause * self.sample_rate), np.float32)
        self.name = f"CosyVoice2 ({folder.name}), jaspeech runtime v{RUNTIME_VERSION}"
        self.speakers_dir: Path | None = None
        self.timings = {"lm_s": 0.0, "flow_s": 0.0, "hift_s": 0.0, "sentences": 0, "retries": 0, "audio_s": 0.0}

    @classmethod
    def from_folders(cls, model_dir: str | Path, speakers_dir: str | Path, cache_dir: str | Path | None = None,
                     **options) -> "CosyVoice2Runtime":
        """The runtime with every voice of a speakers folder registered (read from `cache_dir` when cached)."""
        speakers = Path(speakers_dir)
        read_config(model_dir)  # a wrong --tts-model fails before the speakers folder is read
        voices = reference_voices(speakers)
        prompts = load_speakers(model_dir, speakers, [v.name for v in voices], cache_dir=cache_dir)
        runtime = cls(model_dir, prompts, **options)
        runtime.speakers_dir = speakers
        return runtime

    def missing_voices(self, names) -> list[str]:
        """Which of `names` have no registered reference clip (the row builder checks before building)."""
        return [n for n in names if n not in self.speakers]

    def synthesize(self, text: str, speaker: SpeakerProfile, seed: int) -> Audio:
        [result] = self.synthesize_batch([SynthesisItem(text, speaker, seed)])
        if isinstance(result, Exception):
            raise result
        return result

    def synthesize_batch(self, items: list[SynthesisItem]) -> list[Audio | Exception]:
        """Every sentence of every item through the LM, flow and HiFT in batches; one result per item."""
        errors: dict[int, Exception] = {}
        sentences: list[_Sentence] = []
        for n, item in enumerate(items):
            if item.speaker.name not in self.speakers:
                errors[n] = FileNotFoundError(voice_hint(self.speakers_dir or Path("?"), [item.speaker.name]))
                continue
            for k, text in enumerate(split_sentences(normalize_japanese(item.text))):
                sentences.append(_Sentence(n, k, text, self.tokenizer.encode(text)))
        todo = [s for s in sentences if s.tokens]
        while todo:
            self._speak(todo, items)
            retry = []
            for s in todo:
                low, high = plausible_seconds(s.text)
                seconds = s.audio.size / self.sample_rate
                if low <= seconds <= high:
                    continue
                if s.attempt < self.max_retries:
                    s.attempt += 1
                    retry.append(s)
                    self.timings["retries"] += 1
                else:
                    errors.setdefault(s.item, RuntimeError(
                        f"sentence {s.k}: {seconds:.2f} s is outside the plausible {low:.2f}-{high:.2f} s after "
                        f"{self.max_retries + 1} tries (runaway or truncated generation)"))
            todo = [s for s in retry if s.item not in errors]
        out: list[Audio | Exception] = []
        for n in range(len(items)):
            if n in errors:
                out.append(errors[n])
                continue
            mine = [s.audio for s in sentences if s.item == n and s.audio is not None]
            parts = [x for audio in mine for x in (audio, self._pause)][:-1]
            audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
            self.timings["audio_s"] += audio.size / self.sample_rate
            out.append((audio, self.sample_rate))
        return out

    def _sync(self) -> None:
        if self.device.type == "cuda":  # the stage timings count the GPU's work, not only its launch
            torch.cuda.synchronize()

    def _speak(self, sentences: list[_Sentence], items: list[SynthesisItem]) -> None:
        """One round: tokens for every sentence, then mels, then audio (set on each sentence)."""
        seeds = [s.seed(items[s.item].seed) for s in sentences]
        voices = [self.speakers[items[s.item].speaker.name] for s in sentences]
        t0 = time.perf_counter()
        tokens = self.lm.generate([LMPrompt(s.tokens, v.text_tokens, v.speech_tokens) for s, v in zip(sentences, voices)],
                                  seeds, max_batch=self.max_batch)
        t1 = time.perf_counter()
        mels: list[torch.Tensor | None] = [None] * len(sentences)
        frames = [2 * (len(voices[n].speech_tokens) + len(tokens[n])) for n in range(len(sentences))]
        order = sorted((n for n in range(len(sentences)) if tokens[n]), key=lambda n: (frames[n], n))
        for batch in budget_batches(order, frames, self.flow_batch, self.flow_frames, self.flow_quadratic,
                                    self.max_waste):
            out = self.flow.inference(
                [to_device(tokens[n], torch.long, self.device) for n in batch],
                [to_device(voices[n].speech_tokens, torch.long, self.device) for n in batch],
                [torch.from_numpy(voices[n].feat).to(self.device, self.dtype) for n in batch],
                torch.from_numpy(np.stack([voices[n].embedding for n in batch])).to(self.device, self.dtype),
                ode=self.flow_ode)
            for n, mel in zip(batch, out):
                mels[n] = mel
        self._sync()
        t2 = time.perf_counter()
        audio = self._vocode(mels, seeds)
        t3 = time.perf_counter()
        for n, s in enumerate(sentences):
            s.audio = audio.get(n, np.zeros(0, np.float32))
        self.timings["lm_s"] += t1 - t0
        self.timings["flow_s"] += t2 - t1
        self.timings["hift_s"] += t3 - t2
        self.timings["sentences"] += len(sentences)

    def _vocode(self, mels: list[torch.Tensor | None], seeds: list[int]) -> dict[int, np.ndarray]:
        """HiFT over every mel, length-sorted batches within `hift_frames`; one host copy per batch."""
        ready = sorted((n for n in range(len(mels)) if mels[n] is not None), key=lambda n: (mels[n].shape[-1], n))
        frames = [0 if m is None else m.shape[-1] for m in mels]
        audio: dict[int, np.ndarray] = {}
        for batch in budget_batches(ready, frames, len(ready), self.hift_frames, max_waste=self.max_waste):
            waves = self.hift.inference_batch([mels[n].float() for n in batch], [seeds[n] for n in batch])
            host = waves.float().cpu().numpy()  # the one copy (and sync) of the batch
            for row, n in enumerate(batch):
                audio[n] = host[row, : frames[n] * self.hift.upsample_scale].copy()
        return audio
