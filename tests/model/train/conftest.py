"""Corpora the training tests share (built once per session: TTS synthesis is the slow part)."""
import pytest

from jaspeech.builders.build import BuildOptions, build


@pytest.fixture(scope="session")
def sample_corpora(tmp_path_factory):
    """Our SFT and DPO sample corpora, synthesised with the fast TTS: the data the recipes train on."""
    root = tmp_path_factory.mktemp("corpora")
    build(BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input="sample", out=root / "sft",
                       tts="openjtalk", asr="none", quiet=True))
    build(BuildOptions(corpus="jaspeech-dpo-audio", config="chatbot-arena", input="sample", out=root / "dpo",
                       tts="openjtalk", asr="none", quiet=True))
    return root
