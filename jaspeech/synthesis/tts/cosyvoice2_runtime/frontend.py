"""CosyVoice2's frontend without upstream: text tokens and zero-shot speaker registration, cached.

Follows upstream FunAudioLLM/CosyVoice (Apache-2.0, Copyright Alibaba Inc., commit 6385656) closely:
cosyvoice/cli/frontend.py (`_extract_text_token`, `_extract_speech_token`, `_extract_spk_embedding`,
`_extract_speech_feat`, `frontend_zero_shot`), cosyvoice/tokenizer/tokenizer.py (`QwenTokenizer`), and the
feature code upstream calls: whisper's `log_mel_spectrogram`, matcha's `mel_spectrogram`, torchaudio's Kaldi
`fbank` and librosa's slaney mel filterbank (jaspeech/synthesis/mel.py, shared with the DNSMOS features), each
reimplemented in numpy/torch so that none of those packages is needed.

A registered speaker (`SpeakerPrompt`) is what upstream's `add_zero_shot_spk` stores in `spk2info`:

    text_tokens    the transcript through the Qwen2 tokenizer (upstream's special tokens added)
    speech_tokens  25 Hz tokens of the 16 kHz prompt (whisper log-mel -> speech_tokenizer_v2.onnx)
    feat           the prompt's 80-bin mel at 24 kHz [2 * len(speech_tokens), 80] (the flow's prompt)
    embedding      CAM++ speaker embedding [192] (Kaldi fbank minus its mean -> campplus.onnx)

One deliberate difference: upstream is handed a 16 kHz tensor and resamples it 16 -> 24 kHz with
torchaudio's sinc `Resample` for the mel. We read the wav ourselves and resample with soxr from the file's
own rate to 16 kHz and, separately, to 24 kHz. So a 24 kHz clip's mel comes from the clip itself rather
than from a 24 -> 16 -> 24 kHz round trip (its top mel bins, near 8 kHz, keep energy that the round trip
cuts), and a 16 kHz clip's mel differs from upstream-with-real-torchaudio by the two resamplers' difference.
Speech tokens and embeddings see the same 16 kHz signal as upstream given soxr's 16 kHz output.

Registration runs two ONNX models, so `load_speakers` keeps the result in one cache file per speaker set
and model (keyed by a digest of every input), shared by all the processes of a build.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from jaspeech.synthesis.mel import mel_filterbank  # noqa: F401  (shared with the DNSMOS features)
from jaspeech.synthesis.tts.cosyvoice2_runtime.config import kwargs, read_config

log = logging.getLogger(__name__)

FRONTEND_VERSION = 1  # bump whenever registration's output changes: old cache files then stop matching
MAX_PROMPT_SECONDS = 30.0  # upstream's speech tokenizer refuses longer prompts
MIN_PROMPT_SECONDS = 0.5  # shorter clips give (almost) no speech tokens; upstream would fail or misbehave
PROMPT_RATE = 16000  # the speech tokenizer and CAM++ take 16 kHz
TOKEN_MEL_RATIO = 2  # CosyVoice2: two 50 Hz mel frames per 25 Hz speech token
SILENCE_PEAK = 1e-4  # -80 dBFS: a clip whose peak is below this holds no voice to clone

# cosyvoice/tokenizer/tokenizer.py QwenTokenizer: the same tokens, in the same order (so the same ids)
SPECIAL_TOKENS = {
    "eos_token": "<|endoftext|>",
    "pad_token": "<|endoftext|>",
    "additional_special_tokens": [
        "<|im_start|>", "<|im_end|>", "<|endofprompt|>",
        "[breath]", "<strong>", "</strong>", "[noise]",
        "[laughter]", "[cough]", "[clucking]", "[accent]",
        "[quick_breath]",
        "<laughter>", "</laughter>",
        "[hissing]", "[sigh]", "[vocalized-noise]",
        "[lipsmack]", "[mn]",
    ],
}
TOKENIZER_DIR = "CosyVoice-BlankEN"
# what AutoTokenizer reads from that folder (its model weights do not change the tokens, so are not hashed)
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", "added_tokens.json")
ONNX_FILES = ("campplus.onnx", "speech_tokenizer_v2.onnx")


# ---------------------------------------------------------------- text tokens


class TextTokenizer:
    """Upstream's QwenTokenizer.encode: the folder's Qwen2 BPE plus CosyVoice's special tokens."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def from_folder(cls, model_folder: str | Path) -> "TextTokenizer":
        from transformers import AutoTokenizer

        path = Path(model_folder) / TOKENIZER_DIR
        if not path.is_dir():
            raise FileNotFoundError(f"{model_folder} has no {TOKENIZER_DIR}/ (the Qwen2 tokenizer): pass the "
                                    "FunAudioLLM/CosyVoice2-0.5B folder as downloaded")
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        tokenizer.add_special_tokens(SPECIAL_TOKENS)
        return cls(tokenizer)

    def encode(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer([text])["input_ids"][0]]


