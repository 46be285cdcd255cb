"""The `jaspeech` command: build corpora, write their cards, publish them, train and evaluate JaSpeechLLM."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from jaspeech import __version__
from jaspeech.builders import CORPORA


def _build_parser(sub) -> None:
    from jaspeech.synthesis.asr import ASR_BACKENDS
    from jaspeech.synthesis.tts import TTS_BACKENDS

    p = sub.add_parser(
        "build",
        help="build (or resume) one config of a corpus into a Hugging Face dataset folder",
        description="Build one config of a corpus. Re-running the same command resumes; building another "
        "config into the same --out adds it and keeps the others.",
    )
    p.add_argument("corpus", choices=CORPORA)
    p.add_argument("--config", required=True,
                   help="magpie, automultiturn (SFT); hh-rlhf, chatbot-arena (DPO); cc0, cc-by (FSD50K); spoken: a "
                   "name of your own (NAME-s2s / NAME-spoken-response: the speech-to-speech variants)")
    p.add_argument("--speak", default=None, choices=("user", "assistant", "both", "duplex"),
                   help="SFT: which turns are spoken. user (the default configs): the instructions; both: the "
                   "responses too, into <config>-s2s (speech-to-speech); assistant: only the responses, into "
                   "<config>-spoken-response; duplex: every turn, as one stereo recording per dialogue with "
                   "overlaps, backchannels and word times, into <config>-duplex. The text config is left as it is")
    p.add_argument("--duplex", action="store_true",
                   help="the same as --speak duplex: full-duplex dialogues (assistant on channel 0, user on 1)")
    d = p.add_argument_group("full-duplex timing (--speak duplex; docs/duplex.md says where the defaults come from)")
    d.add_argument("--duplex-gap-mean", type=float, default=0.007,
                   help="mean turn-transition offset in seconds (default 0.007: Stivers et al. 2009, Japanese)")
    d.add_argument("--duplex-gap-sd", type=float, default=0.25, help="its standard deviation in seconds (default 0.25)")
    d.add_argument("--duplex-pause-rate", type=float, default=0.05,
                   help="share of turn boundaries with a 1-2 s pause instead (default 0.05)")
    d.add_argument("--duplex-max-overlap", type=float, default=0.6,
                   help="the most a turn may start before the previous one ends, in seconds; never more than the "
                   "previous turn's last word (default 0.6)")
    d.add_argument("--duplex-backchannel-rate", type=float, default=6.0,
                   help="backchannels (はい, うん, ...) per minute of the other party's speech; 0: none (default 6)")
    p.add_argument("--input", default=None,
                   help="hub id (default: the source's; hub:owner/name when the id looks like a file name), a local "
                   "JSONL/JSON/Parquet file or folder, or 'sample'. A folder: its .jsonl, .json and .parquet files in "
                   "path order, hidden files and folders skipped; a missing local-looking path fails at once")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="a folder input: skip the files it cannot read (e.g. .csv, README.md) instead of failing; "
                   "each skipped file is listed in the plan and the card")
    p.add_argument("--split", default="train", help="split to read from a hub input")
    p.add_argument("--out", required=True, type=Path, help="output folder (a dataset repo)")
    p.add_argument("--limit", type=int, default=None, help="only the first N input rows")
    p.add_argument("--trailing-user", default="keep-exchanges", choices=("keep-exchanges", "speak", "reject"),
                   help="a dialogue that ends on a user turn with no reply: keep-exchanges (default: keep it up to "
                   "its last complete exchange, the dropped turn recorded in the row's provenance), speak (speak the "
                   "last user turn too, unanswered) or reject (no_response)")
    p.add_argument("--tts", default="kokoro", choices=TTS_BACKENDS)
    p.add_argument("--tts-model", default=None, help="model folder for --tts cosyvoice2 (upstream's CosyVoice2-0.5B folder, unchanged)")
    p.add_argument("--tts-reading", default=None, choices=("text", "kana"),
                   help="what the TTS is fed: the text, or its OpenJTalk kana reading (rows keep the text; "
                   "default: kana for cosyvoice2, which reads kanji in Chinese, else text)")
    p.add_argument("--speakers", default=None, help="reference speakers folder (<spkNN>.wav + .txt) for cosyvoice2")
    p.add_argument("--asr", default="faster-whisper", choices=ASR_BACKENDS)
    p.add_argument("--asr-model", default=None,
                   help="faster-whisper: a CTranslate2 folder (default: Whisper base from PyPI); "
                   "transformers: a hub id or folder (default: openai/whisper-large-v3)")
    p.add_argument("--captioner", default=None, choices=("labels", "openai", "qwen3-omni"),
                   help="fsd50k-cc-captions: caption source (default labels: a template from the FSD50K labels)")
    p.add_argument("--captioner-model", default=None, help="qwen3-omni: model id or folder; openai: model name")
    p.add_argument("--captioner-url", default=None, help="openai: the server's base URL, e.g. http://host:8000/v1")
    p.add_argument("--captioner-concurrency", type=int, default=8, help="openai: requests in flight")
    p.add_argument("--ear", default="forced", choices=("forced", "transcript"),
                   help="the round trip's rule: forced (default: the ear scores the known text on the audio and a "
                   "turn is rejected when a stretch of its text is not supported, see docs/round-trip.md) or "
                   "transcript (kana-CER of the transcript alone, after a second beam-search listening)")
    p.add_argument("--max-kana-cer", type=float, default=0.10,
                   help="--ear transcript: drop rows above this kana-CER (default 0.10); recorded with either rule")
    p.add_argument("--max-takes", type=int, default=3,
                   help="takes of a spoken turn before its row is rejected: a turn the ear rejects is synthesised "
                   "again with the row's next seed in the same voice (default 3: up to 2 retakes; 1: none)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="longest spoken turn in seconds of synthesised audio (default 120)")
    p.add_argument("--max-response-seconds", type=float, default=600.0,
                   help="speech-to-speech configs: longest spoken response in seconds of synthesised audio; "
                   "longer ones reject the row as audio_too_long, texts estimated at over twice it as too_long "
                   "(default 600)")
    p.add_argument("--keep-reject-audio", action="store_true",
                   help="store the audio of rows rejected after synthesis (e.g. roundtrip) beside rejects/, "
                   "so `jaspeech view` can play them (off by default)")
    p.add_argument("--quality", default=None, choices=("dnsmos", "none"),
                   help="the quality stage's MOS model, run on every kept spoken turn: dnsmos (default, or "
                   "$JASPEECH_QUALITY: DNSMOS P.835 SIG/BAK/OVRL + P.808 on CPU) or none (scores null, for scale "
                   "benchmarks); the signal checks (peak, clipping, silences, level) always run")
    p.add_argument("--min-dnsmos", type=float, default=None,
                   help="reject rows whose spoken turn has a DNSMOS OVRL below this (reason low_quality; "
                   "default off, see docs/quality.md; Emilia-Pipe keeps OVRL >= 3.0)")
    p.add_argument("--max-silence", type=float, default=2.0,
                   help="reject rows whose spoken turn has a leading, trailing or inner silence longer than "
                   "this many seconds (reason long_silence; default 2, which no Kokoro turn of the bundled "
                   "samples reaches; 0 turns it off)")
    p.add_argument("--group-rows", type=int, default=None,
                   help="input rows built together: one batched TTS call for their texts, one batched round trip "
                   "(default 128 for cosyvoice2, whose GPU runtime decodes a group's sentences as one batch; else 16). "
                   "Stored in the plan, so a resumed shard forms the same groups")
    p.add_argument("--num-shards", type=int, default=None, help="default: one shard per 2000 input rows")
    p.add_argument("--shard-index", type=int, default=None,
                   help="build only this shard of the stored plan (one job-array task; never re-reads the input)")
    p.add_argument("--plan-only", action="store_true",
                   help="read the input once, write manifests/<config>/plan.json, and stop")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes (one GPU each when GPUs are visible, else a share of the cores)")
    p.add_argument("--executor", default="local", choices=("local", "slurm", "ray"))
    p.add_argument("--ray-address", default=None, help="'auto' or ray://host:port; default: start a local Ray")
    p.add_argument("--gpus-per-task", type=float, default=0, help="GPUs per shard task (ray, slurm)")
    p.add_argument("--cpus-per-task", type=int, default=2, help="CPUs per shard task (ray, slurm)")
    p.add_argument("--dry-run", action="store_true",
                   help="slurm: print the sbatch script, read and submit nothing (needs --num-shards or a plan)")
    p.add_argument("--slurm-template", default=None, help="your own sbatch Jinja2 template")
    p.add_argument("--slurm-time", default="24:00:00")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--slurm-max-parallel", type=int, default=64, help="array tasks running at once")
    g = p.add_argument_group(
        "spoken (your own dataset)", "How `jaspeech build spoken` reads --input (a hub id or local files). Stored in "
        "the plan: a different format, mapping or template needs --overwrite")
    g.add_argument("--format", default="auto", choices=("auto", "messages", "sharegpt", "alpaca"),
                   help="messages: [{role, content}]; sharegpt: [{from, value}]; alpaca: instruction/input/output "
                   "columns; auto (default): recognised from the first 20 rows")
    g.add_argument("--messages-column", default=None,
                   help="the list-of-turns column (default: messages, else conversations)")
    g.add_argument("--role-key", default=None, help="a turn's role key (default: role; sharegpt: from)")
    g.add_argument("--content-key", default=None, help="a turn's text key (default: content; sharegpt: value)")
    g.add_argument("--user-role", default=None,
                   help="comma-separated role values of user turns (default: user; sharegpt: human,user)")
    g.add_argument("--assistant-role", default=None,
                   help="role values of assistant turns (default: assistant; sharegpt: gpt,chatgpt,assistant,bot)")
    g.add_argument("--system-role", default=None,
                   help="role values of system turns, kept as text and never spoken (default: system)")
    g.add_argument("--instruction-column", default=None, help="alpaca: the instruction column (default instruction)")
    g.add_argument("--input-column", default=None,
                   help="alpaca: the optional input column, spoken after the instruction on a new line (default input)")
    g.add_argument("--output-column", default=None, help="alpaca / --template: the response column (default output)")
    g.add_argument("--template", default=None,
                   help="a Jinja2 template over a row's columns that makes the spoken user text, e.g. "
                   "'{{ question }}' (with --output-column answer); sandboxed, an undefined name rejects the row")
    g.add_argument("--id-column", default=None, help="the row id column (default: none, source_id is the position)")
    g.add_argument("--license", default=None,
                   help="the Hub licence id of the source's text (e.g. apache-2.0, cc-by-4.0; required), or other")
    g.add_argument("--license-name", default=None, help="with --license other: a short name the Hub shows")
    g.add_argument("--license-link", default=None, help="with --license other: where the terms are")
    g.add_argument("--allow-nd", action="store_true",
                   help="accept a no-derivatives licence (cc-by-nd-4.0, ...): a spoken corpus is a derivative of the "
                   "text, so only with the rights holder's permission")
    g.add_argument("--source-name", default=None,
                   help="the source's name for the card and the source_dataset column (a hub id such as "
                   "owner/name, or a free name); default: the hub id, or the input file's or folder's name")
    g.add_argument("--source-url", default=None, help="where the source is published, linked from the card")
    p.add_argument("--overwrite", action="store_true", help="discard an existing build of this config")
    p.add_argument("--allow-env-change", action="store_true",
                   help="resume a build (or run a shard task) although its package versions, model files or CPU "
                   "instruction set differ from the plan's (`jaspeech env`); the differences are printed and "
                   "each new shard's manifest records its own environment (docs/reproducibility.md)")
    p.add_argument("--quiet", action="store_true")


def _run_build(args) -> int:
    from jaspeech.builders.build import BuildOptions, EnvironmentChanged, NoPlan, PlanMismatch, build

    if args.limit is not None and args.limit < 0:
        raise SystemExit("--limit must be >= 0")
    from jaspeech.builders import corpus_spec

    try:  # --config magpie --speak both is the config magpie-s2s (which --config can also name)
        spec = corpus_spec(args.corpus, [vars(args)])  # `spoken` makes its config from the options
        if args.duplex and args.speak not in (None, "duplex"):
            raise ValueError(f"--duplex is --speak duplex: drop --speak {args.speak} or --duplex")
        speak = "duplex" if args.duplex else args.speak
        config = spec.config_for(args.config, speak) if speak else args.config
    except ValueError as e:
        print(f"jaspeech build: error: {e}", file=sys.stderr)
        return 2
    # every BuildOptions field the parser has, under the same name (--max-kana-cer -> max_kana_cer)
    opts = BuildOptions(**{f.name: getattr(args, f.name) for f in fields(BuildOptions) if hasattr(args, f.name)}
                        | {"config": config})
    from jaspeech.synthesis.quality.dnsmos import QualityUnavailable

    try:
        summary = build(opts)
    except (PlanMismatch, EnvironmentChanged, NoPlan, FileNotFoundError, ValueError, QualityUnavailable) as e:
        print(f"jaspeech build: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        if "pip install" not in str(e):  # only a backend's own message, which names the extra to install
            raise
        print(f"jaspeech build: error: {e}", file=sys.stderr)
        return 2
    if not (args.executor == "slurm" and args.dry_run):
        print(json.dumps(summary, ensure_ascii=False))
    return 0


def _run_env(args) -> int:
    from jaspeech.builders.environment import current_environment, environment_lines

    env = current_environment()
    print(json.dumps(env, ensure_ascii=False, indent=1) if args.json else "\n".join(environment_lines(env)))
    return 0


def _run_card(args) -> int:
    from jaspeech.builders import corpus_spec
    from jaspeech.cards.render import write_card

    plans = sorted(args.folder.glob("manifests/*/plan.json"))
    if not plans:
        print(f"jaspeech card: error: {args.folder} holds no jaspeech build (no manifests/*/plan.json): pass the "
              "--out folder of `jaspeech build`", file=sys.stderr)
        return 2
    from jaspeech.builders.plan import stored_plans

    stored = stored_plans(args.folder)
    print(write_card(args.folder, corpus_spec(stored[0]["corpus"], stored)))
    return 0


def _run_rescore(args) -> int:
    from jaspeech.builders.rescore import rescore
    from jaspeech.synthesis.quality import QualityUnavailable

    try:
        summary = rescore(args.folder, args.config, args.quality, quiet=args.quiet)
    except (FileNotFoundError, ValueError, QualityUnavailable) as e:
        print(f"jaspeech rescore: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _run_hear(args) -> int:
    from jaspeech.builders.ear import EarRule, verdict
    from jaspeech.synthesis.asr import make_asr
    from jaspeech.synthesis.audio import decode_audio

    try:
        samples, sr = decode_audio(args.clip.read_bytes())
    except Exception as e:  # a missing or unreadable file: say which, not a traceback
        print(f"jaspeech hear: error: cannot read {args.clip} as audio ({type(e).__name__}: {e}): pass a WAV or "
              "FLAC file, e.g. a row's turns[i].audio bytes written to a .flac file", file=sys.stderr)
        return 2
    result = verdict(args.text, make_asr(args.asr, args.asr_model).score([(samples, sr)], [args.text])[0], EarRule())
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    span = result["worst_span"]
    print(f"{'keep' if result['keep'] else 'reject'}{'' if result['keep'] else ': ' + result['reason']}")
    print(f"transcript    {result['transcript']}")
    print(f"cer           {result['cer']:.3f}")
    print(f"kana_cer      {result['kana_cer']:.3f}")
    print(f"text_logprob  {result['text_logprob']:.3f} per piece")
    if span:
        print(f"worst stretch \u300c{span['text']}\u300d at {span['start']:.2f}-{span['end']:.2f} s, {span['deficit']:.2f} "
              f"nats per piece below the ear's own transcript (limit {result['rule']['max_deficit']:g})")
    return 0


def _run_publish(args) -> int:
    from jaspeech.cards.publish import publish

    try:
        plan = publish(args.folder, args.repo_id, private=args.private, include_rejects=args.include_rejects,
                       dry_run=args.dry_run)
    except FileNotFoundError as e:
        print(f"jaspeech publish: error: {e}", file=sys.stderr)
        return 2
    for f in plan.files:
        size = (args.folder / f).stat().st_size
        print(f"{size:>14,d}  {f}")
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} {len(plan.files)} files, {plan.total_bytes:,d} bytes to datasets/{args.repo_id}")
    return 0


def _run_eval_cer(args) -> int:
    from jaspeech.model.eval.predictions import cer_metrics_from_file

    try:
        metrics = cer_metrics_from_file(args.file, model=args.model, dataset=args.dataset)
    except (OSError, ValueError) as e:
        print(f"jaspeech eval cer: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(metrics, ensure_ascii=False))
    return 0


def _run_eval_adu(args) -> int:
    from jaspeech.model.eval import adu_bench
    from jaspeech.model.eval.checkpoint import is_jaspeech_checkpoint

    kw = {"timeout": args.timeout, "retries": args.retries, "backoff": args.backoff}
    try:
        adu_bench.load_questions(args.data, args.language)  # a wrong --data fails before any model loads
    except adu_bench.AduBenchError as e:
        print(f"jaspeech eval adu-bench: error: {e}", file=sys.stderr)
        return 2
    if args.model_url:
        respond = adu_bench.openai_responder(args.model_url, args.model, **kw)
    elif is_jaspeech_checkpoint(args.model):
        respond = adu_bench.jaspeech_responder(args.model, max_new_tokens=args.max_new_tokens)
    else:
        print("jaspeech eval adu-bench: error: --model must be a JaSpeechLLM checkpoint folder, or a model name "
              "served at --model-url (an OpenAI-compatible audio chat endpoint)", file=sys.stderr)
        return 2
    try:
        summary = adu_bench.run(args.data, args.language, respond, args.model, args.out, args.judge_url,
                                args.judge_model, swap=args.swap, judge_key_env=args.judge_key_env, **kw)
    except adu_bench.AduBenchError as e:
        print(f"jaspeech eval adu-bench: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _run_train(args) -> int:
    from jaspeech.model.train.recipes import train

    try:
        result = train(args.config, args.set)
    except (FileNotFoundError, ValueError) as e:
        print(f"jaspeech train: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if k != "losses"}, ensure_ascii=False))
    return 0


def _run_convert_original(args) -> int:
    from jaspeech.model.convert_original import convert_original

    try:
        out = convert_original(args.src, args.out, encoder=args.encoder, tokenizer=args.tokenizer,
                               prompt_format=args.prompt_format)
    except (FileNotFoundError, ValueError) as e:
        print(f"jaspeech convert-original: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"converted": str(args.src), "out": str(out), "prompt_format": args.prompt_format}))
    return 0


def _run_eval_asr(args) -> int:
    from jaspeech.model.eval.eval_asr import evaluate

    try:
        line = evaluate(args.model, args.dataset, args.out, split=args.split, config=args.config,
                        audio_column=args.audio_column, text_column=args.text_column, batch_size=args.batch_size,
                        limit=args.limit, max_new_tokens=args.max_new_tokens)
    except (FileNotFoundError, ValueError) as e:
        print(f"jaspeech eval asr: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(line, ensure_ascii=False))
    return 0


def _run_eval_report(args) -> int:
    from jaspeech.model.eval.report import render

    print(render(args.results), end="")
    return 0


def _export_parser(sub) -> None:
    p = sub.add_parser("export", help="convert a built config to another project's training layout")
    p.add_argument("target", choices=("moshi",), help="moshi: a -duplex config for Moshi / J-Moshi fine-tuning")
    p.add_argument("build", type=Path, help="the --out folder of `jaspeech build`")
    p.add_argument("out", type=Path, help="where to write the WAVs, timing files and index")
    p.add_argument("--config", required=True, help="a -duplex config of the build, e.g. magpie-duplex")
    p.add_argument("--layout", default="jmoshi", choices=("jmoshi", "moshi-finetune"),
                   help="jmoshi: audio/<id>.wav + text/<id>.json (shogo0731/jmoshi-ft); moshi-finetune: "
                   "audio/<id>.wav + audio/<id>.json + <config>.jsonl (kyutai-labs/moshi-finetune)")
    p.add_argument("--sample-rate", type=int, default=None,
                   help="resample the WAVs to this rate (default: the corpus's own; Moshi's codec runs at 24000)")


def _run_export(args) -> int:
    """Dispatch only: the converter lives beside its format (jaspeech/export/)."""
    from jaspeech.export.moshi import export_moshi

    try:
        summary = export_moshi(args.build, args.out, args.config, args.layout, args.sample_rate)
    except (FileNotFoundError, ValueError) as e:
        print(f"jaspeech export: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if summary["failed"] else 0


def _view_parser(sub) -> None:
    p = sub.add_parser(
        "view", help="a local web page to audit a built corpus folder (rows, audio, diffs, rejects, plots)",
        description="Serve a read-only page over a built corpus folder: a filterable table of the kept rows of "
        "every config, each row's turns with audio, transcript diff and scores, the rejected rows by reason "
        "(with their audio when the build kept it) and the card's plots. Prints the URL; Ctrl-C stops it. "
        "Needs the view extra: pip install 'jaspeech[view]'.")
    p.add_argument("folder", type=Path, help="the --out folder of `jaspeech build`")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: only this machine can open the page)")


def _run_view(args) -> int:
    try:
        from jaspeech.view.server import serve
    except ImportError as e:
        print(f"jaspeech view: error: {e.name or e} is not installed; run pip install 'jaspeech[view]'", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535:
        print(f"jaspeech view: error: --port must be between 0 and 65535, got {args.port}", file=sys.stderr)
        return 2
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"jaspeech view: warning: listening on {args.host}: anyone who can reach this address can read "
              "the corpus", file=sys.stderr)

    def announce(url: str) -> None:
        print(f"jaspeech view: serving {args.folder} at", flush=True)
        print(url, flush=True)
        print("press Ctrl-C to stop", flush=True)

    try:
        serve(args.folder, host=args.host, port=args.port, announce=announce)
    except (FileNotFoundError, OSError) as e:
        print(f"jaspeech view: error: {e}", file=sys.stderr)
        return 2
    return 0


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """Turn argparse's prefix matching off everywhere, so an option never lands on a longer one
    (`--speak` would otherwise be read as `--speakers`)."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _no_abbreviations(child)


