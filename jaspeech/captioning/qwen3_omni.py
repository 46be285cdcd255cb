"""`qwen3-omni`: Qwen3-Omni-30B-A3B-Captioner through transformers.

Follows the model card: `Qwen3OmniMoeProcessor` + `Qwen3OmniMoeForConditionalGeneration`, a single user
turn holding only the audio (the Captioner takes no text instruction), `return_audio=False` so only the
thinker runs, and the generated tokens after the prompt decoded as the caption. Clips are batched.
"""
from __future__ import annotations

from jaspeech.captioning.base import CaptionError, Clip
from jaspeech.synthesis.audio import resample

CAPTIONER_SR = 16000


class Qwen3OmniCaptioner:
    def __init__(self, model: str = "Qwen/Qwen3-Omni-30B-A3B-Captioner", batch_size: int = 8,
                 max_new_tokens: int = 512, device_map: str | None = "auto") -> None:
        import torch
        from transformers import Qwen3OmniMoeForConditionalGeneration, Qwen3OmniMoeProcessor

        self.processor = Qwen3OmniMoeProcessor.from_pretrained(model)
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every prompt at its end
        kwargs = {"dtype": "auto"}
        if torch.cuda.is_available() and device_map:
            kwargs["device_map"] = device_map
        self.model = Qwen3OmniMoeForConditionalGeneration.from_pretrained(model, **kwargs).eval()
        if getattr(self.model, "has_talker", False):
            self.model.disable_talker()  # text out only
        self.name = f"{model} (transformers)"
        self._eos = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")  # end of the assistant turn
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self._torch = torch

    def _batch(self, clips: list[Clip]) -> list[str]:
        conversations = [[{"role": "user", "content": [{"type": "audio", "audio": f"clip-{c.id}.wav"}]}]
                         for c in clips]
        texts = self.processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
        audios = [resample(c.samples, c.sample_rate, CAPTIONER_SR) for c in clips]
        inputs = self.processor(text=texts, audio=audios, return_tensors="pt", padding=True)
        inputs = inputs.to(self.model.device)
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, return_audio=False, use_audio_in_video=False,
                                      thinker_max_new_tokens=self.max_new_tokens, thinker_do_sample=False,
                                      thinker_eos_token_id=self._eos)
        sequences = out.sequences if hasattr(out, "sequences") else out
        new_tokens = sequences[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(new_tokens, skip_special_tokens=True,
                                                               clean_up_tokenization_spaces=False)]

    def caption(self, clips: list[Clip]) -> list[str | CaptionError]:
        out: list[str | CaptionError] = []
        for start in range(0, len(clips), self.batch_size):
            batch = clips[start : start + self.batch_size]
            try:
                out += self._batch(batch)
            except Exception as e:  # e.g. out of memory on one long clip: the builder retries alone
                out += [CaptionError(f"{type(e).__name__}: {e}")] * len(batch)
        return out
