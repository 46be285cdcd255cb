"""Long spoken turns (a passage to summarise, 30-60 s of speech) are kept and scored whole by default."""
import pytest
from datasets import load_dataset

from jaspeech.cer import cer
from jaspeech.cli import main
from jaspeech.synthesis.roundtrip import kana_reading
from tests.conftest import assert_accounted, reject_reasons, write_jsonl

# A realistic long instruction: a passage to summarise, ~45-50 s with the Kokoro voices.
LONG = (
    "次の文章を三つの要点にまとめてください。私たちの町では、十年ほど前から商店街の空き店舗が目立つようになりました。"
    "駅前に大きな商業施設ができたことで、買い物客の多くがそちらに流れてしまったのです。"
    "そこで商店会は、空き店舗を若い人たちに安く貸し出し、カフェや雑貨店、小さな工房を開いてもらう取り組みを始めました。"
    "最初の数年は客足がなかなか戻りませんでしたが、週末に手作りの市場を開いたり、地元の高校生と一緒に地図を作ったりするうちに、"
    "少しずつ町の外からも人が訪れるようになりました。今では、空き店舗の数は半分以下に減り、商店街は町の新しい顔になりつつあります。"
)
REPLY = "一、駅前の商業施設に客を奪われ空き店舗が増えた。二、若い人に店舗を安く貸した。三、市場や地図作りで人が戻った。"


def long_input(tmp_path):
    return write_jsonl(tmp_path / "long.jsonl", [
        {"id": "long-001", "conversations": [{"role": "user", "content": LONG}, {"role": "assistant", "content": REPLY}]},
    ])


def build_args(path, out, *extra):
    return ["build", "jaspeech-sft-audio", "--config", "magpie", "--input", str(path), "--out", str(out), "--quiet",
            *extra]


def test_long_turns_pass_text_preparation_and_max_seconds_still_lowers_the_limit(tmp_path):
    """OpenJTalk, no ASR (fast): kept by default; rejected on measured audio below it; skipped when hopeless."""
    path = long_input(tmp_path)
    fast = ("--tts", "openjtalk", "--asr", "none")
    assert main(build_args(path, tmp_path / "default", *fast)) == 0
    kept, _ = assert_accounted(tmp_path / "default", "magpie", 1)
    assert kept == [0]
    row = load_dataset(str(tmp_path / "default"), "magpie", split="train")[0]
    assert row["turns"][0]["duration"] > 30 and row["turns"][0]["text"] == LONG

    # 30 s: the estimate (~50 s) is not hopeless, so the turn is synthesised and the measured audio decides
    assert main(build_args(path, tmp_path / "lower", *fast, "--max-seconds", "30")) == 0
    assert reject_reasons(tmp_path / "lower", "magpie") == {0: "audio_too_long"}
    # 10 s: estimated at more than twice the limit, so synthesis is skipped
    assert main(build_args(path, tmp_path / "hopeless", *fast, "--max-seconds", "10")) == 0
    assert reject_reasons(tmp_path / "hopeless", "magpie") == {0: "too_long"}


@pytest.mark.slow
def test_a_45_second_instruction_is_kept_with_whole_turn_scores(tmp_path):
    """The default stack (Kokoro + Whisper base round trip) through the CLI: the turn is heard whole."""
    out = tmp_path / "corpus"
    assert main(build_args(long_input(tmp_path), out)) == 0
    kept, _ = assert_accounted(out, "magpie", 1)
    assert kept == [0], [f.read_text(encoding="utf-8") for f in (out / "rejects" / "magpie").glob("*.jsonl")]
    row = load_dataset(str(out), "magpie", split="train")[0]
    user = row["turns"][0]
    audio = user["audio"].get_all_samples()
    assert user["duration"] > 30 and audio.data.shape[-1] / audio.sample_rate == pytest.approx(user["duration"], abs=0.01)
    assert user["kana_cer"] <= 0.10 and user["asr_passes"] in (1, 2)
    # the transcript covers the whole turn, not its first 30 s window: same reading length, and the end is heard
    said, heard = kana_reading(LONG), kana_reading(user["transcript"])
    assert len(heard) >= 0.9 * len(said)
    assert cer(said[-40:], heard[-40:]) <= 0.25