def make_parser() -> argparse.ArgumentParser:
    """The whole `jaspeech` command line (scripts/cli_reference.py writes docs/reference/cli.md from it)."""
    parser = argparse.ArgumentParser(prog="jaspeech", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jaspeech {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _build_parser(sub)

    env = sub.add_parser(
        "env", help="print this machine's build environment (what plans and shard manifests record; for bug reports)",
        description="The versions of the packages that can change a row's bytes, the model files' hashes, Python, "
        "the platform and the CPU's instruction-set flags, in the form plan.json and every shard manifest store "
        "them (`environment`). A build resumed under another environment is refused unless --allow-env-change.")
    env.add_argument("--json", action="store_true", help="print it as JSON (as plan.json stores it)")

    card = sub.add_parser("card", help="(re)write README.md of a built corpus folder from its files")
    card.add_argument("folder", type=Path)

    rs = sub.add_parser(
        "rescore", help="add or refresh the quality columns (turns[].dnsmos, turns[].signal) of a built corpus "
        "from its stored audio, then rewrite the card",
        description="Score every spoken turn of each complete shard from its stored FLAC and rewrite the shard "
        "atomically (every other value unchanged, no row dropped); a shard already scored by the same scorer "
        "version is skipped, so the command is resumable and a second run changes nothing.")
    rs.add_argument("folder", type=Path, help="the --out folder of `jaspeech build`")
    rs.add_argument("--config", default=None, help="only this config (default: every config in the folder)")
    rs.add_argument("--quality", default="dnsmos", choices=("dnsmos", "none"),
                    help="the MOS scorer (default dnsmos); none clears the scores and refreshes the signal checks")
    rs.add_argument("--quiet", action="store_true")

    hr = sub.add_parser(
        "hear", help="the ear's whole verdict on one clip and the text it should say (for auditing a row, bug reports)",
        description="Transcribe CLIP, score TEXT on it with the ear (forced: the text teacher-forced on the audio) "
        "and print the round trip's verdict: the transcript, CER, kana-CER, the text's log-probability, the stretch of "
        "the text the audio supports least, keep or reject and why. Exit code 0 either way; 2 for an unreadable clip.")
    hr.add_argument("clip", type=Path, help="an audio file (WAV, FLAC, MP3, ...: anything soundfile or FFmpeg reads)")
    hr.add_argument("--text", required=True, help="the text the clip should say (as the row's turns[].text)")
    hr.add_argument("--asr", default="faster-whisper", choices=("faster-whisper", "transformers"))
    hr.add_argument("--asr-model", default=None, help="as for `jaspeech build`")
    hr.add_argument("--json", action="store_true", help="print one JSON object (keep, reason, transcript, kana_cer, ...)")

    pub = sub.add_parser("publish", help="upload a built corpus folder to the Hugging Face Hub (resumable)")
    pub.add_argument("folder", type=Path)
    pub.add_argument("--repo-id", required=True, help="e.g. llm-jp/jaspeech-sft-audio")
    pub.add_argument("--private", action="store_true", help="create the repo as private if it does not exist")
    pub.add_argument("--include-rejects", action="store_true", help="also upload rejects/")
    pub.add_argument("--dry-run", action="store_true", help="list exactly what would be uploaded, upload nothing")

    tr = sub.add_parser("train", help="train JaSpeechLLM with a recipe (configs/train/*.yaml)")
    tr.add_argument("config", type=Path)
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value, e.g. --set training.max_steps=10 --set output_dir=runs/x")

    conv = sub.add_parser(
        "convert-original", help="convert an original ja-speech-llm (LlamaForSpeechLM) checkpoint to JaSpeechLLM",
        description="Map encoder.*, decoder.*, adapter.linear1/2 and config.json (encoder_id, decoder_id, "
        "decoder_config, adapter_kernel_size) of an original checkpoint folder onto a JaSpeechLLM checkpoint that "
        "computes the same logits (floor audio-token count, the original prompt format). LoRA-only runs and "
        "non-Whisper encoders cannot be converted.")
    conv.add_argument("src", type=Path, help="the original checkpoint folder (config.json + safetensors)")
    conv.add_argument("out", type=Path, help="where to write the JaSpeechLLM checkpoint")
    conv.add_argument("--encoder", default=None, help="Whisper id/folder for the feature extractor and config "
                      "(default: the checkpoint's encoder_id)")
    conv.add_argument("--tokenizer", default=None, help="tokenizer id/folder (default: the checkpoint's decoder_id)")
    conv.add_argument("--prompt-format", default="original-v2", choices=("original-v2", "original-v1"),
                      help="original-v2: the chat model's format; original-v1: audio first, as the ASR checkpoints "
                      "behind the published CER rows")

    ev = sub.add_parser("eval", help="evaluation")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    ev_cer = ev_sub.add_parser("cer", help="recompute CER/WER from a predictions CSV: normalised (kotoba-whisper "
                               "protocol) and raw (jiwer's default transforms)")
    ev_cer.add_argument("file", type=Path, help="CSV with reference_raw and prediction_raw columns")
    ev_cer.add_argument("--model", default=None)
    ev_cer.add_argument("--dataset", default=None)

    asr = ev_sub.add_parser("asr", help="transcribe a dataset (kotoba-whisper protocol), write predictions + metrics")
    asr.add_argument("--model", required=True,
                     help="transformers Whisper id/folder, CTranslate2 Whisper folder, or JaSpeechLLM checkpoint folder")
    asr.add_argument("--dataset", required=True, help="hub id or local dataset folder")
    asr.add_argument("--config", default=None)
    asr.add_argument("--split", default="test")
    asr.add_argument("--audio-column", default="audio")
    asr.add_argument("--text-column", default="transcription", help="default fits the japanese-asr/ja_asr.* sets")
    asr.add_argument("--batch-size", type=int, default=16)
    asr.add_argument("--limit", type=int, default=None)
    asr.add_argument("--max-new-tokens", type=int, default=200,
                     help="longest transcript in tokens, for a JaSpeechLLM checkpoint (default 200)")
    asr.add_argument("--out", required=True, type=Path)
    adu = ev_sub.add_parser("adu-bench", help="ADU-Bench (ja): answer spoken questions, judge with an LLM")
    adu.add_argument("--model", required=True,
                     help="a JaSpeechLLM checkpoint folder, or the model name served at --model-url")
    adu.add_argument("--model-url", default=None, help="OpenAI-compatible audio chat endpoint serving --model")
    adu.add_argument("--data", required=True, type=Path,
                     help="the ADU-Bench dataset root (a download of KuofengGao/ADU-Bench), the folder holding "
                     "input/ADU-Multilingual/<language>.jsonl and the audio under ADU-Multilingual/<language>/")
    adu.add_argument("--language", default="japanese", help="reads input/ADU-Multilingual/<language>.jsonl")
    adu.add_argument("--judge-url", default="https://api.openai.com/v1")
    adu.add_argument("--judge-model", default="gpt-4-0613")
    adu.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the judge's key")
    adu.add_argument("--max-new-tokens", type=int, default=512,
                     help="longest answer in tokens, for a JaSpeechLLM checkpoint (default 512)")
    adu.add_argument("--swap", action="store_true", help="also judge with response and reference swapped; average")
    adu.add_argument("--out", required=True, type=Path)
    adu.add_argument("--timeout", type=float, default=120.0)
    adu.add_argument("--retries", type=int, default=4)
    adu.add_argument("--backoff", type=float, default=2.0)
    rep = ev_sub.add_parser("report", help="the results table (model | ADU-Bench (ja) | CER %%) from result files")
    rep.add_argument("results", type=Path)
    _view_parser(sub)
    _export_parser(sub)

    _no_abbreviations(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if args.command == "build":
        return _run_build(args)
    if args.command == "card":
        return _run_card(args)
    if args.command == "env":
        return _run_env(args)
    if args.command == "publish":
        return _run_publish(args)
    if args.command == "rescore":
        return _run_rescore(args)
    if args.command == "hear":
        return _run_hear(args)
    if args.command == "train":
        return _run_train(args)
    if args.command == "view":
        return _run_view(args)
    if args.command == "export":
        return _run_export(args)
    if args.command == "convert-original":
        return _run_convert_original(args)
    if args.eval_command == "asr":
        return _run_eval_asr(args)
    if args.eval_command == "adu-bench":
        return _run_eval_adu(args)
    if args.eval_command == "report":
        return _run_eval_report(args)
    return _run_eval_cer(args)
