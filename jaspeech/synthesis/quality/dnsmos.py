"""DNSMOS P.835 (SIG, BAK, OVRL) and P.808 of a clip, with Microsoft's ONNX models and our own features.

The models are Microsoft's MIT-licensed DNSMOS (DNS Challenge; Reddy et al., ICASSP 2022), as shipped inside
the `speechmos` wheel (`speechmos/dnsmos_models/sig_bak_ovr.onnx`, `model_v8.onnx`). Only the model files are
read from it: speechmos's own Python imports librosa and requests, which we do not depend on, so the features
are computed here in numpy, as its `DNSMOS.__call__` computes them (tests/synthesis/test_quality.py reproduces
its scores on real clips):

- 16 kHz audio in [-1, 1]; a clip shorter than 9.01 s is repeated (appended to itself) until it is not;
- windows of 9.01 s (144,160 samples): P.835 takes the raw window [N, 144160]; P.808 takes the log-mel of the
  window minus its last 160 samples (librosa's melspectrogram, n_fft 321, hop 160, 120 mels, power_to_db
  ref=max, then (dB + 40) / 40) [N, 900, 120];
- P.835's raw outputs go through the published polynomial calibration; each score is the mean over windows.

Windowing (`windows`): "speechmos" is the package's own loop, windows starting every second up to
int(floor(seconds) - 9.01) + 1 of them; its end index `int((i + 9.01) * 16000)` rounds down to 144,159 samples
for most i >= 7, and such windows are skipped, so a long clip is scored on its first 7-16 s only. "cover"
(the default) takes the fewest 9.01 s windows that cover the clip, evenly spaced from its start to its end
(one window, of the tiled clip, for every clip up to 9.01 s; two up to 18 s, ...): a short clip costs one
window instead of one to seven, and every second of a long clip is heard. `benchmarks/quality.py` compares the two on the bundled samples (see docs/quality.md).

Sessions are made once per process and model file; the windows of every clip of a call go through the
models together along their batch axis, `batch` windows at a time. A window in a batch holds ~140 MB of the
P.835 model's activations (onnxruntime keeps the largest batch's in its arena), and on CPU a window costs the same
in a batch of 1, 4 or 16: the default of 4 bounds the stage at ~0.7 GB, whatever the group's audio (16 held
2.4 GB after a group of short dialogues; `benchmarks/memory.py`).
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from jaspeech.synthesis.audio import resample
from jaspeech.synthesis.mel import melspectrogram, power_to_db

DNSMOS_FIELDS = ("sig", "bak", "ovrl", "p808")
SAMPLE_RATE = 16000
INPUT_LENGTH = 9.01  # seconds: the models' fixed input
WINDOW = int(INPUT_LENGTH * SAMPLE_RATE)  # 144160 samples
WINDOWINGS = ("cover", "speechmos")
# P.835 calibration (speechmos DNSMOS.get_polyfit_val, not personalised): raw model output -> MOS
_POLY = {"sig": np.poly1d([-0.08397278, 1.22083953, 0.0052439]),
         "bak": np.poly1d([-0.13166888, 1.60915514, -0.39604546]),
         "ovrl": np.poly1d([-0.06766283, 1.11546468, 0.04602535])}


class QualityUnavailable(RuntimeError):
    """The models' package is missing; the message says what to install (or to pass --quality none)."""


def model_dir() -> Path:
    """speechmos's `dnsmos_models/` folder, found without importing speechmos (whose code imports librosa)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise QualityUnavailable("the DNSMOS quality stage needs the speechmos package (the MIT-licensed ONNX models "
                                 "ship inside it): pip install 'jaspeech[quality]', or build with --quality none")
    folder = Path(next(iter(spec.submodule_search_locations))) / "dnsmos_models"
    for name in ("sig_bak_ovr.onnx", "model_v8.onnx"):
        if not (folder / name).is_file():
            raise QualityUnavailable(f"{folder / name} is missing: reinstall speechmos==0.0.1.1")
    return folder


def _threads() -> int:
    """JASPEECH_QUALITY_THREADS, else the worker's share of the cores (OMP_NUM_THREADS, set by the local
    executor), else onnxruntime's default (0)."""
    for var in ("JASPEECH_QUALITY_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").strip().isdigit():
            return int(os.environ[var])
    return 0


