"""Every recipe under configs/train/ runs: 2 steps with its model swapped for the tiny one (`model.init=tiny`,
its architecture and prompt-format choices kept) and its data sources pointed at local folders in each
source's schema (`--set`), so a broken production recipe fails here."""
import math
from pathlib import Path

import pytest
import yaml

from jaspeech.model import JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor
from jaspeech.model.train.recipes import train
from tests.model.train import originals

ROOT = Path(__file__).resolve().parents[3]
RECIPES = sorted((ROOT / "configs" / "train").glob("*.yaml"))


@pytest.fixture(scope="module")
def fixtures(sample_corpora, tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    return {
        "asr": (originals.asr(root / "reazon", 4), None),
        "librispeech": (originals.librispeech(root / "libri", 4), None),
        "magpie": (originals.magpie(root / "magpie", [(f"質問{i}", originals.flac(1.0 + i), f"答え{i}") for i in range(3)]), None),
        "multiturn": (originals.multiturn(root / "multiturn"), None),
        "dpo-original": (originals.dpo(root / "dpo"), None),
        "captions": (originals.captions(root / "captions"), None),
        "text": (originals.text_chats(root / "text", 2, split="train"), None),
        "sft-ours": (str(sample_corpora / "sft"), "magpie"),
        "dpo-ours": (str(sample_corpora / "dpo"), "chatbot-arena"),
    }


def local_source(source: dict, fixtures: dict) -> tuple[str, str | None]:
    kind, path = source["kind"], source["path"]
    if kind == "asr":
        return fixtures["librispeech" if source.get("text_column") == "text" else "asr"]
    if kind in ("fsd50k", "text"):
        return fixtures["captions" if kind == "fsd50k" else "text"]
    if kind == "jaspeech-sft":
        return fixtures["magpie" if "magpie" in path and path.startswith("Atotti/") else
                        "multiturn" if path.startswith("Atotti/") else "sft-ours"]
    if kind == "jaspeech-dpo":
        return fixtures["dpo-original" if path.startswith("Atotti/") else "dpo-ours"]
    raise AssertionError(f"no local fixture for a {kind} source")


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_recipe_runs_two_steps_on_local_data(recipe, fixtures, tmp_path):
    cfg = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    overrides = ["model.init=tiny", f"output_dir={tmp_path / 'run'}", "training.max_steps=2",
                 "training.per_device_batch_size=2", "training.gradient_accumulation_steps=1",
                 "training.save_steps=2", "model.tokenizer_examples=16"]
    if cfg.get("eval"):
        overrides += ["eval.examples=1", "eval.every_steps=1"]
    for i, source in enumerate(cfg["data"]["sources"]):  # hub split names cannot be checked offline: train
        path, config = local_source(source, fixtures)
        overrides += [f"data.sources.{i}.path={path}", f"data.sources.{i}.config={'null' if config is None else config}",
                      f"data.sources.{i}.split=train"]
    result = train(recipe, overrides)
    assert result["steps"] == 2 and len(result["losses"]) == 2 and all(math.isfinite(x) for x in result["losses"])
    assert (tmp_path / "run" / "checkpoint-2" / "done").exists()
    final = tmp_path / "run" / "final"
    model = JaSpeechLLMForConditionalGeneration.from_pretrained(final)
    processor = JaSpeechLLMProcessor.from_pretrained(final)
    m = cfg["model"]
    assert processor.prompt_format == m.get("prompt_format", "chat")
    assert model.config.audio_token_rounding == processor.audio_token_rounding == m.get("audio_token_rounding", "ceil")
    assert model.config.adapter_bias == m.get("adapter_bias", True)
    assert model.config.adapter_hidden_size == int(m.get("adapter_width", 1) * model.config.text_config.hidden_size)
    if cfg.get("eval"):
        assert "cer_before" in result and "cer_after" in result and [s for s, _ in result["cer_during"]] == [1]