@lru_cache(maxsize=None)
def _tokenizer(folder: str) -> TextTokenizer:
    return TextTokenizer.from_folder(folder)


# ---------------------------------------------------------------- features


def whisper_log_mel(audio_16k: np.ndarray, n_mels: int = 128) -> np.ndarray:
    """whisper.log_mel_spectrogram of a 16 kHz clip: [n_mels, samples // 160] float32 (the speech
    tokenizer's input). 25 ms Hann STFT every 10 ms (centred), power, mel, log10 clipped at 8 below its max."""
    x = torch.from_numpy(np.ascontiguousarray(audio_16k, dtype=np.float32))
    stft = torch.stft(x, 400, 160, window=torch.hann_window(400), return_complex=True)
    power = stft[..., :-1].abs() ** 2
    mel = torch.from_numpy(mel_filterbank(16000, 400, n_mels)) @ power
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def _kaldi_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(f / 700.0)


def _kaldi_mel_banks(num_bins: int, n_fft: int, sample_rate: float, low: float, high: float) -> np.ndarray:
    """Kaldi's triangular filters, equally spaced on 1127 ln(1 + f/700), [num_bins, n_fft // 2 + 1]."""
    high = high if high > 0 else 0.5 * sample_rate + high
    mel_lo, mel_hi = _kaldi_mel(np.float64(low)), _kaldi_mel(np.float64(high))
    edges = mel_lo + (mel_hi - mel_lo) * np.arange(num_bins + 2, dtype=np.float64) / (num_bins + 1)
    m = _kaldi_mel(np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft)[None, :]
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    banks = np.clip(np.minimum((m - left) / (centre - left), (right - m) / (right - centre)), 0.0, None)
    banks[:, -1] = 0.0  # Kaldi's banks stop below Nyquist
    return banks.astype(np.float32)


def kaldi_fbank(audio_16k: np.ndarray, num_mel_bins: int = 80, sample_rate: float = 16000.0,
                frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0, low_freq: float = 20.0,
                high_freq: float = 0.0, preemphasis: float = 0.97) -> np.ndarray:
    """torchaudio.compliance.kaldi.fbank with upstream's arguments (dither 0) and Kaldi's other defaults.

    [frames, num_mel_bins] float32: frames that fit in the clip (snip_edges), per-frame DC removal,
    pre-emphasis, Povey window (Hann ** 0.85), FFT size rounded up to a power of two, power spectrum,
    Kaldi mel filters, natural log floored at float32 epsilon (use_energy off, so energy_floor is unused).
    """
    x = torch.from_numpy(np.ascontiguousarray(audio_16k, dtype=np.float32))
    size = int(sample_rate * frame_length_ms / 1000)
    shift = int(sample_rate * frame_shift_ms / 1000)
    if x.numel() < size:
        return np.zeros((0, num_mel_bins), np.float32)
    frames = x.unfold(0, size, shift).clone()
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - preemphasis * previous
    frames = frames * torch.hann_window(size, periodic=False).pow(0.85)
    n_fft = 1 << math.ceil(math.log2(size))
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)
    banks = torch.from_numpy(_kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, low_freq, high_freq))
    return torch.clamp(power @ banks.T, min=torch.finfo(torch.float32).eps).log().numpy()


