"""CosyVoice2 on transformers + torch only: a batched runtime that loads upstream's unchanged model folder.

Upstream's folder (FunAudioLLM/CosyVoice2-0.5B): cosyvoice2.yaml, llm.pt, flow.pt, hift.pt,
CosyVoice-BlankEN/ (the Qwen2 tokenizer and config), campplus.onnx, speech_tokenizer_v2.onnx.

    config.py    cosyvoice2.yaml as plain data (no hyperpyyaml)
    llm.py       the speech-token LM: Qwen2 weights from llm.pt, batched prefill + static-cache decode
    sampler.py   upstream's repetition-aware sampling in tensor form, per-row counter-based random numbers
    flow.py      the flow-matching decoder (flow.pt), batched with right padding
    hift.py      the HiFT vocoder (hift.pt), one row at a time with a per-row generator
    frontend.py  text tokens and speaker registration (prompt tokens, prompt mel, CAM++ embedding), cached

Nothing here imports upstream's `cosyvoice` package; the tests compare every part with it (the oracle).
"""
