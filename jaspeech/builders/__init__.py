"""Corpus builders: one module per published corpus, plus the shared pipeline, shard writer and build driver."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # the CLI imports this package for CORPORA alone: keep it free of `datasets`
    from jaspeech.builders.corpus import CorpusSpec


def corpus_spec(name: str, plans: Iterable[dict] = ()) -> CorpusSpec:
    """The corpus's spec. `plans` (stored plans, or the options of a build about to be planned) matter only for a
    corpus whose configs are made from the build options (`spoken`: a config per plan); the others ignore them."""
    from jaspeech.builders import dpo, fsd50k, sft, spoken

    specs = {s.name: s for s in (sft.SPEC, dpo.SPEC, fsd50k.SPEC)}
    if name == spoken.NAME:
        return spoken.spec_for(list(plans))
    if name not in specs:
        raise ValueError(f"unknown corpus {name!r}; choose from {', '.join(sorted([*specs, spoken.NAME]))}")
    return specs[name]


CORPORA = ("jaspeech-sft-audio", "jaspeech-dpo-audio", "fsd50k-cc-captions", "spoken")