def prompt_mel(audio: np.ndarray, n_fft: int, num_mels: int, sampling_rate: int, hop_size: int, win_size: int,
               fmin: float, fmax: float, center: bool = False) -> np.ndarray:
    """matcha.utils.audio.mel_spectrogram (cosyvoice2.yaml's feat_extractor), transposed to [frames,
    num_mels] float32: reflect-pad (n_fft - hop) / 2 each side, Hann STFT, magnitude, slaney mel, log."""
    y = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
    pad = int((n_fft - hop_size) / 2)
    y = F.pad(y[:, None], (pad, pad), mode="reflect")[:, 0]
    spec = torch.view_as_real(torch.stft(y, n_fft, hop_length=hop_size, win_length=win_size,
                                         window=torch.hann_window(win_size), center=center, pad_mode="reflect",
                                         normalized=False, onesided=True, return_complex=True))
    spec = torch.sqrt(spec.pow(2).sum(-1) + 1e-9)
    mel = torch.from_numpy(mel_filterbank(sampling_rate, n_fft, num_mels, fmin, fmax)) @ spec
    return torch.log(torch.clamp(mel, min=1e-5))[0].T.contiguous().numpy()


# ---------------------------------------------------------------- ONNX models


@lru_cache(maxsize=None)
def onnx_session(path: str, cuda: bool = False):
    """One onnxruntime session per model file and process, as upstream builds them: all graph
    optimisations, one intra-op thread; CUDA only when asked and the installed onnxruntime offers it."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return onnxruntime.InferenceSession(path, sess_options=options, providers=providers)


def _model_file(model_folder: str | Path, name: str) -> str:
    path = Path(model_folder) / name
    if not path.is_file():
        raise FileNotFoundError(f"{model_folder} has no {name}: pass the FunAudioLLM/CosyVoice2-0.5B folder as "
                                "downloaded (it holds campplus.onnx and speech_tokenizer_v2.onnx)")
    return str(path)


def speech_tokens(model_folder: str | Path, audio_16k: np.ndarray) -> list[int]:
    """25 Hz speech tokens of a 16 kHz clip (upstream `_extract_speech_token`; upstream puts this model on
    CUDA when it can, campplus always on CPU: so do we)."""
    session = onnx_session(_model_file(model_folder, "speech_tokenizer_v2.onnx"), cuda=True)
    feat = whisper_log_mel(audio_16k, n_mels=128)[None]
    inputs = session.get_inputs()
    out = session.run(None, {inputs[0].name: feat, inputs[1].name: np.array([feat.shape[2]], dtype=np.int32)})
    return [int(t) for t in np.asarray(out[0]).reshape(-1)]


def speaker_embedding(model_folder: str | Path, audio_16k: np.ndarray) -> np.ndarray:
    """CAM++ embedding [192] float32 of a 16 kHz clip (upstream `_extract_spk_embedding`)."""
    session = onnx_session(_model_file(model_folder, "campplus.onnx"))
    feat = kaldi_fbank(audio_16k, num_mel_bins=80, sample_rate=PROMPT_RATE)
    feat = feat - feat.mean(axis=0, keepdims=True)
    out = session.run(None, {session.get_inputs()[0].name: feat[None]})
    return np.asarray(out[0], dtype=np.float32).reshape(-1)


# ---------------------------------------------------------------- registration


@dataclass(frozen=True, eq=False)
class SpeakerPrompt:
    """One zero-shot speaker, as upstream's spk2info holds it (numpy arrays: eq=False, compare fields)."""

    name: str
    text: str  # the transcript of the clip
    text_tokens: list[int]
    speech_tokens: list[int]
    feat: np.ndarray  # float32 [2 * len(speech_tokens), 80]: the prompt mel at the model's rate
    embedding: np.ndarray  # float32 [192]


@lru_cache(maxsize=None)
def _feat_config(folder: str) -> tuple[int, dict]:
    """(the model's sample rate, the feat_extractor's arguments) from cosyvoice2.yaml."""
    config = read_config(folder)
    node = config.get("feat_extractor") or {}
    if node.get("_name") != "matcha.utils.audio.mel_spectrogram":
        raise ValueError(f"{folder}/cosyvoice2.yaml: feat_extractor is {node.get('_name')!r}; this runtime "
                         "implements CosyVoice2's matcha.utils.audio.mel_spectrogram only")
    return int(config["sample_rate"]), kwargs(node)