@lru_cache(maxsize=None)
def _session(path: str, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle threads sleep instead of spinning: the stage runs beside synthesis (run_shard's helper thread), whose
    # threads need the cores; measured no slower alone (docs/quality.md)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def tile(audio: np.ndarray) -> np.ndarray:
    """speechmos's padding of a short clip: appended to itself until it holds a whole window."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise ValueError("an empty clip has no DNSMOS score")
    while audio.size < WINDOW:
        audio = np.append(audio, audio)
    return audio


def window_starts(num_samples: int, windows: str = "cover") -> list[int]:
    """First sample of each 9.01 s window of a 16 kHz clip of `num_samples` samples: for "speechmos" the length
    after tiling, for "cover" the clip's own length (at least one window: a short clip is one window of its
    tiling)."""
    if windows == "speechmos":  # its loop, with its float arithmetic: int((i + 9.01) * 16000) may lose a sample
        hops = int(np.floor(num_samples / SAMPLE_RATE) - INPUT_LENGTH) + 1
        return [int(i * SAMPLE_RATE) for i in range(hops)
                if min(int((i + INPUT_LENGTH) * SAMPLE_RATE), num_samples) - int(i * SAMPLE_RATE) >= WINDOW]
    if windows == "cover":
        k = math.ceil(num_samples / WINDOW)
        if k == 1:
            return [0]
        return [round(j * (num_samples - WINDOW) / (k - 1)) for j in range(k)]
    raise ValueError(f"unknown DNSMOS windowing {windows!r}; choose from {', '.join(WINDOWINGS)}")


def p808_features(windows: np.ndarray) -> np.ndarray:
    """speechmos `audio_melspec` of each window minus its last 160 samples: [N, 900, 120] float32."""
    mel = melspectrogram(windows[:, :-160], SAMPLE_RATE, n_fft=321, hop_length=160, n_mels=120)
    return ((power_to_db(mel) + 40.0) / 40.0).transpose(0, 2, 1).astype(np.float32)


BATCH = 4  # windows per model call: memory grows ~140 MB a window, time does not shrink on CPU


class DNSMOS:
    """`score([(samples, rate), ...]) -> [{sig, bak, ovrl, p808}, ...]`, one dict per clip, in order."""

    name = "dnsmos"

    def __init__(self, windows: str = "cover", batch: int = BATCH, threads: int | None = None) -> None:
        if windows not in WINDOWINGS:
            raise ValueError(f"unknown DNSMOS windowing {windows!r}; choose from {', '.join(WINDOWINGS)}")
        folder = model_dir()
        self.windows, self.batch = windows, max(1, batch)
        threads = _threads() if threads is None else threads
        self._p835 = _session(str(folder / "sig_bak_ovr.onnx"), threads)
        self._p808 = _session(str(folder / "model_v8.onnx"), threads)
        self.version = f"dnsmos-p835-p808/speechmos-{importlib.metadata.version('speechmos')}/{windows}-windows"

    def clip_windows(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """A clip's 9.01 s windows at 16 kHz, [k, 144160] float32 (soxr resampling, as librosa.load does)."""
        audio = np.clip(resample(np.asarray(samples, dtype=np.float32).reshape(-1), sample_rate, SAMPLE_RATE),
                        -1.0, 1.0)
        covered = max(audio.size, WINDOW)  # cover: a clip that fits in one window is one window of its tiling
        audio = tile(audio)
        starts = window_starts(audio.size if self.windows == "speechmos" else covered, self.windows)
        return np.stack([audio[s:s + WINDOW] for s in starts])

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """[N, 4] per window: calibrated SIG, BAK, OVRL and P.808, the models run `batch` windows at a time."""
        out = np.empty((len(windows), 4), dtype=np.float64)
        for lo in range(0, len(windows), self.batch):
            chunk = np.ascontiguousarray(windows[lo:lo + self.batch], dtype=np.float32)
            raw = self._p835.run(None, {"input_1": chunk})[0].astype(np.float64)
            p808 = self._p808.run(None, {"input_1": p808_features(chunk)})[0][:, 0]
            out[lo:lo + len(chunk), 0] = _POLY["sig"](raw[:, 0])
            out[lo:lo + len(chunk), 1] = _POLY["bak"](raw[:, 1])
            out[lo:lo + len(chunk), 2] = _POLY["ovrl"](raw[:, 2])
            out[lo:lo + len(chunk), 3] = p808
        return out

    def score(self, clips: list[tuple[np.ndarray, int]]) -> list[dict[str, float]]:
        if not clips:
            return []
        per_clip = [self.clip_windows(samples, sr) for samples, sr in clips]
        scores = self.score_windows(np.concatenate(per_clip))
        out, start = [], 0
        for w in per_clip:
            mean = scores[start:start + len(w)].mean(axis=0)
            start += len(w)
            out.append(dict(zip(DNSMOS_FIELDS, (float(v) for v in mean))))
        return out
