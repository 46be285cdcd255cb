"""`fsd50k-cc-captions`: the CC0 and CC-BY clips of FSD50K with English captions.

Configs `cc0` and `cc-by` read the same release; each keeps the clips of its licence. Every other clip
is recorded as a reject of that config: `license` (by-nc, sampling+, unknown or missing: never
published), `not_in_config` (the other publishable licence), or a path, audio or caption problem.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from datasets import Audio, Features, List, Value

from jaspeech.builders.corpus import CorpusSpec, OriginalRelease, SourceConfig
from jaspeech.builders.pipeline import Timers
from jaspeech.builders.schema import RowReject, prepare_each
from jaspeech.captioning import make_captioner
from jaspeech.captioning.base import CaptionError, Clip
from jaspeech.captioning.filters import CaptionLimits, check_caption
from jaspeech.captioning.fsd50k import (
    PUBLISHABLE,
    check_release,
    freesound_url,
    iter_clips,
    license_class,
    resolve_audio,
)
from jaspeech.synthesis.audio import to_mono_float32

FEATURES = Features({
    "id": Value("string"),  # Freesound id
    "audio": Audio(),  # the original clip, FLAC (lossless)
    "caption": Value("string"),
    "captioner": Value("string"),
    "labels": List(Value("string")),
    "license": Value("string"),  # the licence URL from Freesound
    "uploader": Value("string"),
    "title": Value("string"),
    "freesound_url": Value("string"),
    "fsd50k_split": Value("string"),  # train | val | eval
    "duration": Value("float32"),
})

_LOSSLESS = {"PCM_16": "PCM_16", "PCM_24": "PCM_24", "PCM_S8": "PCM_S8", "PCM_U8": "PCM_S8"}


class ReleaseSource:
    """An extracted FSD50K release as an input: same interface as `sources.InputSource`."""

    def __init__(self, spec: str, config_name: str, hub_id: str, split: str = "train") -> None:
        self.root = Path(spec)
        if not self.root.is_dir():
            raise FileNotFoundError(f"--input {spec!r} must be an extracted FSD50K release folder")
        check_release(self.root)  # the layout is checked now, not in a worker

    def iter_rows(self, shard: int = 0, num_shards: int = 1, limit: int | None = None):
        for pos, row in enumerate(iter_clips(self.root)):
            if limit is not None and pos >= limit:
                return
            if pos % num_shards == shard:
                yield pos, row

    def count(self, limit: int | None = None) -> int:
        n = sum(1 for _ in iter_clips(self.root))
        return n if limit is None else min(n, limit)


@dataclass
class PendingClip:
    position: int
    source_id: str
    row: dict
    clip: Clip
    flac: bytes

    def reject(self, reason: str, detail: str) -> RowReject:
        return RowReject(reason, detail, position=self.position, source_id=self.source_id)


def read_lossless(path: Path) -> tuple[bytes, np.ndarray, int]:
    """The clip as FLAC bytes with its original sample format, plus float samples for the captioner."""
    import io

    info = sf.info(str(path))
    subtype = _LOSSLESS.get(info.subtype)
    if subtype is None:
        raise ValueError(f"{info.subtype} samples cannot be stored losslessly as FLAC")
    data, sr = sf.read(str(path), dtype="int32" if subtype == "PCM_24" else "int16", always_2d=False)
    if data.size == 0:
        raise ValueError("no samples")
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="FLAC", subtype=subtype)
    return buf.getvalue(), to_mono_float32(data), int(sr)


class CaptionBuilder:
    """prepare: licence, path and audio checks; finish: caption a batch, filter, retry once, reject."""

    def __init__(self, config: SourceConfig, captioner, limits: CaptionLimits = CaptionLimits()) -> None:
        self.config, self.captioner, self.limits = config, captioner, limits
        self.timers = Timers()

    def prepare(self, position: int, raw: dict, source_id: str) -> PendingClip:
        if not raw.get("has_metadata"):
            raise RowReject("missing_metadata", f"clip {raw.get('id')!r} has no entry in the clips info JSON")
        kind = license_class(raw.get("license"))
        if kind is None:
            raise RowReject("license", f"unknown or missing licence {raw.get('license')!r}: never guessed")
        if kind not in PUBLISHABLE:
            raise RowReject("license", f"{kind} is never published")
        if kind != self.config.name:
            raise RowReject("not_in_config", f"{kind} clip: it belongs to config {kind}")
        try:
            path = resolve_audio(raw)
        except ValueError as e:
            raise RowReject("bad_path", str(e)) from None
        if not path.is_file():
            raise RowReject("missing_audio", f"{path.name} is not in {path.parent.name}")
        try:
            flac, samples, sr = read_lossless(path)
        except Exception as e:  # corrupt or unreadable file
            raise RowReject("broken_audio", f"{path.name}: {type(e).__name__}: {e}") from None
        clip = Clip(id=raw["id"], samples=samples, sample_rate=sr, labels=raw.get("labels") or [])
        return PendingClip(position, source_id, raw, clip, flac)

    def prepare_group(self, rows: list[tuple[int, dict, str]]) -> list[PendingClip | RowReject]:
        """`prepare` for each row of a group (the captioner batches in `finish`, not here)."""
        return prepare_each(self.prepare, rows)

    def _caption(self, pending: list[PendingClip]) -> list[str | CaptionError]:
        t0 = time.perf_counter()
        try:
            return self.captioner.caption([p.clip for p in pending])
        except Exception as e:
            return [CaptionError(f"{type(e).__name__}: {e}")] * len(pending)
        finally:
            self.timers.caption += time.perf_counter() - t0

    def _verdict(self, caption: str | CaptionError) -> str | None:
        if isinstance(caption, CaptionError):
            return "captioner_error"
        return check_caption(caption, self.limits)

    def finish(self, pending: list[PendingClip]) -> list[dict | RowReject]:
        captions = self._caption(pending) if pending else []
        retry = [n for n, c in enumerate(captions) if self._verdict(c)]
        if retry:  # one more try for each failing clip, then its reason stands
            for n, c in zip(retry, self._caption([pending[n] for n in retry])):
                if not self._verdict(c) or isinstance(captions[n], CaptionError):
                    captions[n] = c
        out: list[dict | RowReject] = []
        for p, caption in zip(pending, captions):
            reason = self._verdict(caption)
            if reason:
                detail = str(caption) if isinstance(caption, CaptionError) else repr(caption)[:300]
                out.append(p.reject(reason, f"after a retry: {detail}"))
                continue
            r = p.row
            out.append({
                "id": r["id"],
                "audio": {"bytes": p.flac, "path": f"{r['id']}.flac"},
                "caption": caption.strip(),
                "captioner": self.captioner.name,
                "labels": r.get("labels") or [],
                "license": r["license"].strip(),
                "uploader": r.get("uploader") or "",
                "title": r.get("title") or "",
                "freesound_url": freesound_url(r["id"]),
                "fsd50k_split": r.get("fsd50k_split") or "",
                "duration": len(p.clip.samples) / p.clip.sample_rate,
            })
        return out


def make_builder(spec: CorpusSpec, plan: dict, out: Path | None = None) -> CaptionBuilder:
    config = spec.configs[plan["config"]]
    captioner = make_captioner(plan.get("captioner") or "labels", model=plan.get("captioner_model"),
                               url=plan.get("captioner_url"), concurrency=plan.get("captioner_concurrency") or 8)
    return CaptionBuilder(config, captioner)


FSD50K_BIBTEX = """@article{fonseca2022FSD50K,
  title = {{FSD50K}: an Open Dataset of Human-Labeled Sound Events},
  author = {Fonseca, Eduardo and Favory, Xavier and Pons, Jordi and Font, Frederic and Serra, Xavier},
  journal = {IEEE/ACM Transactions on Audio, Speech, and Language Processing},
  volume = {30},
  pages = {829--852},
  year = {2022}
}"""


FSD50K_SOURCE = "FSD50K (Zenodo 4060432, https://zenodo.org/records/4060432)"


def _no_adapter(raw):  # the release reader does the source's work
    return raw


SPEC = CorpusSpec(
    name="fsd50k-cc-captions",
    pretty_name="FSD50K CC captions: English captions for the CC0 and CC-BY clips of FSD50K",
    features=FEATURES,
    card_template="fsd50k.md.j2",
    task_categories=("audio-text-to-text", "audio-classification"),
    language=("en",),
    tags=("audio", "audio-captioning", "sound-events", "fsd50k", "freesound"),
    summary="The FSD50K clips released under CC0 or CC-BY, with English captions and per-clip licence and "
    "attribution, for sound captioning and audio understanding.",
    configs={
        "cc0": SourceConfig(name="cc0", hub_id="", license="cc0-1.0", adapter=_no_adapter, id_field="id",
                            description="Clips dedicated to the public domain (CC0 1.0).", bibtex=FSD50K_BIBTEX,
                            source_datasets=(FSD50K_SOURCE,),
                            original=OriginalRelease("Atotti/fsd50k-cc0-Qwen3-Omni-captioned", rows=19_873, hours=None,
                                                     note="the CC0 clips of the FSD50K release")),
        "cc-by": SourceConfig(name="cc-by", hub_id="", license=("cc-by-3.0", "cc-by-4.0"), adapter=_no_adapter, id_field="id",
                              description="Clips under CC-BY (3.0 or 4.0): attribution required.",
                              bibtex=FSD50K_BIBTEX, source_datasets=(FSD50K_SOURCE,),
                              original=OriginalRelease("Atotti/fsd50k-ccby-Qwen3-Omni-captioned", rows=23_506,
                                                       hours=None, note="the CC-BY clips of the FSD50K release")),
    },
    open_source=ReleaseSource,
    make_builder=make_builder,
)
