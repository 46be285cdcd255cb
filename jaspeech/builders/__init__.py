"""Corpus builders: one module per published corpus, plus the shared pipeline, shard writer and build driver."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this package for CORPORA alone: keep it free of `datasets`
    from jaspeech.builders.corpus import CorpusSpec


def corpus_spec(name: str) -> CorpusSpec:
    from jaspeech.builders import dpo, fsd50k, sft

    specs = {s.name: s for s in (sft.SPEC, dpo.SPEC, fsd50k.SPEC)}
    if name not in specs:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(sorted(specs))}")
    return specs[name]


CORPORA = ("jaspeech-sft-audio", "jaspeech-dpo-audio", "fsd50k-cc-captions")
