"""`transformers`: any Whisper checkpoint through transformers (Whisper-large-v3, kotoba-whisper, ...).

Batched on GPU (fp16) or CPU (fp32), language `ja`, task `transcribe`: the same round trip and scores as
the offline faster-whisper backend, for GPU clusters. Clips arrive in groups of rows from the build
(see `RowBuilder.finish`). A clip longer than one 30 s window is cut in pauses (`split_at_pauses`),
every window of every clip is decoded short-form, `batch_size` windows at a time, and each clip's
windows' transcripts are joined. (The feature extractor alone would silently keep only the first
30 s; transformers' own sequential long-form path needs timestamp decoding and breaks with beam search
when a window decodes to nothing.) The first pass is greedy; the second (`strong=True`, only for
clips whose first transcript failed the threshold) is beam search over the encoder outputs kept from
the first (`RecentWindows`). Neither samples.

At GPU scale (the round trip of a ~1,000-hour build) the ear costs as much as the voice unless it is
batched wide: on CUDA the default is 64 windows per `generate` call in fp16 with SDPA attention, and the
greedy pass decodes into a static KV cache (transcripts are short, so the cache is small). A call's
windows are decoded longest first, so a batch holds windows of similar token caps and few steps are
spent on windows that are already done; the order is a function of the clips alone, so a window's
transcript still never depends on its batch-mates (for greedy decoding exactly the stand-alone one on
CPU; on a GPU up to kernel rounding). `openai/whisper-large-v3-turbo` (the same encoder, 4 decoder layers
instead of 32) is the cheaper ear with the same interface: `--asr-model openai/whisper-large-v3-turbo`.
"""
from __future__ import annotations

import math

import numpy as np

from jaspeech.synthesis.asr.forced import Forced, Scored, piece_scores, split_text, whole_pieces
from jaspeech.synthesis.asr.windows import RecentWindows
from jaspeech.synthesis.audio import resample, split_at_pauses

WHISPER_SR = 16000
# Whisper tokens per second of read Japanese stay under ~6 (measured: 250 tokens for 50 s of Kokoro
# speech); 15 leaves room for rare kanji split into byte tokens. A window's decode stops there, so a
# runaway repetition ends after a few seconds' worth of tokens instead of the full 440.
TOKENS_PER_SECOND = 15
FRAMES_PER_SECOND = 50  # encoder frames (20 ms)


