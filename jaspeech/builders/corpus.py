"""What a published corpus is: its configs, each a source with an adapter, plus schema and card facts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from datasets import Features

from jaspeech.builders.schema import Example


@dataclass(frozen=True)
class SourceConfig:
    name: str  # config name in the published repo, e.g. "magpie"
    hub_id: str  # default --input
    license: str  # SPDX-ish id of the source licence
    adapter: Callable[[dict], Example]  # raw source row -> Example, or raises RowReject
    id_field: str | None  # the source's row id column, if it has one
    description: str = ""
    original_columns: dict[str, str] = field(default_factory=dict)  # original release column -> ours
    bibtex: str = ""  # how to cite the source


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    pretty_name: str
    features: Features
    configs: dict[str, SourceConfig]
    card_template: str  # file name in jaspeech/cards/templates/
    task_categories: tuple[str, ...]
    summary: str
    check_extra: Callable[[dict], dict] | None = None  # validates/cleans Example.extra, or raises RowReject
    # corpora that are not TTS of text rows bring their own input reader and row builder
    open_source: Callable | None = None  # (input, config name, hub id, split) -> source; default InputSource
    make_builder: Callable[[dict], object] | None = None  # plan -> builder; default: TTS + ASR RowBuilder
