"""The `qwen3-omni` captioner end to end with a tiny randomly initialised Qwen3-Omni built here.

Real code paths: `Qwen3OmniMoeForConditionalGeneration.from_pretrained` on a saved tiny checkpoint,
the real `Qwen3OmniMoeProcessor` (Whisper features, chat template, audio-token expansion) and
`generate(return_audio=False)`. One concession, in this test only: transformers cannot resolve its
video-processor class without torchvision, and torchvision cannot be installed beside the CPU torch
of this machine, so the processor's class check is disabled and the processor is handed over in
memory instead of through `from_pretrained` (which would build a torchvision video processor).
Audio-only captioning never touches the video processor. The tokenizer is trained in the test.
"""
import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2VLImageProcessorPil,
    Qwen3OmniMoeConfig,
    Qwen3OmniMoeForConditionalGeneration,
    Qwen3OmniMoeProcessor,
    WhisperFeatureExtractor,
)
from transformers import processing_utils
from transformers.video_processing_utils import BaseVideoProcessor

from jaspeech.builders.build import BuildOptions, build
from jaspeech.captioning.base import CaptionError, Clip
from tests.captioning.conftest import CLIPS
from tests.conftest import assert_accounted, reject_reasons

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>",
           "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
            "{% if c['type'] == 'audio' %}<|audio_start|><|audio_pad|><|audio_end|>"
            "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tiny_processor():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["a dog barks in the rain", "thunder rumbles", "user assistant"],
                            trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<|image_pad|>", "audio_token": "<|audio_pad|>",
                              "video_token": "<|video_pad|>", "vision_bos_token": "<|vision_start|>",
                              "vision_eos_token": "<|vision_end|>", "audio_bos_token": "<|audio_start|>",
                              "audio_eos_token": "<|audio_end|>"})
    return Qwen3OmniMoeProcessor(image_processor=Qwen2VLImageProcessorPil(), video_processor=BaseVideoProcessor(),
                                 feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer,
                                 chat_template=TEMPLATE)


def tiny_model(tokenizer) -> Qwen3OmniMoeForConditionalGeneration:
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen3OmniMoeConfig(enable_audio_output=False, thinker_config={
        "audio_config": {"num_mel_bins": 128, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 32,
                         "d_model": 16, "output_dim": 32, "n_window": 50, "n_window_infer": 100,
                         "downsample_hidden_size": 8},
        "vision_config": {"depth": 1, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2,
                          "out_hidden_size": 32, "deepstack_visual_indexes": [0], "num_position_embeddings": 16},
        "text_config": {"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
                        "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                        "moe_intermediate_size": 16, "num_experts": 4, "num_experts_per_tok": 2,
                        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3],
                                            "interleaved": True}},
        "audio_token_id": tokenizer.audio_token_id, "image_token_id": tokenizer.image_token_id,
        "video_token_id": ids("<|video_pad|>"), "audio_start_token_id": ids("<|audio_start|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
    })
    torch.manual_seed(0)
    return Qwen3OmniMoeForConditionalGeneration(config).eval()


@pytest.fixture
def tiny_captioner(tmp_path, monkeypatch):
    monkeypatch.setattr(processing_utils.ProcessorMixin, "check_argument_for_proper_class",
                        lambda self, name, arg: type(arg))
    processor = tiny_processor()
    folder = tmp_path / "tiny-qwen3-omni-captioner"
    tiny_model(processor.tokenizer).save_pretrained(folder)
    monkeypatch.setattr(Qwen3OmniMoeProcessor, "from_pretrained", classmethod(lambda cls, path: processor))
    return folder


def test_batched_audio_only_captioning(tiny_captioner):
    from jaspeech.captioning.qwen3_omni import Qwen3OmniCaptioner

    captioner = Qwen3OmniCaptioner(str(tiny_captioner), batch_size=2, max_new_tokens=6)
    assert not captioner.model.has_talker and captioner.name.endswith("(transformers)")
    calls = []
    generate = captioner.model.generate

    def spy(**kw):
        calls.append({k: kw[k] for k in ("return_audio", "thinker_max_new_tokens")} | {"batch": kw["input_ids"].shape[0],
                     "audio_tokens": int((kw["input_ids"] == captioner.processor.tokenizer.audio_token_id).sum())})
        return generate(**kw)

    captioner.model.generate = spy
    rng = np.random.default_rng(0)
    clips = [Clip(str(i), (rng.standard_normal(int(sr * s)) * 0.1).astype(np.float32), sr, ["Dog"])
             for i, (sr, s) in enumerate([(16000, 1.0), (44100, 2.0), (22050, 0.5)])]
    captions = captioner.caption(clips)
    assert len(captions) == 3 and all(isinstance(c, str) for c in captions)
    assert [c["batch"] for c in calls] == [2, 1]
    assert all(c["return_audio"] is False and c["thinker_max_new_tokens"] == 6 for c in calls)
    assert all(c["audio_tokens"] > 0 for c in calls)  # the audio placeholder was expanded to the clip's frames


def test_qwen3_omni_path_in_a_build(tiny_captioner, release, out):
    """Random weights caption noise: every clip is still accounted for, the noise is rejected by the filters."""
    build(BuildOptions(corpus="fsd50k-cc-captions", config="cc0", input=str(release), out=out, quiet=True,
                       captioner="qwen3-omni", captioner_model=str(tiny_captioner)))
    assert_accounted(out, "cc0", ids=[c[0] for c in CLIPS])
    reasons = set(reject_reasons(out, "cc0").values())
    assert reasons & {"caption_not_english", "caption_too_short", "caption_empty", "caption_repetitive"}


def test_captioner_errors_are_per_batch_not_fatal(tiny_captioner, monkeypatch):
    from jaspeech.captioning.qwen3_omni import Qwen3OmniCaptioner

    captioner = Qwen3OmniCaptioner(str(tiny_captioner), batch_size=2)
    monkeypatch.setattr(captioner, "_batch", lambda clips: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")))
    out = captioner.caption([Clip("1", np.zeros(16000, np.float32), 16000)])
    assert isinstance(out[0], CaptionError) and "out of memory" in str(out[0])
