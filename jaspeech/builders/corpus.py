"""What a published corpus is: its configs, each a source with an adapter, plus schema and card facts."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from datasets import Features

from jaspeech.builders.schema import Example

# Build options that describe an input no corpus names (`jaspeech build spoken`, builders/spoken.py): a corpus reads
# them only if its spec lists them (`CorpusSpec.options`); plan.py refuses them for any other corpus. The licence is
# among them: the card is made from the stored plans, whenever and wherever `jaspeech card` runs.
SOURCE_OPTIONS = ("format", "messages_column", "role_key", "content_key", "user_role", "assistant_role",
                  "system_role", "instruction_column", "input_column", "output_column", "id_column", "template",
                  "license", "license_name", "license_link", "allow_nd", "source_name", "source_url")


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
    # which turns are spoken: "user" (spoken instructions), "both" (speech-to-speech: the assistant speaks
    # too), "assistant" (text instructions, spoken responses); a config per choice, see `speak_variants`
    speak: str = "user"
    base: str = ""  # the text config this one is a spoken variant of ("" for the base config itself)
    features: Features | None = None  # this config's row schema, if not the corpus's
    sample: str = ""  # the bundled sample (samples/<sample>.jsonl) read by --input sample; default: the base config's name


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
    # (spec, plan, out) -> the row builder: prepare_group(rows) / finish(pending) / timers (`out`: the build's
    # folder, for caches a builder keeps beside the build). SFT and DPO share the TTS + ASR one
    # (pipeline.make_tts_builder); FSD50K brings a captioning one.
    make_builder: Callable[["CorpusSpec", dict, Path], object]
    check_extra: Callable[[dict], dict] | None = None  # validates/cleans Example.extra, or raises RowReject
    # a corpus that does not read rows from --input files or a hub id brings its own reader
    open_source: Callable | None = None  # (input, config name, hub id, split) -> source; default InputSource
    # a corpus whose configs come from the build options (`spoken`) rather than a fixed table:
    # the SOURCE_OPTIONS it reads (any other corpus refuses them) ...
    options: tuple[str, ...] = ()
    # ... and what it reads from the input's first rows at planning time (plan fields, source) -> facts its rows
    # depend on (spoken: the detected format and mapping), stored in the plan; may raise ValueError naming the flags
    inspect_input: Callable[[dict, object], dict] | None = None

    def features_of(self, config: str) -> Features:
        return self.configs[config].features or self.features

    def config_for(self, config: str, speak: str = "user") -> str:
        """The config that holds `config`'s rows spoken as `speak` (`--config magpie --speak both` -> magpie-s2s)."""
        if config not in self.configs:
            raise ValueError(f"{self.name} has no config {config!r}; choose from {', '.join(self.configs)}")
        if speak == self.configs[config].speak:
            return config
        base = self.configs[config].base or config
        for name, cfg in self.configs.items():
            if (cfg.base or name) == base and cfg.speak == speak:
                return name
        raise ValueError(f"{self.name} has no --speak {speak} variant of {config!r}"
                         + ("" if speak == "user" else "; speech-to-speech configs exist for jaspeech-sft-audio"))


# "duplex": every turn spoken, the dialogue as one stereo recording with a timeline (builders/duplex.py)
SPEAK_SUFFIX = {"both": "-s2s", "assistant": "-spoken-response", "duplex": "-duplex"}


def speak_variants(configs: dict[str, SourceConfig], features: Features) -> dict[str, SourceConfig]:
    """Each text config plus its spoken variants: `<name>-s2s` (both sides spoken) and
    `<name>-spoken-response` (only the assistant speaks), with the assistant-voice column in their schema, and
    `<name>-duplex` (one stereo recording per dialogue, `schema.DUPLEX_FEATURES`)."""
    import dataclasses

    from jaspeech.builders.schema import DUPLEX_FEATURES

    out = dict(configs)
    for name, cfg in configs.items():
        for speak, suffix in SPEAK_SUFFIX.items():
            out[name + suffix] = dataclasses.replace(cfg, name=name + suffix, speak=speak, base=name,
                                                     features=DUPLEX_FEATURES if speak == "duplex" else features,
                                                     original=None, original_columns={})
    return out