class TransformersWhisperASR:
    def __init__(self, model: str = "openai/whisper-large-v3", device: str | None = None,
                 batch_size: int | None = None, max_new_tokens: int = 440, strong_num_beams: int = 5,
                 dtype: str | None = None, static_cache: bool | None = None, parts: tuple | None = None) -> None:
        """`parts`: (model, processor) already built, instead of loading `model` (benchmarks/gpu_cost.py: random
        weights of the real shapes); `model` is then only the name."""
        # beam 5 is Whisper's usual beam for large checkpoints; not measured here (no GPU): the offline
        # backend's beam 10 was measured on Whisper base only
        import torch
        from transformers import AutoProcessor, WhisperForConditionalGeneration
        from transformers.modeling_outputs import BaseModelOutput

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        gpu = self.device.startswith("cuda")
        self.dtype = getattr(torch, dtype) if dtype else (torch.float16 if gpu else torch.float32)
        if parts is None:
            parts = (WhisperForConditionalGeneration.from_pretrained(model, dtype=self.dtype, attn_implementation="sdpa"),
                     AutoProcessor.from_pretrained(model))
        self.model, self.processor = parts[0].to(self.device, self.dtype).eval(), parts[1]
        self.name = f"{model} (transformers)"
        self.batch_size = batch_size or (64 if gpu else 16)
        # a static decoder cache saves the per-step allocations of a growing one; beam search keeps the default
        self.static_cache = gpu if static_cache is None else static_cache
        self.max_new_tokens = max_new_tokens  # per window, at most: 448 decoder positions less the 4-token prompt
        self.strong_num_beams = strong_num_beams
        self._torch = torch
        self._recent = RecentWindows()  # the second listening re-runs only the decoder
        self._encoder_output = BaseModelOutput

    def transcribe(self, audios: list[tuple[np.ndarray, int]], strong: bool = False) -> list[str]:
        windows, owner = self._windows(audios)
        out = [""] * len(audios)
        for n, text in zip(owner, self._hear(windows, strong)):  # a clip's windows in their own order
            out[n] += text
        return out

    def score(self, audios: list[tuple[np.ndarray, int]], texts: list[str]) -> list[Forced]:
        """Each text teacher-forced on its clip beside the ear's own greedy transcript (one decoder forward per
        batch of windows, the text as labels): the log-probability of every text token given the audio and the
        tokens before it, over the text tokens (as CTranslate2's `align` and openai-whisper's alignment do).
        A piece's time comes from the decoder's cross-attention (the alignment heads of the checkpoint, else
        every head of the upper half of the decoder): each token's most attended encoder frame, kept
        non-decreasing; rows are right-padded, so a window's scores never depend on its batch-mates."""
        windows, owner = self._windows(audios)
        heard = self._hear(windows, strong=False)
        parts: list[str] = []
        for n, text in enumerate(texts):
            mine = [w for w, o in enumerate(owner) if o == n]
            parts += split_text(text, [heard[w] for w in mine])
        offsets, clock = [], {}
        for w, n in enumerate(owner):
            offsets.append(clock.get(n, 0.0))
            clock[n] = offsets[-1] + windows[w].size / WHISPER_SR
        scored = self._force(windows, parts + heard, offsets + offsets)
        out = []
        for n in range(len(audios)):
            mine, own = Scored(), Scored()
            for w in (w for w, o in enumerate(owner) if o == n):
                mine.extend(scored[w])
                own.extend(scored[len(windows) + w])
            out.append(Forced("".join(heard[w] for w, o in enumerate(owner) if o == n), mine.tokens, mine.logprobs,
                              mine.starts, mine.ends, own.tokens, own.logprobs, own.starts, own.ends))
        return out

    def _windows(self, audios: list[tuple[np.ndarray, int]]) -> tuple[list[np.ndarray], list[int]]:
        """Every clip's 30 s windows, and the clip each belongs to."""
        windows: list[np.ndarray] = []
        owner: list[int] = []
        for n, (x, sr) in enumerate(audios):
            pieces = split_at_pauses(resample(x, sr, WHISPER_SR), WHISPER_SR)
            windows += pieces
            owner += [n] * len(pieces)
        return windows, owner

    def _hear(self, windows: list[np.ndarray], strong: bool) -> list[str]:
        texts = [""] * len(windows)
        order = sorted(range(len(windows)), key=lambda w: (-windows[w].size, w))  # longest first, ties by position
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for w, text in zip(batch, self._generate([windows[w] for w in batch], strong)):
                texts[w] = text
        return texts

    def _force(self, windows: list[np.ndarray], texts: list[str], offsets: list[float]) -> list[Scored]:
        """`texts[j]` teacher-forced on `windows[j % len(windows)]`, in batches; one Scored per text."""
        torch = self._torch
        tok = self.processor.tokenizer
        prompt = tok.convert_tokens_to_ids(["<|startoftranscript|>", "<|ja|>", "<|transcribe|>", "<|notimestamps|>"])
        eot = tok.convert_tokens_to_ids("<|endoftext|>")
        ids = [tok.encode(t, add_special_tokens=False) if t else [] for t in texts]
        out = [Scored() for _ in texts]
        todo = [j for j in range(len(texts)) if ids[j]]
        config = self.model.config
        heads = getattr(self.model.generation_config, "alignment_heads", None) or [
            [layer, head] for layer in range(config.decoder_layers // 2, config.decoder_layers)
            for head in range(config.decoder_attention_heads)]
        before = config._attn_implementation
        self.model.set_attn_implementation("eager")  # cross-attention weights: only the eager path returns them
        try:
            for start in range(0, len(todo), self.batch_size):
                batch = todo[start : start + self.batch_size]
                encoded = self._encode([windows[j % len(windows)] for j in batch]).last_hidden_state
                width = max(len(ids[j]) for j in batch)
                tokens = torch.full((len(batch), len(prompt) + width), eot, dtype=torch.long)
                for b, j in enumerate(batch):
                    tokens[b, : len(prompt) + len(ids[j])] = torch.tensor(prompt + ids[j])
                with torch.inference_mode():
                    result = self.model(encoder_outputs=(encoded,), decoder_input_ids=tokens.to(self.device),
                                        output_attentions=True)
                logits = result.logits[:, len(prompt) - 1 : -1, :eot].float()
                logprobs = torch.log_softmax(logits, dim=-1)
                weights = torch.stack([result.cross_attentions[layer][:, head] for layer, head in heads], dim=1)
                weights = weights[:, :, len(prompt) - 1 : -1].float().mean(dim=1)  # [batch, tokens, frames]
                for b, j in enumerate(batch):
                    n = len(ids[j])
                    got = logprobs[b, torch.arange(n), torch.tensor(ids[j])].cpu().numpy().astype(np.float64)
                    frames = max(1, math.ceil(windows[j % len(windows)].size / WHISPER_SR * FRAMES_PER_SECOND))
                    peak = weights[b, :n, :frames].argmax(dim=-1).cpu().numpy()
                    starts = np.maximum.accumulate(peak) / FRAMES_PER_SECOND
                    jumps = np.append(starts, max(starts[-1], frames / FRAMES_PER_SECOND)).tolist()
                    out[j] = piece_scores(whole_pieces(ids[j], tok.decode), np.maximum(got, -50.0).tolist(), jumps,
                                          offsets[j])
        finally:
            self.model.set_attn_implementation(before)
        return out

    def _encode(self, batch: list[np.ndarray]):
        """The encoder's output for each window: kept from an earlier call when all were heard lately."""
        keys = [RecentWindows.key(w) for w in batch]
        hidden = [self._recent.get(k) for k in keys]
        if any(h is None for h in hidden):
            features = self.processor.feature_extractor(batch, sampling_rate=WHISPER_SR, return_tensors="pt")
            encoded = self.model.model.encoder(features.input_features.to(self.device, self.dtype)).last_hidden_state
            hidden = list(encoded)
            for k, h in zip(keys, hidden):
                self._recent.put(k, h)
        return self._encoder_output(last_hidden_state=self._torch.stack(hidden))

    def _generate(self, batch: list[np.ndarray], strong: bool) -> list[str]:
        caps = [min(self.max_new_tokens, 8 + math.ceil(w.size / WHISPER_SR * TOKENS_PER_SECOND)) for w in batch]
        with self._torch.inference_mode():
            ids = self.model.generate(
                encoder_outputs=self._encode(batch),
                language="ja",
                task="transcribe",
                max_new_tokens=max(caps),
                num_beams=self.strong_num_beams if strong else 1,
                **({"cache_implementation": "static"} if self.static_cache and not strong else {}),
            )
        # `ids` holds only the generated tokens (transformers >= 4.48 strips Whisper's decoder prompt). Each
        # window keeps at most its own cap, so a runaway window is cut where it would be alone, whatever its
        # batch-mates (for greedy decoding exactly the stand-alone result)
        return [t.strip() for t in self.processor.batch_decode([row[:cap] for row, cap in zip(ids, caps)],
                                                                skip_special_tokens=True)]
