"""The 20 speaker profiles, the assistant voices, and their deterministic assignment.

A row's speaker is a pure function of (source dataset, source id): a rebuild, a different shard count
or a different worker gives the same voice. Each profile carries the parameters every backend needs:
a Kokoro voice mix (5 Japanese voices blended into 20 timbres), OpenJTalk pitch/speed, and the name of
a reference speaker for zero-shot backends (CosyVoice2 reads `<speakers_dir>/<name>.wav`).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import combinations

KOKORO_VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
N_SPEAKERS = 20


@dataclass(frozen=True)
class SpeakerProfile:
    name: str
    kokoro_mix: tuple[tuple[str, float], ...]  # (voice, weight), weights sum to 1
    speed: float
    half_tone: float  # OpenJTalk pitch shift in semitones


def _build_profiles() -> tuple[SpeakerProfile, ...]:
    mixes: list[tuple[tuple[str, float], ...]] = [((v, 1.0),) for v in KOKORO_VOICES]
    mixes += [((a, 0.5), (b, 0.5)) for a, b in combinations(KOKORO_VOICES, 2)]
    mixes += [((v, 0.7), (KOKORO_VOICES[(i + 2) % 5], 0.3)) for i, v in enumerate(KOKORO_VOICES)]
    speeds = (1.0, 0.95, 1.05, 1.1)
    half_tones = (-4.0, -2.0, 0.0, 2.0, 4.0)
    return tuple(
        SpeakerProfile(
            name=f"spk{i:02d}",
            kokoro_mix=mix,
            speed=speeds[i % len(speeds)],
            half_tone=half_tones[i % len(half_tones)],
        )
        for i, mix in enumerate(mixes)
    )


PROFILES: tuple[SpeakerProfile, ...] = _build_profiles()
assert len(PROFILES) == N_SPEAKERS and len(set(PROFILES)) == N_SPEAKERS


def stable_hash(*parts: str) -> int:
    """A 64-bit hash that is the same in every process and Python version (unlike `hash`)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def assign_speaker(source_dataset: str, source_id: str) -> SpeakerProfile:
    return PROFILES[stable_hash("speaker", source_dataset, source_id) % N_SPEAKERS]


# The assistant's voices in speech-to-speech configs: a small fixed set, each a timbre no user profile has
# (three-voice and 80/20 blends; the user profiles are single voices, halves and 70/30 blends), so the
# assistant never sounds like the row's user. CosyVoice2 reads `<speakers_dir>/asst00.wav` (+ .txt) etc.
ASSISTANT_PROFILES: tuple[SpeakerProfile, ...] = (
    SpeakerProfile("asst00", (("jf_alpha", 0.4), ("jf_gongitsune", 0.3), ("jf_tebukuro", 0.3)), 1.0, 1.0),
    SpeakerProfile("asst01", (("jm_kumo", 0.8), ("jf_nezumi", 0.2)), 1.0, -3.0),
)
assert not {p.kokoro_mix for p in ASSISTANT_PROFILES} & {p.kokoro_mix for p in PROFILES}


def assign_assistant_voice(source_dataset: str, source_id: str) -> SpeakerProfile:
    """The assistant voice of a row: deterministic, one of ASSISTANT_PROFILES (never a user profile)."""
    return ASSISTANT_PROFILES[stable_hash("assistant", source_dataset, source_id) % len(ASSISTANT_PROFILES)]


def speaker_by_name(name: str) -> SpeakerProfile:
    for p in PROFILES + ASSISTANT_PROFILES:
        if p.name == name:
            return p
    raise KeyError(f"unknown speaker {name!r}; known: {', '.join(p.name for p in PROFILES + ASSISTANT_PROFILES)}")
