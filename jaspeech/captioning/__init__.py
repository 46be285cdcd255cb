"""FSD50K captions: the release reader and licence classes, captioners, and caption filters.

Captioners (`caption(list of Clip) -> list of str | CaptionError`, see `base.py`):
- `labels`: the offline default, a template sentence from the FSD50K labels (`captioners.py`).
- `openai`: any OpenAI-compatible chat server (`captioners.py`).
- `qwen3-omni`: Qwen3-Omni-30B-A3B-Captioner through transformers (`qwen3_omni.py`).
"""
from __future__ import annotations

from jaspeech.captioning.base import CAPTIONERS, Captioner


def make_captioner(name: str, model: str | None = None, url: str | None = None, concurrency: int = 8) -> Captioner:
    """The captioner called `name`; heavy stacks are imported only when chosen."""
    if name == "labels":
        from jaspeech.captioning.captioners import LabelsCaptioner

        return LabelsCaptioner()
    if name == "openai":
        if not url:
            raise ValueError("--captioner openai needs --captioner-url (the server's /v1 base URL)")
        from jaspeech.captioning.captioners import OpenAICaptioner

        return OpenAICaptioner(url, model or "Qwen/Qwen3-Omni-30B-A3B-Captioner", concurrency=concurrency)
    if name == "qwen3-omni":
        from jaspeech.captioning.qwen3_omni import Qwen3OmniCaptioner

        return Qwen3OmniCaptioner(model or "Qwen/Qwen3-Omni-30B-A3B-Captioner")
    raise ValueError(f"unknown captioner {name!r}; choose from {', '.join(CAPTIONERS)}")