def read_prompt(wav: str | Path) -> tuple[np.ndarray, int]:
    """A reference clip as mono float32 at its own rate, checked: readable, not silent, 0.5-30 s."""
    path = Path(wav)
    if not path.is_file():
        raise FileNotFoundError(f"reference clip {path} does not exist: each speaker needs <name>.wav (a 3-10 s "
                                "recording) and <name>.txt (its transcript)")
    try:
        import soundfile as sf  # registration only (a cached speaker set needs neither soundfile nor soxr)

        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise ValueError(f"cannot read reference clip {path}: {e}; it must be a wav file (3-10 s of speech)") from e
    audio = audio.mean(axis=1)
    if not audio.size or float(np.abs(audio).max()) < SILENCE_PEAK:
        raise ValueError(f"reference clip {path} is empty or silent; use a 3-10 s recording of its .txt")
    seconds = audio.size / sr
    if seconds > MAX_PROMPT_SECONDS:
        raise ValueError(f"reference clip {path} lasts {seconds:.1f} s; upstream takes at most "
                         f"{MAX_PROMPT_SECONDS:.0f} s (3-10 s is best): cut it, and its .txt to match")
    if seconds < MIN_PROMPT_SECONDS:
        raise ValueError(f"reference clip {path} lasts {seconds:.2f} s, too short to clone a voice from; "
                         "use a 3-10 s recording")
    return np.ascontiguousarray(audio, dtype=np.float32), int(sr)


def register_speaker(model_folder: str | Path, wav: str | Path, text: str, name: str, *,
                     tokenizer: TextTokenizer | None = None) -> SpeakerPrompt:
    """Upstream's `add_zero_shot_spk(text, prompt_speech_16k, name)` from the wav itself (see the module
    docstring for the resampling difference)."""
    text = text.strip()
    if not text:
        raise ValueError(f"speaker {name}: the transcript is empty; <name>.txt must hold what {Path(wav).name} says")
    audio, sr = read_prompt(wav)
    sample_rate, feat_args = _feat_config(str(model_folder))
    import soxr

    audio_16k = audio if sr == PROMPT_RATE else soxr.resample(audio, sr, PROMPT_RATE)
    audio_model = audio if sr == sample_rate else soxr.resample(audio, sr, sample_rate)
    tokenizer = tokenizer or _tokenizer(str(model_folder))

    feat = prompt_mel(audio_model, **feat_args)
    tokens = speech_tokens(model_folder, audio_16k)
    n = min(feat.shape[0] // TOKEN_MEL_RATIO, len(tokens))  # frontend_zero_shot: feat = 2 x tokens exactly
    return SpeakerPrompt(name=name, text=text, text_tokens=tokenizer.encode(text), speech_tokens=tokens[:n],
                         feat=np.ascontiguousarray(feat[:TOKEN_MEL_RATIO * n], dtype=np.float32),
                         embedding=speaker_embedding(model_folder, audio_16k))


# ---------------------------------------------------------------- speakers folder + cache


def _speaker_files(speakers_folder: Path, names: list[str]) -> dict[str, tuple[Path, str]]:
    """{name: (wav path, transcript)}, with what to add when a file is missing or a transcript empty."""
    missing = [f"{n}{suffix}" for n in names for suffix in (".wav", ".txt")
               if not (speakers_folder / f"{n}{suffix}").is_file()]
    if missing:
        raise FileNotFoundError(
            f"speakers folder {speakers_folder} lacks {', '.join(missing[:6])}{'...' if len(missing) > 6 else ''}: "
            "each speaker needs <name>.wav (a 3-10 s reference clip) and <name>.txt (its transcript)")
    files = {}
    for n in names:
        text = (speakers_folder / f"{n}.txt").read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"{speakers_folder / n}.txt is empty: it must hold the transcript of {n}.wav")
        files[n] = (speakers_folder / f"{n}.wav", text)
    return files


def _file_digest(path: Path) -> str:
    st = path.stat()
    return _file_digest_at(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=None)
