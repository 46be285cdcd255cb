"""`jaspeech build spoken`: speak an instruction or chat dataset of your own through the same pipeline.

Three shapes, recognised from the input's first rows (`--format auto`) or named with `--format`:
- `messages` (OpenAI style): a list column (`messages`, else `conversations`) of `{role, content}`; roles `user`,
  `assistant`, `system`.
- `sharegpt`: a list column (`conversations`, else `messages`) of `{from, value}`; roles `human`/`user`,
  `gpt`/`chatgpt`/`assistant`/`bot`, `system`.
- `alpaca`: columns `instruction`, `input` (optional) and `output`. The spoken text is the instruction, then the
  input on a new line when it is not empty (the template `{{ instruction }}{% if input %}\\n{{ input }}{% endif %}`);
  `--template` replaces it with your own Jinja2 template over the row's columns (sandboxed, undefined names are
  errors), so any flat shape reads as e.g. `--template '{{ question }}' --output-column answer`.
Other names are mapped with `--messages-column`, `--role-key`, `--content-key`, `--user-role`, `--assistant-role`,
`--system-role` (comma-separated values) or `--instruction-column`, `--input-column`, `--output-column`.

Every turn of a dialogue is kept, in order: user turns spoken, assistant turns text (both spoken in `<config>-s2s`,
only the assistant in `<config>-spoken-response`), a system turn as text (`role: "system"`, never spoken; an empty
one is dropped). A row needs a user turn; a dialogue that ends on a user turn is kept up to its last complete
exchange (the dropped turn recorded in the row's `provenance`), spoken unanswered, or rejected (`--trailing-user`,
applied by the pipeline). A turn that cannot be used rejects the whole row, so a kept row has all of its source's
turns up to that point. A bad row is a reject with a reason, never fatal.

One-way flow: the corpus has no fixed config table. `spec_for(plans)` makes one config per plan (with its speech
variants) from the stored options; `inspect_input` reads the first rows once at planning time and stores the
mapping it decided on in the plan, so a Slurm or Ray task rebuilds exactly the same adapter from the plan alone.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from jaspeech.builders.adapters import require_mapping
from jaspeech.builders.corpus import SOURCE_OPTIONS, SPEAK_SUFFIX, CorpusSpec, SourceConfig, speak_variants
from jaspeech.builders.duplex import make_speech_builder
from jaspeech.builders.schema import SPOKEN_FEATURES, SPOKEN_S2S_FEATURES, Example, RowReject, Turn
from jaspeech.builders.sources import HUB_ID
from jaspeech.synthesis.text import clean_text

NAME = "spoken"
FORMATS = ("messages", "sharegpt", "alpaca")
DETECT_ROWS = 20  # rows read to recognise the shape (and to check a named one)
LICENSES_FILE = Path(__file__).parent / "hub_licenses.txt"
ALPACA_TEMPLATE = "{{ instruction }}{% if input %}\n{{ input }}{% endif %}"  # what the default does (tested)
_CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

DIALOGUE = {  # the defaults of the two dialogue shapes
    "messages": {"columns": ("messages", "conversations"), "role_key": "role", "content_key": "content",
                 "user": ("user",), "assistant": ("assistant",), "system": ("system",)},
    "sharegpt": {"columns": ("conversations", "messages"), "role_key": "from", "content_key": "value",
                 "user": ("human", "user"), "assistant": ("gpt", "chatgpt", "assistant", "bot"), "system": ("system",)},
}
DIALOGUE_FLAGS = ("messages_column", "role_key", "content_key", "user_role", "assistant_role", "system_role")
COLUMN_FLAGS = ("instruction_column", "input_column", "output_column", "template")
MAPPING_HELP = ("map them with --format messages|sharegpt --messages-column COLUMN [--role-key KEY --content-key KEY "
                "--user-role VALUES --assistant-role VALUES --system-role VALUES], or --format alpaca "
                "--instruction-column COLUMN --output-column COLUMN [--input-column COLUMN], or --template "
                "'{{ column }}' --output-column COLUMN for any other flat shape")


@dataclass(frozen=True)
class Mapping:
    """How one row of the input becomes turns: the format and every column, key and role value it reads."""

    format: str
    messages_column: str = ""
    role_key: str = ""
    content_key: str = ""
    user_roles: tuple[str, ...] = ()
    assistant_roles: tuple[str, ...] = ()
    system_roles: tuple[str, ...] = ()
    instruction_column: str = ""
    input_column: str = ""
    output_column: str = ""
    template: str | None = None

    @classmethod
    def from_plan(cls, stored: dict) -> Mapping:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})

    def fits(self, row: object) -> bool:
        """Whether this mapping reads `row` (the shape test of detection)."""
        if not isinstance(row, dict):
            return False
        if self.format == "alpaca":
            return self.output_column in row and (self.template is not None or self.instruction_column in row)
        turns = row.get(self.messages_column)
        return isinstance(turns, list) and any(
            isinstance(t, dict) and self.role_key in t and self.content_key in t for t in turns)

    def describe(self) -> str:
        if self.format == "alpaca" and self.template is not None:
            return (f"one exchange per row: the spoken instruction is the template `{self.template}` over the row's "
                    f"columns, the response is column `{self.output_column}`")
        if self.format == "alpaca":
            return (f"Alpaca columns: the spoken instruction is `{self.instruction_column}`, then "
                    f"`{self.input_column}` on a new line when it is not empty; the response is `{self.output_column}`")
        return (f"{'OpenAI-style messages' if self.format == 'messages' else 'ShareGPT conversations'} in column "
                f"`{self.messages_column}` (`{self.role_key}` / `{self.content_key}`; user: "
                f"{', '.join(self.user_roles)}; assistant: {', '.join(self.assistant_roles)}; system: "
                f"{', '.join(self.system_roles) or '-'})")


def _values(flag: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip() for v in flag.split(",") if v.strip()) if flag else default


def candidates(fields: dict) -> list[Mapping]:
    """The mappings the options allow, in preference order; a contradiction in the options is a ValueError."""
    fmt = fields.get("format") or "auto"
    if fmt not in ("auto", *FORMATS):
        raise ValueError(f"--format must be auto, {', '.join(FORMATS)}, not {fmt!r}")
    dialogue = [k for k in DIALOGUE_FLAGS if fields.get(k)]
    columns = [k for k in COLUMN_FLAGS if fields.get(k) is not None]
    flags = lambda names: ", ".join("--" + k.replace("_", "-") for k in names)  # noqa: E731
    if dialogue and columns:
        raise ValueError(f"{flags(dialogue)} map a list of turns and {flags(columns)} map flat columns: use one kind")
    formats = FORMATS if fmt == "auto" else (fmt,)
    if dialogue:
        formats = tuple(f for f in formats if f != "alpaca")
    if columns:
        formats = tuple(f for f in formats if f == "alpaca")
    if not formats:
        raise ValueError(f"{flags(dialogue or columns)} do not apply to --format {fmt}: "
                         + ("they map a list of turns (messages, sharegpt)" if dialogue else
                            "they map flat columns (alpaca; --template makes the spoken text of one exchange)"))
    out = []
    for f in formats:
        if f == "alpaca":
            out.append(Mapping("alpaca", instruction_column=fields.get("instruction_column") or "instruction",
                               input_column=fields.get("input_column") or "input",
                               output_column=fields.get("output_column") or "output", template=fields.get("template")))
            continue
        d = DIALOGUE[f]
        roles = {r: _values(fields.get(f"{r}_role"), d[r]) for r in ("user", "assistant", "system")}
        shared = (set(roles["user"]) & set(roles["assistant"])) | (set(roles["system"]) & (set(roles["user"]) | set(roles["assistant"])))
        if shared:
            raise ValueError(f"role value(s) {', '.join(sorted(shared))} given to more than one of --user-role, "
                             "--assistant-role, --system-role")
        for column in (fields["messages_column"],) if fields.get("messages_column") else d["columns"]:
            out.append(Mapping(f, messages_column=column, role_key=fields.get("role_key") or d["role_key"],
                               content_key=fields.get("content_key") or d["content_key"], user_roles=roles["user"],
                               assistant_roles=roles["assistant"], system_roles=roles["system"]))
    return out


def _columns_seen(rows: list) -> str:
    """The columns of the first rows, with the keys of list-of-object columns (what the mapping flags name)."""
    seen: dict[str, set] = {}
    for row in rows:
        if isinstance(row, dict):
            for k, v in row.items():
                keys = seen.setdefault(str(k), set())
                if isinstance(v, list):
                    keys.update(str(x) for t in v if isinstance(t, dict) for x in t)
    if not seen:
        return "none (the first rows are not JSON objects)"
    return ", ".join(f"{k} (turn keys: {', '.join(sorted(keys))})" if keys else k for k, keys in seen.items())


def detect(fields: dict, rows: list) -> tuple[Mapping, str]:
    """The mapping that reads most of `rows` (the input's first rows) and a line saying what was chosen.

    `--format auto` tries every shape the mapping flags allow; a named format is checked the same way, so a
    mapping that reads none of the first rows fails here, naming the columns, instead of rejecting every row.
    """
    options = candidates(fields)
    _template(fields.get("template"))  # a template that does not parse is an option error, not a row's
    auto = (fields.get("format") or "auto") == "auto"
    if not rows:
        if auto:
            raise ValueError("the input has no rows to recognise its format from: pass --format")
        return options[0], f"format {options[0].format} (from --format; the input is empty)"
    scores = [sum(m.fits(r) for r in rows) for m in options]
    best = max(range(len(options)), key=lambda i: (scores[i], -i))
    if scores[best] == 0:
        what = "recognise the input's format" if auto else f"read the input as --format {fields['format']}"
        raise ValueError(f"cannot {what} from its first {len(rows)} rows; columns seen: {_columns_seen(rows)}. "
                         f"If these are a dialogue or instruction set, {MAPPING_HELP}")
    m = options[best]
    how = "--format auto chose" if auto else "--format"
    return m, f"{how} {m.format}: {m.describe()}; fits {scores[best]} of the first {len(rows)} rows"


def inspect_input(fields: dict, source) -> dict:
    """Planning: decide the mapping from the first rows and name the source dataset; stored in the plan."""
    rows = [raw for _, raw in source.iter_rows(limit=DETECT_ROWS)]
    mapping, note = detect(fields, rows)
    spec = fields["input"]
    hub = bool(getattr(source, "is_hub", False))
    if fields.get("source_name"):  # the builder's name for it (a hub id or a free name)
        dataset = fields["source_name"]
    elif hub:
        dataset = getattr(source, "hub_name", spec)
    else:  # a local file or folder (or the bundled sample): its name, never the machine's path
        files = getattr(source, "files", [])
        dataset = (files[0].name if spec == "sample" and files else Path(spec).name) or "local"
    return {"mapping": dataclasses.asdict(mapping), "source_dataset": dataset,
            "source_hub": hub or bool(fields.get("source_name") and HUB_ID.fullmatch(fields["source_name"])),
            "input_note": note}


@functools.lru_cache(maxsize=8)
def _template(text: str | None):
    """The compiled template (sandboxed: a template cannot reach Python internals; an undefined name is an error)."""
    if text is None:
        return None
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return env.from_string(text)
    except jinja2.TemplateSyntaxError as e:
        raise ValueError(f"--template does not parse: {e.message} (line {e.lineno})") from None


@dataclass(frozen=True)
class Adapter:
    """Raw row -> Example by a Mapping (the plan's), or RowReject with a reason."""

    mapping: Mapping

    def __call__(self, raw: object) -> Example:
        row = require_mapping(raw)
        return self._columns(row) if self.mapping.format == "alpaca" else self._dialogue(row)

    def _dialogue(self, row: dict) -> Example:
        m = self.mapping
        value = row.get(m.messages_column)
        if value is None:
            raise RowReject("missing_column", f"column {m.messages_column!r} is absent or null")
        if not isinstance(value, list) or not value:
            raise RowReject("malformed", f"{m.messages_column!r} must be a non-empty list of turns, "
                                         f"not {type(value).__name__ if value else 'empty'}")
        known = ", ".join(repr(v) for v in (*m.user_roles, *m.assistant_roles, *m.system_roles))
        turns: list[Turn] = []
        for i, t in enumerate(value):
            where = f"{m.messages_column}[{i}]"
            if not isinstance(t, dict):
                raise RowReject("malformed", f"{where} is a {type(t).__name__}, not an object")
            role, content = t.get(m.role_key), t.get(m.content_key)
            if role in m.system_roles:  # text in the row, never spoken; an empty one says nothing
                if content is not None and not isinstance(content, str):
                    raise RowReject("bad_type", f"{where}.{m.content_key} (system) is a {type(content).__name__}, "
                                                "not a string")
                if content is not None and clean_text(content).strip():
                    turns.append(Turn("system", content, spoken=False))
            elif role in m.user_roles:
                turns.append(Turn("user", content, spoken=True))
            elif role in m.assistant_roles:
                turns.append(Turn("assistant", content, spoken=False))
            else:
                raise RowReject("unknown_role", f"{where}.{m.role_key} is {role!r}, not one of {known} "
                                                "(map others with --user-role / --assistant-role / --system-role)")
        dialogue = [t for t in turns if t.role != "system"]
        if not any(t.role == "user" for t in dialogue):
            raise RowReject("no_user_turn", f"no turn with a user role ({', '.join(m.user_roles)})")
        # ending on a user turn: the pipeline keeps the exchanges before it, speaks it or rejects (--trailing-user)
        return Example(turns=turns, unanswered=dialogue[-1].role == "user")

    def _columns(self, row: dict) -> Example:
        m = self.mapping
        template = _template(m.template)
        if template is not None:
            try:
                text: object = template.render(row)
            except Exception as e:  # any failure of the user's template on this row: the row's reject
                raise RowReject("template_error", f"{type(e).__name__}: {e}") from None
        else:
            text = _column(row, m.instruction_column)
            extra = row.get(m.input_column)
            if extra is not None and not isinstance(extra, str):
                raise RowReject("bad_type", f"column {m.input_column!r} is a {type(extra).__name__}, not a string")
            if extra and clean_text(extra).strip():
                text = f"{text}\n{extra}"
        return Example(turns=[Turn("user", text, spoken=True),
                              Turn("assistant", _column(row, m.output_column, check_type=False), spoken=False)])


def _column(row: dict, name: str, check_type: bool = True) -> object:
    value = row.get(name)
    if value is None:
        raise RowReject("missing_column", f"column {name!r} is absent or null")
    if check_type and not isinstance(value, str):
        raise RowReject("bad_type", f"column {name!r} is a {type(value).__name__}, not a string")
    return value


def _unplanned(raw: object) -> Example:
    raise RuntimeError("this spoken config has no mapping yet: rows are read only with a stored plan")


@functools.lru_cache(maxsize=1)
def hub_licenses() -> tuple[str, ...]:
    lines = LICENSES_FILE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def no_derivatives(license: str) -> bool:
    """A licence id that forbids derivatives (an `nd` part: `cc-by-nd-4.0`, `cc-by-nc-nd-3.0`, ...)."""
    return "nd" in license.lower().replace("_", "-").split("-")


def check_license(license: str | None, name: str | None, link: str | None, allow_nd: bool = False) -> None:
    """The Hub accepts only its own licence ids (and `other` with a name and a link): fail before any row. A
    no-derivatives licence needs `--allow-nd`: speech made from a text is a derivative of it."""
    if not license:
        raise ValueError("jaspeech build spoken needs --license: the Hub licence id of the source's text (e.g. "
                         "apache-2.0, cc-by-4.0, cc-by-sa-3.0), or `other` with --license-name and --license-link")
    ids = hub_licenses()
    if license not in ids:
        close = difflib.get_close_matches(license.lower(), ids, n=3)
        raise ValueError(f"--license {license!r} is not a Hugging Face Hub licence id"
                         + (f" (did you mean {', '.join(close)}?)" if close else "")
                         + f"; the ids are listed in {LICENSES_FILE}; for any other licence use --license other "
                         "with --license-name and --license-link")
    if license == "other" and not (name and link):
        raise ValueError("--license other needs --license-name (a short name the Hub shows) and --license-link "
                         "(where the terms are)")
    if license != "other" and (name or link):
        raise ValueError("--license-name and --license-link go with --license other")
    if no_derivatives(license) and not allow_nd:
        raise ValueError(f"--license {license} forbids derivatives (ND), and a spoken corpus made from a text corpus "
                         "is a derivative of it: build only with the rights holder's permission, then add --allow-nd "
                         "(the card says so)")


def split_config(config: str) -> tuple[str, str]:
    """`NAME` -> (NAME, "user"); `NAME-s2s` -> (NAME, "both"); `NAME-spoken-response` -> (NAME, "assistant")."""
    if not _CONFIG_NAME.fullmatch(config or ""):
        raise ValueError(f"--config {config!r}: a config name is letters, digits, '.', '_' and '-' "
                         "(it names the folders data/<config>/), starting with a letter or digit")
    for speak, suffix in SPEAK_SUFFIX.items():
        if config.endswith(suffix) and len(config) > len(suffix):
            return config[: -len(suffix)], speak
    return config, "user"


def _source_link(plan: dict, dataset: str) -> str:
    """The source as the card names it: linked to --source-url, else to the Hub for a hub id; never a local path."""
    if plan.get("source_url"):
        return f"[{dataset}]({plan['source_url']})"
    if plan.get("source_hub"):
        return f"[{dataset}](https://huggingface.co/datasets/{dataset})"
    return f"`{dataset}`" if plan.get("source_name") else f"`{dataset}` (local files)"


def source_config(plan: dict, base: str) -> SourceConfig:
    """The text config `base` as a plan (or the options of one about to be made) describes it."""
    check_license(plan.get("license"), plan.get("license_name"), plan.get("license_link"), bool(plan.get("allow_nd")))
    stored = plan.get("mapping")
    mapping = Mapping.from_plan(stored) if stored else None
    fmt = mapping.format if mapping else plan.get("format") or "auto"
    if plan.get("input") == "sample" and fmt == "auto":
        raise ValueError("--input sample is one bundled file per shape: add --format messages, sharegpt or alpaca")
    dataset = plan.get("source_dataset") or plan.get("input") or ""
    id_column = plan.get("id_column") or None
    return SourceConfig(
        name=base,
        hub_id=dataset,
        license=plan["license"],
        license_name=plan.get("license_name") or "",
        license_link=plan.get("license_link") or "",
        adapter=Adapter(mapping) if mapping else _unplanned,
        id_field=id_column,
        description=(f"Source: {_source_link(plan, dataset)}, read as {mapping.describe()}."
                     + (" The licence forbids derivatives; the builder declared the rights holder's permission "
                        "(--allow-nd)." if plan.get("allow_nd") else "")) if mapping else "",
        source_datasets=(dataset,) if dataset else (),
        id_note=f"`source_id` is the source's `{id_column}` column." if id_column else
        "`source_id` is the row's 0-based position in the input (no --id-column was given).",
        sample=f"spoken-{fmt}",
    )


def spec_for(plans: list[dict]) -> CorpusSpec:
    """The `spoken` corpus with one config per plan (plus its speech variants), made from the stored options."""
    configs: dict[str, SourceConfig] = {}
    for plan in plans:
        if plan.get("corpus", NAME) != NAME or not plan.get("config"):
            continue
        base, _ = split_config(plan["config"])
        variants = speak_variants({base: dataclasses.replace(source_config(plan, base), features=SPOKEN_FEATURES)},
                                  SPOKEN_S2S_FEATURES)
        for name, cfg in variants.items():
            configs.setdefault(name, cfg)
        configs[plan["config"]] = variants[plan["config"]]  # a config is what its own plan says
    sources = sorted({c.hub_id for c in configs.values() if c.hub_id})
    return CorpusSpec(
        name=NAME,
        pretty_name="Spoken Japanese instructions" + (f" from {', '.join(sources)}" if sources else ""),
        features=SPOKEN_FEATURES,
        configs=configs,
        card_template="spoken.md.j2",
        task_categories=("automatic-speech-recognition", "text-generation"),
        summary="Japanese instructions and dialogues whose user turns are spoken by TTS, with the text responses "
        "they ask for, for supervised fine-tuning of speech LLMs.",
        language=("ja",),
        tags=("speech", "synthetic", "tts", "japanese", "instruction-tuning"),
        make_builder=make_speech_builder,
        options=SOURCE_OPTIONS,
        inspect_input=inspect_input,
    )
