"""The captioners that need no GPU stack: `labels` (offline default) and `openai` (any compatible server).

- `labels`: a template sentence from the FSD50K labels. It is *not* a model caption and says so in the
  `captioner` column and the card.
- `openai`: any OpenAI-compatible chat server (e.g. `vllm serve Qwen/Qwen3-Omni-30B-A3B-Captioner`),
  audio sent as chat `input_audio`, with concurrency and retries.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from jaspeech.captioning.base import CaptionError, Clip
from jaspeech.openai_api import ApiError, audio_part, chat


# --- labels ---------------------------------------------------------------------------------------

def _label_words(label: str) -> str:
    return label.replace("_", " ").replace(" and ", " and ").strip().lower()


class LabelsCaptioner:
    """Template captions from the ground-truth labels: reproducible, offline, and no model at all."""

    name = "labels-template (FSD50K labels, no model)"

    def caption(self, clips: list[Clip]) -> list[str | CaptionError]:
        out: list[str | CaptionError] = []
        for clip in clips:
            names = list(dict.fromkeys(_label_words(x) for x in clip.labels if x))
            if not names:
                out.append(CaptionError("the clip has no labels to describe"))
                continue
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            seconds = len(clip.samples) / clip.sample_rate
            out.append(f"A {seconds:.0f}-second recording with the sound of {listed}.")
        return out


# --- OpenAI-compatible server ---------------------------------------------------------------------

class OpenAICaptioner:
    """One chat request per clip with the audio as `input_audio`; `concurrency` requests at a time.

    Retries and backoff are `jaspeech.openai_api.chat`'s; a clip that still fails becomes a CaptionError.
    """

    def __init__(self, url: str, model: str, concurrency: int = 8, retries: int = 3, timeout: float = 120.0,
                 backoff: float = 1.0, max_tokens: int = 512, prompt: str | None = None) -> None:
        self.url, self.model = url, model
        self.name = f"{model} (OpenAI-compatible server)"
        self.concurrency, self.retries, self.timeout, self.backoff = concurrency, retries, timeout, backoff
        self.max_tokens = max_tokens
        self.prompt = prompt  # the Captioner takes audio alone; other models may want an instruction

    def _one(self, clip: Clip) -> str | CaptionError:
        content = [audio_part(clip.samples, clip.sample_rate)]
        if self.prompt:
            content.append({"type": "text", "text": self.prompt})
        try:
            return chat(self.url, self.model, [{"role": "user", "content": content}], max_tokens=self.max_tokens,
                        retries=self.retries, timeout=self.timeout, backoff=self.backoff)
        except ApiError as e:
            return CaptionError(str(e))

    def caption(self, clips: list[Clip]) -> list[str | CaptionError]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._one, clips))