def _file_digest_at(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, once per process and version of the file (speech_tokenizer_v2.onnx is ~500 MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):  # hashlib.file_digest is 3.11+; we support 3.10
            h.update(block)
    return h.hexdigest()


def speakers_digest(model_folder: str | Path, files: dict[str, tuple[Path, str]]) -> str:
    """What a cached registration depends on: the frontend's version, cosyvoice2.yaml, the two ONNX
    models, the tokenizer files, and each speaker's name, wav bytes and transcript."""
    folder = Path(model_folder)
    h = hashlib.sha256(f"jaspeech cosyvoice2 frontend v{FRONTEND_VERSION}\n".encode())
    model = [folder / "cosyvoice2.yaml", *(folder / f for f in ONNX_FILES),
             *(folder / TOKENIZER_DIR / f for f in TOKENIZER_FILES if (folder / TOKENIZER_DIR / f).is_file())]
    for path in model:
        h.update(f"{path.relative_to(folder).as_posix()} {_file_digest(path)}\n".encode())
    for name in sorted(files):
        wav, text = files[name]
        h.update(f"speaker {json.dumps(name)} {_file_digest(wav)} {json.dumps(text, ensure_ascii=False)}\n".encode())
    return h.hexdigest()


def _read_cache(path: Path, digest: str, files: dict[str, tuple[Path, str]]) -> dict[str, SpeakerPrompt] | None:
    """The cached prompts when `path` holds exactly this digest's speakers; None (recompute) otherwise."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"][()]))
            if meta["version"] != FRONTEND_VERSION or meta["digest"] != digest:
                raise ValueError("digest mismatch")
            prompts = {}
            for i, entry in enumerate(meta["speakers"]):
                speech = [int(t) for t in data[f"speech_tokens_{i}"]]
                feat = np.ascontiguousarray(data[f"feat_{i}"], dtype=np.float32)
                embedding = np.ascontiguousarray(data[f"embedding_{i}"], dtype=np.float32)
                if feat.ndim != 2 or feat.shape[0] != TOKEN_MEL_RATIO * len(speech) or embedding.ndim != 1:
                    raise ValueError(f"speaker {entry['name']}: inconsistent shapes")
                prompts[entry["name"]] = SpeakerPrompt(
                    name=entry["name"], text=entry["text"], text_tokens=[int(t) for t in data[f"text_tokens_{i}"]],
                    speech_tokens=speech, feat=feat, embedding=embedding)
        if {n: p.text for n, p in prompts.items()} != {n: text for n, (_, text) in files.items()}:
            raise ValueError("speakers differ")
        return prompts
    except Exception as e:  # a truncated, foreign or tampered file: never trusted, recomputed
        log.warning("speaker cache %s is unusable (%s); registering the speakers again", path, e)
        return None


def _write_cache(path: Path, digest: str, prompts: dict[str, SpeakerPrompt]) -> None:
    """Write atomically (a temporary file in the same folder, then os.replace): concurrent tasks that
    race on the same digest each write a whole, identical file, and no reader ever sees half of one."""
    names = sorted(prompts)
    meta = {"version": FRONTEND_VERSION, "digest": digest,
            "speakers": [{"name": n, "text": prompts[n].text} for n in names]}
    arrays = {"meta": np.array(json.dumps(meta, ensure_ascii=False))}
    for i, n in enumerate(names):
        p = prompts[n]
        arrays.update({f"text_tokens_{i}": np.asarray(p.text_tokens, np.int64),
                       f"speech_tokens_{i}": np.asarray(p.speech_tokens, np.int64),
                       f"feat_{i}": p.feat, f"embedding_{i}": p.embedding})
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the build's other users read it too
        os.replace(tmp, path)
        tmp = None
    except OSError as e:  # the prompts are right either way; only the next process pays for it
        log.warning("cannot write the speaker cache %s (%s); speakers will be registered again next time", path, e)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def cache_path(cache_dir: str | Path, digest: str) -> Path:
    return Path(cache_dir) / f"cosyvoice2-speakers-{digest[:20]}.npz"


def load_speakers(model_folder: str | Path, speakers_folder: str | Path, names: Iterable[str],
                  cache_dir: str | Path | None = None) -> dict[str, SpeakerPrompt]:
    """Register each named speaker from `<speakers_folder>/<name>.wav` + `<name>.txt`, in `names`' order.

    With `cache_dir`, the result is read from / written to one file there, named by a digest of every
    input (`speakers_digest`): a changed clip, transcript, model file or frontend version gives another
    digest and so a fresh registration; a corrupt file is recomputed and replaced.
    """
    names = list(dict.fromkeys(names))
    files = _speaker_files(Path(speakers_folder), names)
    digest = path = None
    if cache_dir is not None:
        digest = speakers_digest(model_folder, files)
        path = cache_path(cache_dir, digest)
        cached = _read_cache(path, digest, files)
        if cached is not None:
            return {n: cached[n] for n in names}
    tokenizer = _tokenizer(str(model_folder))
    prompts = {n: register_speaker(model_folder, wav, text, n, tokenizer=tokenizer) for n, (wav, text) in files.items()}
    if path is not None:
        _write_cache(path, digest, prompts)
    return prompts
