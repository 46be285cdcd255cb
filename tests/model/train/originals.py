"""Local dataset folders in exactly the published schemas of the original ja-speech-llm corpora.

Each is one Parquet file with HF features (Audio as FLAC bytes), written with `datasets`, in a repo
layout with one default config, like the hub repos:
`Atotti/spoken-magpie-ja` (instruction, instruction_audio, response), `Atotti/spoken-multiturn-sft`
(q1, q1_audio, a1, q2, q2_audio, a2), `Atotti/spoken-dpo-49k` (prompt: [{from, value, audio}], chosen,
rejected), `Atotti/fsd50k-{cc0,ccby}-Qwen3-Omni-captioned` (audio, caption), `openslr/librispeech_asr`
(audio, text, ...), `kanhatakeyama/ramdom-to-fixed-multiturn-Calm3` (messages: [{role, content}]).
The column names follow the original's readers (src/speech_llm_ja/datasets.py).
"""
from __future__ import annotations

import io
from pathlib import Path

import datasets
import numpy as np
import soundfile as sf

AUDIO = datasets.Audio(sampling_rate=16000)
TEXT = datasets.Value("string")


def flac(seconds: float, sr: int = 16000, pitch: float = 7.0) -> dict:
    buf = io.BytesIO()
    sf.write(buf, (np.sin(np.arange(int(seconds * sr)) / pitch) * 0.2).astype(np.float32), sr, format="FLAC")
    return {"bytes": buf.getvalue(), "path": f"{seconds}s.flac"}


def write(folder: Path, rows: list[dict], features: dict, split: str = "train") -> str:
    ds = datasets.Dataset.from_list(rows, features=datasets.Features(features))
    (folder / "data").mkdir(parents=True)
    ds.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    (folder / "README.md").write_text(f"---\nconfigs:\n- config_name: default\n  data_files:\n  - split: {split}\n"
                                      f"    path: data/{split}-*.parquet\n---\n", encoding="utf-8")
    return str(folder)


def magpie(folder: Path, rows: list[tuple[str, dict, str]]) -> str:
    """[(instruction text, audio, response)]"""
    return write(folder, [{"instruction": q, "instruction_audio": a, "response": r} for q, a, r in rows],
                 {"instruction": TEXT, "instruction_audio": AUDIO, "response": TEXT})


def multiturn(folder: Path, n: int = 3) -> str:
    rows = [{"q1": f"質問{i}", "q1_audio": flac(1.0 + i), "a1": f"答え{i}", "q2": f"次の質問{i}",
             "q2_audio": flac(0.5, pitch=5.0), "a2": f"次の答え{i}"} for i in range(n)]
    return write(folder, rows, {"q1": TEXT, "q1_audio": AUDIO, "a1": TEXT, "q2": TEXT, "q2_audio": AUDIO, "a2": TEXT})


def dpo(folder: Path, n: int = 3) -> str:
    rows = [{"prompt": [{"from": "human", "value": f"質問{i}", "audio": flac(1.0)},
                        {"from": "gpt", "value": f"前の答え{i}", "audio": None},
                        {"from": "human", "value": f"追加の質問{i}", "audio": flac(0.5, pitch=5.0)}],
             "chosen": f"良い答え{i}です。", "rejected": f"悪い{i}"} for i in range(n)]
    return write(folder, rows, {"prompt": [{"from": TEXT, "value": TEXT, "audio": AUDIO}],
                                "chosen": TEXT, "rejected": TEXT})


def captions(folder: Path, n: int = 3) -> str:
    return write(folder, [{"audio": flac(1.0 + i), "caption": f"犬が{i}回吠えている。"} for i in range(n)],
                 {"audio": AUDIO, "caption": TEXT})


def librispeech(folder: Path, n: int = 3) -> str:
    rows = [{"file": f"{i}.flac", "audio": flac(1.0), "text": f"HELLO WORLD {i}", "speaker_id": 1, "chapter_id": 2,
             "id": f"1-2-{i}"} for i in range(n)]
    return write(folder, rows, {"file": TEXT, "audio": AUDIO, "text": TEXT, "speaker_id": datasets.Value("int64"),
                                "chapter_id": datasets.Value("int64"), "id": TEXT})


def asr(folder: Path, n: int = 3) -> str:
    """ReazonSpeech-style (japanese-asr/whisper_transcriptions.reazonspeech.all): audio, transcription."""
    return write(folder, [{"audio": flac(1.0), "transcription": f"こんにちは{i}"} for i in range(n)],
                 {"audio": AUDIO, "transcription": TEXT})


def text_chats(folder: Path, n: int = 2, split: str = "20240806filtered") -> str:
    rows = [{"messages": [{"role": "user", "content": f"問{i}"}, {"role": "assistant", "content": f"答{i}"},
                          {"role": "user", "content": f"続き{i}"}, {"role": "assistant", "content": f"続きの答{i}"}]}
            for i in range(n)]
    return write(folder, rows, {"messages": [{"role": TEXT, "content": TEXT}]}, split=split)
