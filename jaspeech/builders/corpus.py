"""What a published corpus is: its configs, each a source with an adapter, plus schema and card facts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from datasets import Features

from jaspeech.builders.schema import Example


@dataclass(frozen=True)
class OriginalRelease:
    """The corpus the original JaSpeechLLM work published from the same source, for coverage in the card."""

    repo: str
    rows: int
    hours: float | None  # None: the release does not say
    note: str = "approximate, from the original release's description"


@dataclass(frozen=True)
class SourceConfig:
    name: str  # config name in the published repo, e.g. "magpie"
    hub_id: str  # default --input
    license: str | tuple[str, ...]  # Hub licence id(s) (apache-2.0, cc-by-4.0, ...) or "other" (+ license_name/link)
    adapter: Callable[[dict], Example]  # raw source row -> Example, or raises RowReject
    id_field: str | None  # the source's row id column, if it has one
    description: str = ""
    original_columns: dict[str, str] = field(default_factory=dict)  # original release column -> ours
    bibtex: str = ""  # how to cite the source
    # card facts of this source (the Hub's metadata and the card body)
    source_datasets: tuple[str, ...] = ()  # default: (hub_id,)
    license_name: str = ""  # with license "other": a short name the Hub shows
    license_link: str = ""  # with license "other": where the terms are
    license_parts: str = ""  # markdown: which parts of the source carry which licence
    gated: bool = False  # the hub source needs a token and accepted terms
    id_note: str = ""  # what `source_id` is for this source
    original: OriginalRelease | None = None  # the original JaSpeechLLM release made from this source


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    pretty_name: str
    features: Features
    configs: dict[str, SourceConfig]
    card_template: str  # file name in jaspeech/cards/templates/
    task_categories: tuple[str, ...]
    summary: str
    language: tuple[str, ...]  # of the text (and speech) in the rows, as the Hub's `language`
    tags: tuple[str, ...]
    # (spec, plan) -> the row builder: prepare(position, raw, source_id) / finish(pending) / timers.
    # SFT and DPO share the TTS + ASR one (pipeline.make_tts_builder); FSD50K brings a captioning one.
    make_builder: Callable[["CorpusSpec", dict], object]
    check_extra: Callable[[dict], dict] | None = None  # validates/cleans Example.extra, or raises RowReject
    # a corpus that does not read rows from --input files or a hub id brings its own reader
    open_source: Callable | None = None  # (input, config name, hub id, split) -> source; default InputSource
