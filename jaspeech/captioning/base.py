"""What every captioner shares: the clip it gets, the error it may return, and its interface.

`Captioner.caption(list of Clip) -> list of str | CaptionError` is batched; a clip the captioner could not
caption (after its own retries) comes back as a `CaptionError`, never as an exception for the batch.
The factory `make_captioner` is the package's front door (`jaspeech.captioning`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class Clip:
    id: str
    samples: np.ndarray  # float32 mono
    sample_rate: int
    labels: list[str] = field(default_factory=list)


class CaptionError(Exception):
    """A clip the captioner could not caption (after its own retries)."""


class Captioner(Protocol):
    name: str

    def caption(self, clips: list[Clip]) -> list[str | CaptionError]: ...


CAPTIONERS = ("labels", "openai", "qwen3-omni")
