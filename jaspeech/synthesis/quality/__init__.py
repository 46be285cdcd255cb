"""Does it sound like speech? Per-clip quality scores beside the round trip's "were the words right?".

Two parts, both on the clip as stored (decoded from the row's FLAC, so `jaspeech rescore` reproduces what the
build wrote):

- `signal.signal_checks`: peak, clipping, leading / trailing / longest internal silence, RMS level;
  computed for every spoken turn (a few ms per clip).
- a MOS model behind `QualityScorer.score([(samples, rate), ...]) -> [{sig, bak, ovrl, p808}, ...]`
  (batched; a clip's score never depends on the other clips of the call): `dnsmos.DNSMOS`, Microsoft's
  DNSMOS P.835 + P.808 ONNX models. `--quality none` skips it (scores null), for scale benchmarks.
"""
from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from jaspeech.synthesis.quality.dnsmos import DNSMOS_FIELDS, QualityUnavailable  # noqa: F401
from jaspeech.synthesis.quality.signal import SIGNAL_FIELDS, signal_checks  # noqa: F401

QUALITY_BACKENDS = ("dnsmos", "none")


def default_quality() -> str:
    """What a build scores with when `--quality` is not given: dnsmos, or $JASPEECH_QUALITY (the test suite
    sets `none`, so only the tests about quality pay for the model; the plan records the value used)."""
    return os.environ.get("JASPEECH_QUALITY", "").strip() or "dnsmos"


class QualityScorer(Protocol):
    name: str
    version: str  # recorded in shard manifests: `jaspeech rescore` skips shards scored by the same version

    def score(self, clips: list[tuple[np.ndarray, int]]) -> list[dict[str, float]]: ...


def make_quality(name: str) -> QualityScorer | None:
    """The scorer `--quality NAME` names (loaded once per process), or None for `none`."""
    if name == "none":
        return None
    if name == "dnsmos":
        from jaspeech.synthesis.quality.dnsmos import DNSMOS

        return DNSMOS()
    raise ValueError(f"unknown --quality {name!r}; choose from {', '.join(QUALITY_BACKENDS)}")


def scorer_version(scorer: QualityScorer | None) -> str:
    return scorer.version if scorer is not None else "none"
