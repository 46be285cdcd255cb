"""JaSpeechLLM (transformers style), its training recipes (`jaspeech.model.train`), and evaluation.

`from jaspeech.model import JaSpeechLLMConfig, JaSpeechLLMForConditionalGeneration, JaSpeechLLMProcessor`
imports the model and registers it with `AutoConfig`, `AutoModel`, `AutoModelForCausalLM` and
`AutoProcessor`, so a saved checkpoint loads without `trust_remote_code`. The import is lazy: the
evaluation modules here (`evaluation`, `report`, ...) work without torch or transformers.
`from_pretrained_parts` (`jaspeech.model.parts`) assembles a new model from a Whisper and an LLM checkpoint.
"""
from __future__ import annotations

_EXPORTS = ("JaSpeechLLMConfig", "JaSpeechLLMForConditionalGeneration", "JaSpeechLLMProcessor", "audio_tokens_for",
            "from_pretrained_parts")
__all__ = list(_EXPORTS)


def register() -> None:
    """Register JaSpeechLLM with the transformers Auto classes (idempotent)."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoProcessor

    from jaspeech.model.configuration_jaspeech_llm import JaSpeechLLMConfig
    from jaspeech.model.modeling_jaspeech_llm import JaSpeechLLMForConditionalGeneration
    from jaspeech.model.processing_jaspeech_llm import JaSpeechLLMProcessor

    AutoConfig.register("jaspeech_llm", JaSpeechLLMConfig, exist_ok=True)
    AutoModel.register(JaSpeechLLMConfig, JaSpeechLLMForConditionalGeneration, exist_ok=True)
    AutoModelForCausalLM.register(JaSpeechLLMConfig, JaSpeechLLMForConditionalGeneration, exist_ok=True)
    AutoProcessor.register(JaSpeechLLMConfig, JaSpeechLLMProcessor, exist_ok=True)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(name)
    register()
    from jaspeech.model import configuration_jaspeech_llm, modeling_jaspeech_llm, parts, processing_jaspeech_llm

    for module in (configuration_jaspeech_llm, modeling_jaspeech_llm, processing_jaspeech_llm, parts):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(name)
