"""`--tts cosyvoice2` end to end through OUR runtime (llm.py, flow.py, hift.py, frontend.py), with the tiny
random model folder in upstream's layout (tests/synthesis/tiny_cosyvoice2.py, written by upstream's own
classes). The build runs in a subprocess in which upstream's packages (and the other heavy ones the runtime
must not need) cannot be imported, so the runtime path is shown to stand on transformers + torch alone.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from jaspeech.synthesis.speakers import speaker_by_name
from jaspeech.synthesis.tts import SynthesisItem
from tests.conftest import assert_accounted
from tests.synthesis.tiny_cosyvoice2 import build_tiny_cosyvoice2, write_speakers

ROOT = Path(__file__).resolve().parents[3]
BLOCKED = ("cosyvoice", "matcha", "hyperpyyaml", "diffusers", "einops", "conformer", "torchaudio", "librosa",
           "whisper", "onnx", "modelscope", "tn")
RUN_WITHOUT_UPSTREAM = textwrap.dedent(f"""
    import sys
    # None in sys.modules: `import cosyvoice` raises ImportError and importlib.util.find_spec says "not installed"
    # (transformers probes optional packages that way), so nothing below can reach upstream's code
    for name in {BLOCKED!r}:
        sys.modules[name] = None
    import torch
    torch.set_num_threads(1)
    from jaspeech.cli import main
    raise SystemExit(main(sys.argv[1:]))
""")


@pytest.fixture(scope="module")
def speakers(tmp_path_factory):
    return write_speakers(tmp_path_factory.mktemp("speakers"))


def _build(model: Path, speakers: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-c", RUN_WITHOUT_UPSTREAM, "build", "jaspeech-sft-audio", "--config", "magpie",
           "--input", "sample", "--limit", "3", "--tts", "cosyvoice2", "--tts-model", str(model),
           "--speakers", str(speakers), "--asr", "none", "--out", str(out), "--quiet", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_build_runs_on_the_runtime_without_upstream_caches_the_speakers_and_ignores_group_size(tiny_folder, speakers, tmp_path):
    out = tmp_path / "corpus"
    done = _build(tiny_folder, speakers, out)
    assert done.returncode == 0, done.stderr[-3000:]
    kept, rejected = assert_accounted(out, "magpie", 3)
    assert len(kept) == 3 and rejected == []
    rows = pq.read_table(next((out / "data" / "magpie").glob("*.parquet"))).to_pylist()
    for row in rows:
        assert row["tts_model"] == "CosyVoice2 (CosyVoice2-tiny), jaspeech runtime v2, fed OpenJTalk kana readings"
        audio, sr = sf.read(io.BytesIO(row["turns"][0]["audio"]["bytes"]), dtype="float32")
        assert sr == 24000 and audio.ndim == 1 and np.abs(audio).max() > 0
    plan = json.loads((out / "manifests" / "magpie" / "plan.json").read_text())
    assert plan["tts"] == "cosyvoice2" and plan["group_rows"] == 128
    [cache] = (out / "cache").glob("cosyvoice2-speakers-*.npz")  # registered once, beside the build
    stamp = cache.stat().st_mtime_ns
    # rebuilt one row per group (each row's sentences decoded alone, not beside the other rows')
    again = _build(tiny_folder, speakers, out, "--overwrite", "--group-rows", "1")
    assert again.returncode == 0, again.stderr[-3000:]
    assert cache.stat().st_mtime_ns == stamp and len(list((out / "cache").iterdir())) == 1  # read, not rewritten
    alone = pq.read_table(next((out / "data" / "magpie").glob("*.parquet"))).to_pylist()
    assert [_without_audio(r) for r in alone] == [_without_audio(r) for r in rows]  # same seeds, same tokens
    for a, b in zip(alone, rows):
        # the same speech to within one 16-bit step: float32 matmuls over a padded batch round differently from a
        # row alone (the float64 tests below and in test_flow.py / test_llm.py show the batch effect is rounding)
        x, y = (sf.read(io.BytesIO(r["turns"][0]["audio"]["bytes"]), dtype="int16")[0] for r in (a, b))
        assert x.shape == y.shape and np.abs(x.astype(np.int32) - y).max() <= 1


def _without_audio(row: dict) -> dict:
    return {**row, "turns": [{k: v for k, v in t.items() if k != "audio"} for t in row["turns"]]}


@pytest.fixture(scope="module")
def runtime64(tiny_folder, speakers, one_thread):
    """The runtime in float64 (HiFT stays float32, as always): batch effects show only as float rounding."""
    import torch

    from jaspeech.synthesis.tts.cosyvoice2_runtime.runtime import CosyVoice2Runtime

    return CosyVoice2Runtime.from_folders(tiny_folder, speakers, dtype=torch.float64, max_batch=4, flow_batch=3)


TEXTS = ["コンニチワ。", "キョーワ、イイテンキデスネ。アシタモハレマス。", "アリガトーゴザイマス。", "ハイ。",
         "ニセンニジューヨネンノハルデス。"]


def test_an_item_is_the_same_alone_and_among_any_batch_mates(runtime64):
    items = [SynthesisItem(t, speaker_by_name(f"spk{n:02d}"), 100 + n) for n, t in enumerate(TEXTS)]
    together = runtime64.synthesize_batch(items)
    alone = [runtime64.synthesize_batch([item])[0] for item in items]
    permuted = runtime64.synthesize_batch(items[::-1])[::-1]
    for a, b, c in zip(together, alone, permuted):
        assert a[1] == b[1] == c[1] == 24000
        assert a[0].shape == b[0].shape == c[0].shape and a[0].size > 0
        assert np.max(np.abs(a[0] - b[0])) < 1e-6 and np.max(np.abs(a[0] - c[0])) < 1e-6
    # two sentences: one pause of 0.25 s between them; another seed gives other audio
    other = runtime64.synthesize_batch([SynthesisItem(TEXTS[1], items[1].speaker, 7)])[0][0]
    assert other.shape != together[1][0].shape or np.max(np.abs(other - together[1][0])) > 1e-3


def test_a_runaway_sentence_is_retried_then_fails_its_item_only(tiny_folder, speakers, tmp_path, one_thread):
    """A model that never ends a sentence (EOS logit far down) runs to upstream's 20 tokens per text token:
    every try is implausibly long, so the item fails after 1 + max_retries tries with a message; a voice
    without a reference clip fails only its own item."""
    import torch

    from jaspeech.synthesis.tts.cosyvoice2_runtime.runtime import CosyVoice2Runtime

    runaway = build_tiny_cosyvoice2(tmp_path / "CosyVoice2-runaway", eos_bias=-30.0)
    tts = CosyVoice2Runtime.from_folders(runaway, speakers, dtype=torch.float32, max_retries=1)
    result, missing = tts.synthesize_batch([SynthesisItem("コンニチワ。", speaker_by_name("spk01"), 3),
                                            SynthesisItem("ハイ。", speaker_by_name("asst00"), 4)])
    assert isinstance(result, RuntimeError) and "after 2 tries (runaway or truncated generation)" in str(result)
    assert tts.timings["retries"] == 1 and tts.timings["sentences"] == 2
    assert isinstance(missing, FileNotFoundError) and "asst00" in str(missing)
