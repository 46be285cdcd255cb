"""Load a JaSpeechLLM checkpoint folder for inference: the one loader `eval asr` and ADU-Bench share.

A checkpoint folder is what training saves (`<output_dir>/final`, `checkpoint-<step>`): the model's
`config.json` (`model_type` `jaspeech_llm`) and weights beside the processor's files. The model goes to
the GPU in bf16 when one is visible, else stays on the CPU in fp32, in eval mode. Generation is greedy
and batched; the tokenizer pads on the left so that every prompt in a batch is continued at its end.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_TYPE = "jaspeech_llm"


def is_jaspeech_checkpoint(path: str | Path) -> bool:
    """True for a folder whose config.json says `model_type: jaspeech_llm`."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


@dataclass
class InferenceCheckpoint:
    """A loaded checkpoint: model (eval mode) and processor, with the device and dtype it runs in."""

    path: str
    model: Any
    processor: Any
    device: str
    dtype: Any

    def prompt(self, task: str, turns: list[dict] | None = None) -> str:
        """The rendered chat prompt of a task (`asr_ja`, `instruction` with spoken turns, ...), ready to continue."""
        return self.processor.render(self.processor.task_messages(task, turns), add_generation_prompt=True)

    def generate(self, prompt: str, audios: list[tuple[np.ndarray, int]], max_new_tokens: int) -> list[str]:
        """Greedy continuation of `prompt` for each clip (one batch), special tokens removed, stripped."""
        import torch

        inputs = self.processor(text=[prompt] * len(audios), audio=list(audios))
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["input_features"] = inputs["input_features"].to(self.dtype)
        tok = self.processor.tokenizer
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]


def load_checkpoint(path: str | Path, device: str | None = None) -> InferenceCheckpoint:
    """Model + processor from a JaSpeechLLM checkpoint folder, on `device` (default: cuda if visible, else cpu)."""
    import torch

    from jaspeech.model import JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor

    if not is_jaspeech_checkpoint(path):
        raise FileNotFoundError(f"{path} is not a JaSpeechLLM checkpoint folder (config.json with model_type "
                                f"{MODEL_TYPE!r}): pass a folder saved by `jaspeech train`, e.g. runs/sft/final")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = JaSpeechLLMForConditionalGeneration.from_pretrained(str(path), dtype=dtype).to(device).eval()
    processor = JaSpeechLLMProcessor.from_pretrained(str(path))
    processor.tokenizer.padding_side = "left"
    return InferenceCheckpoint(path=str(path), model=model, processor=processor, device=device, dtype=dtype)
