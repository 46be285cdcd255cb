"""Prompt formats: the LLM's own chat template (ours) or the original ja-speech-llm's `### 指示:` format.

`chat` renders chat messages with the tokenizer's chat template; the task instruction follows the audio.
`original-v2` is the format of the released chat model (`Atotti/llm-jp-4-8b-speech-chat`): a system line,
the audio between `<|reserved_343|>` and `<|reserved_342|>`, then `### 指示:` / `### 応答:` per turn and
`<|eos|>` at the end. `original-v1` is the format of the checkpoints behind the published CER rows: the
audio first (before the tokenizer's BOS), no system line, no markers. Both use the original's
instructions (`音声を書き起こしてください。` ...) and its spoken-instruction line.

Messages are chat messages in every format; a user message that starts with the audio token carries a
clip, the rest of its content is the instruction text.
"""
from __future__ import annotations

PROMPT_FORMATS = ("chat", "original-v1", "original-v2")

CHAT_INSTRUCTIONS = {
    "asr_ja": "音声を書き起こしてください。",
    "asr_en": "Transcribe the audio into English text.",
    "caption": "Describe the sound in detail in English.",
}
# The original's task instructions (datasets.py, train.py, finetune.py of Atotti/ja-speech-llm)
SPOKEN_INSTRUCTION = "これはタスクを説明する音声の指示です。要求を適切に満たす応答を書きなさい。"
ORIGINAL_INSTRUCTIONS = {
    "asr_ja": "音声を書き起こしてください。",
    "asr_en": "Transcribe the audio.",
    "caption": "音声を説明してください。",
    "instruction": SPOKEN_INSTRUCTION,
}
ORIGINAL_V1_INSTRUCTIONS = {**ORIGINAL_INSTRUCTIONS, "caption": "音声の内容を説明してください。"}
AUDIO_SYSTEM = "あなたは音声を理解できるAIアシスタントです。"
TEXT_SYSTEM = "あなたは親切なAIアシスタントです。"
AUDIO_START, AUDIO_END, ORIGINAL_EOS = "<|reserved_343|>", "<|reserved_342|>", "<|eos|>"
ORIGINAL_SPECIAL_TOKENS = [AUDIO_START, AUDIO_END, ORIGINAL_EOS]
INSTRUCTION_HEADER = "### 指示:\n"  # opens every user turn of the original formats


def check_format(prompt_format: str) -> str:
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, not {prompt_format!r}")
    return prompt_format


def task_messages(prompt_format: str, audio_token: str, task: str, turns: list[dict] | None = None) -> list[dict]:
    """Chat messages for a task. `turns` (instruction, dpo, text): [{role, text, spoken}]."""
    original = prompt_format != "chat"
    instructions = ORIGINAL_V1_INSTRUCTIONS if prompt_format == "original-v1" else ORIGINAL_INSTRUCTIONS
    if task in ("asr_ja", "asr_en", "caption"):
        if original:
            messages = [{"role": "user", "content": audio_token + instructions[task]}]
        else:
            messages = [{"role": "user", "content": f"{audio_token}\n{CHAT_INSTRUCTIONS[task]}"}]
    elif task in ("instruction", "dpo", "text"):
        messages = []
        for t in turns or []:
            if t.get("spoken"):  # the audio is the instruction; the original adds its fixed instruction line
                messages.append({"role": t["role"], "content": audio_token + (SPOKEN_INSTRUCTION if original else "")})
            else:
                messages.append({"role": t["role"], "content": t["text"]})
    else:
        raise ValueError(f"unknown task {task!r}; choose asr_ja, asr_en, caption, instruction, dpo, text")
    if prompt_format == "original-v2":
        spoken = any(m["content"].startswith(audio_token) for m in messages)
        messages = [{"role": "system", "content": AUDIO_SYSTEM if spoken else TEXT_SYSTEM}] + messages
    return messages


def render_original(messages: list[dict], prompt_format: str, audio_token: str, bos: str,
                    add_generation_prompt: bool) -> str:
    """The original's prompt string, exactly as its collators build it (BOS written out as text).

    v2 (finetune.py `build_multiturn_prompt`): `{bos}{system}\\n\\n` then per turn
    `[<|reserved_343|>AUDIO<|reserved_342|>]### 指示:\\n{instruction}\\n\\n### 応答:\\n{response}`, turns
    joined by `\\n\\n`. v1 (the first train.py and tools/eval_jsut.py): `AUDIO{bos}### 指示:\\n...`.
    The caller appends the response and `<|eos|>` for training.
    """
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    clips = sum(m["content"].startswith(audio_token) for m in turns if m["role"] == "user")
    if prompt_format == "original-v1":
        if clips > 1:
            raise ValueError("original-v1 puts one clip before the prompt; use original-v2 for several clips")
        out = (audio_token if clips else "") + bos
    else:
        out = bos + (system[0] + "\n\n" if system else "")
    parts = []
    for m in turns:
        content = m["content"]
        if m["role"] == "user":
            spoken = content.startswith(audio_token)
            text = content[len(audio_token):] if spoken else content
            marker = AUDIO_START + audio_token + AUDIO_END if spoken and prompt_format == "original-v2" else ""
            parts.append(f"{marker}{INSTRUCTION_HEADER}{text}\n\n### 応答:\n")
        else:
            parts[-1:] = [(parts[-1] if parts else "") + content + "\n\n"]
    out += "".join(parts)
    if not add_generation_prompt and out.endswith("\n\n"):
        out = out[:-2]
    return out


def original_user_turns(text: str) -> int:
    """User turns in a prompt rendered in an original format: one `### 指示:` header opens each.

    The processor only sees rendered text, and the original's multi-turn audio rule (see
    `JaSpeechLLMProcessor`, `multi_turn_audio`) depends on this count. An instruction that itself contains
    the header line would be miscounted; the original's instructions and its data never do.
    """
    return text.count(INSTRUCTION_HEADER)
