"""The `jaspeech` command: build corpora, write their cards, publish them, train and evaluate JaSpeechLLM."""
from __future__ import annotations

import argparse
import json
import sys
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
                   help="magpie, automultiturn (SFT); hh-rlhf, chatbot-arena (DPO); cc0, cc-by (FSD50K)")
    p.add_argument("--input", default=None,
                   help="hub id (default: the source's), a local JSONL/JSON/Parquet file or folder, or 'sample'")
    p.add_argument("--split", default="train", help="split to read from a hub input")
    p.add_argument("--out", required=True, type=Path, help="output folder (a dataset repo)")
    p.add_argument("--limit", type=int, default=None, help="only the first N input rows")
    p.add_argument("--tts", default="kokoro", choices=TTS_BACKENDS)
    p.add_argument("--tts-model", default=None, help="model folder for --tts cosyvoice2")
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
    p.add_argument("--max-kana-cer", type=float, default=0.10, help="drop rows above this kana-CER (default 0.10)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="longest spoken turn in seconds of synthesised audio (default 120)")
    p.add_argument("--num-shards", type=int, default=None, help="default: one shard per 2000 input rows")
    p.add_argument("--shard-index", type=int, default=None, help="build only this shard (job arrays)")
    p.add_argument("--workers", type=int, default=1,
                   help="local worker processes (one GPU each when GPUs are visible, else a share of the cores)")
    p.add_argument("--executor", default="local", choices=("local", "slurm", "ray"))
    p.add_argument("--ray-address", default=None, help="'auto' or ray://host:port; default: start a local Ray")
    p.add_argument("--gpus-per-task", type=float, default=0, help="GPUs per shard task (ray, slurm)")
    p.add_argument("--cpus-per-task", type=int, default=2, help="CPUs per shard task (ray, slurm)")
    p.add_argument("--dry-run", action="store_true", help="slurm: print the sbatch script, submit nothing")
    p.add_argument("--slurm-template", default=None, help="your own sbatch Jinja2 template")
    p.add_argument("--slurm-time", default="24:00:00")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--slurm-max-parallel", type=int, default=64, help="array tasks running at once")
    p.add_argument("--overwrite", action="store_true", help="discard an existing build of this config")
    p.add_argument("--quiet", action="store_true")


def _run_build(args) -> int:
    from jaspeech.builders.build import BuildOptions, PlanMismatch, build

    if args.limit is not None and args.limit < 0:
        raise SystemExit("--limit must be >= 0")
    opts = BuildOptions(
        corpus=args.corpus, config=args.config, out=args.out, input=args.input, split=args.split,
        limit=args.limit, captioner=args.captioner, captioner_model=args.captioner_model,
        captioner_url=args.captioner_url, captioner_concurrency=args.captioner_concurrency, tts=args.tts, tts_model=args.tts_model, speakers=args.speakers, asr=args.asr,
        asr_model=args.asr_model, max_kana_cer=args.max_kana_cer, max_seconds=args.max_seconds,
        num_shards=args.num_shards, shard_index=args.shard_index, workers=args.workers,
        overwrite=args.overwrite, quiet=args.quiet, executor=args.executor, ray_address=args.ray_address,
        gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task, dry_run=args.dry_run,
        slurm_template=args.slurm_template, slurm_time=args.slurm_time, slurm_partition=args.slurm_partition,
        slurm_max_parallel=args.slurm_max_parallel,
    )
    try:
        summary = build(opts)
    except (PlanMismatch, FileNotFoundError, ValueError) as e:
        print(f"jaspeech build: error: {e}", file=sys.stderr)
        return 2
    if not (args.executor == "slurm" and args.dry_run):
        print(json.dumps(summary, ensure_ascii=False))
    return 0


def _run_card(args) -> int:
    from jaspeech.builders import corpus_spec
    from jaspeech.cards.render import write_card

    plans = sorted(args.folder.glob("manifests/*/plan.json"))
    if not plans:
        print(f"jaspeech card: error: {args.folder} holds no jaspeech build", file=sys.stderr)
        return 2
    corpus = json.loads(plans[0].read_text(encoding="utf-8"))["corpus"]
    print(write_card(args.folder, corpus_spec(corpus)))
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
    from jaspeech.model.evaluation import cer_metrics_from_file

    print(json.dumps(cer_metrics_from_file(args.file, model=args.model, dataset=args.dataset), ensure_ascii=False))
    return 0


def _run_eval_adu(args) -> int:
    from jaspeech.model import adu_bench

    kw = {"timeout": args.timeout, "retries": args.retries, "backoff": args.backoff}
    if args.model_url:
        respond = adu_bench.openai_responder(args.model_url, args.model, **kw)
    elif Path(args.model, "config.json").exists():
        respond = adu_bench.jaspeech_responder(args.model)
    else:
        print("jaspeech eval adu-bench: error: --model must be a JaSpeechLLM checkpoint folder, or a model name "
              "served at --model-url (an OpenAI-compatible audio chat endpoint)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    questions = adu_bench.load_questions(args.data, args.language)
    responses = adu_bench.generate(questions, respond, args.out / "adu-bench.responses.jsonl")
    judgments = adu_bench.judge(questions, responses, args.out / "adu-bench.judgments.jsonl", args.judge_url,
                                args.judge_model, swap=args.swap, api_key_env=args.judge_key_env, **kw)
    summary = adu_bench.summarize({q.id: judgments[q.id] for q in questions}, args.model)
    (args.out / "adu-bench.summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), "utf-8")
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _run_train(args) -> int:
    from jaspeech.model.recipes import train

    result = train(args.config, args.set)
    print(json.dumps({k: v for k, v in result.items() if k != "losses"}, ensure_ascii=False))
    return 0


def _run_eval_asr(args) -> int:
    from jaspeech.model.eval_asr import evaluate

    line = evaluate(args.model, args.dataset, args.out, split=args.split, config=args.config,
                    audio_column=args.audio_column, text_column=args.text_column, batch_size=args.batch_size,
                    limit=args.limit)
    print(json.dumps(line, ensure_ascii=False))
    return 0


def _run_eval_report(args) -> int:
    from jaspeech.model.report import render

    print(render(args.results), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jaspeech", description=__doc__)
    parser.add_argument("--version", action="version", version=f"jaspeech {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _build_parser(sub)

    card = sub.add_parser("card", help="(re)write README.md of a built corpus folder from its files")
    card.add_argument("folder", type=Path)

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

    ev = sub.add_parser("eval", help="evaluation")
    ev_sub = ev.add_subparsers(dest="eval_command", required=True)
    ev_cer = ev_sub.add_parser("cer", help="recompute CER/WER (kotoba-whisper protocol) from a predictions CSV")
    ev_cer.add_argument("file", type=Path, help="CSV with reference_raw and prediction_raw columns")
    ev_cer.add_argument("--model", default=None)
    ev_cer.add_argument("--dataset", default=None)

    asr = ev_sub.add_parser("asr", help="transcribe a dataset (kotoba-whisper protocol), write predictions + metrics")
    asr.add_argument("--model", required=True, help="transformers Whisper id/folder or CTranslate2 Whisper folder")
    asr.add_argument("--dataset", required=True, help="hub id or local dataset folder")
    asr.add_argument("--config", default=None)
    asr.add_argument("--split", default="test")
    asr.add_argument("--audio-column", default="audio")
    asr.add_argument("--text-column", default="transcription", help="default fits the japanese-asr/ja_asr.* sets")
    asr.add_argument("--batch-size", type=int, default=16)
    asr.add_argument("--limit", type=int, default=None)
    asr.add_argument("--out", required=True, type=Path)
    adu = ev_sub.add_parser("adu-bench", help="ADU-Bench (ja): answer spoken questions, judge with an LLM")
    adu.add_argument("--model", required=True,
                     help="a JaSpeechLLM checkpoint folder, or the model name served at --model-url")
    adu.add_argument("--model-url", default=None, help="OpenAI-compatible audio chat endpoint serving --model")
    adu.add_argument("--data", required=True, type=Path, help="ADU-Bench folder (question JSONL + audio)")
    adu.add_argument("--language", default="japanese")
    adu.add_argument("--judge-url", default="https://api.openai.com/v1")
    adu.add_argument("--judge-model", default="gpt-4-0613")
    adu.add_argument("--judge-key-env", default="OPENAI_API_KEY", help="environment variable holding the judge's key")
    adu.add_argument("--swap", action="store_true", help="also judge with response and reference swapped; average")
    adu.add_argument("--out", required=True, type=Path)
    adu.add_argument("--timeout", type=float, default=120.0)
    adu.add_argument("--retries", type=int, default=4)
    adu.add_argument("--backoff", type=float, default=2.0)
    rep = ev_sub.add_parser("report", help="the results table (model | ADU-Bench (ja) | CER %%) from result files")
    rep.add_argument("results", type=Path)

    args = parser.parse_args(argv)
    if args.command == "build":
        return _run_build(args)
    if args.command == "card":
        return _run_card(args)
    if args.command == "publish":
        return _run_publish(args)
    if args.command == "train":
        return _run_train(args)
    if args.eval_command == "asr":
        return _run_eval_asr(args)
    if args.eval_command == "adu-bench":
        return _run_eval_adu(args)
    if args.eval_command == "report":
        return _run_eval_report(args)
    return _run_eval_cer(args)
