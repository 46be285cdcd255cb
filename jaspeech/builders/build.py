"""The build driver: plan → executor → card. It knows no corpus and no model.

`build(opts)` plans the config once (`plan.py`: one pass over the input, stored in
`manifests/<config>/plan.json`), hands the pending shards to an executor (`executors.py`: local
processes, Ray tasks, or a Slurm job array), each of which runs `shards.run_shard`, and writes the
dataset card when every shard is complete. Re-running the same command continues where it stopped; a
different plan for the same config needs `--overwrite`. `--shard-index K` (one array task) reads the
stored plan and builds shard K only. A plan made in another environment (package versions, model files, CPU
instruction set: `environment.py`) is resumed only with `--allow-env-change`.
"""
from __future__ import annotations

import sys

from jaspeech.builders import corpus_spec, executors
from jaspeech.builders.environment import EnvironmentChanged, check_environment, describe_changes  # noqa: F401
from jaspeech.builders.plan import (  # noqa: F401  (BuildOptions, PlanMismatch, NoPlan: the driver's API)
    BuildOptions,
    NoPlan,
    PlanMismatch,
    load_or_create_plan,
    plan_command,
    plan_path,
    read_plan,
    stored_plans,
)
from jaspeech.builders.shards import pending_shards, summarize


def _log(opts: BuildOptions, msg: str) -> None:
    if not opts.quiet:
        print(msg, file=sys.stderr, flush=True)


def _check_environment(opts: BuildOptions, plan: dict) -> None:
    """Refuse to build on in an environment other than the plan's, or say what differs when allowed."""
    changes = check_environment(plan, str(plan_path(opts.out, opts.config)), opts.allow_env_change)
    if changes:  # a warning even with --quiet: these rows may differ from the ones already built
        print(f"{opts.corpus}/{opts.config}: warning: building on in another environment than the plan's "
              f"(--allow-env-change): {describe_changes(changes)}; each new shard's manifest records its own",
              file=sys.stderr, flush=True)


def _slurm(opts: BuildOptions) -> dict:
    """Write (and submit) the array script. A dry run reads nothing: --num-shards or a stored plan suffices."""
    if opts.dry_run:
        path = plan_path(opts.out, opts.config)
        plan = read_plan(opts) if path.exists() else None
        num_shards = plan["num_shards"] if plan else opts.num_shards
        if not num_shards:
            raise ValueError("--dry-run without a stored plan needs --num-shards (the array size)")
        print(executors.slurm_script(opts, num_shards, opts.slurm_template), end="")
        if plan is None:
            _log(opts, f"# no plan yet: before `sbatch`, write it once with\n#   {plan_command(opts)}")
        return {"config": opts.config, "num_shards": num_shards, "planned": plan is not None, "submitted": False}
    plan = load_or_create_plan(opts)
    _check_environment(opts, plan)
    job = executors.submit_slurm(executors.slurm_script(opts, plan["num_shards"], opts.slurm_template),
                                 opts.out, opts.config)
    _log(opts, f"submitted Slurm array job {job} ({plan['num_shards']} tasks)")
    return {**summarize(opts.out, plan), "submitted": True}


def build(opts: BuildOptions) -> dict:
    """Build (or resume) one config into `opts.out`; returns a summary of all its shards."""
    opts.out.mkdir(parents=True, exist_ok=True)
    if opts.executor == "slurm":
        return _slurm(opts)
    if opts.executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {opts.executor!r}; choose local, slurm or ray")
    plan = read_plan(opts) if opts.shard_index is not None else load_or_create_plan(opts)
    _check_environment(opts, plan)
    if plan.get("input_note"):  # what the corpus read from the input at planning time (spoken: the format)
        _log(opts, f"{opts.corpus}/{opts.config}: {plan['input_note']}")
    if opts.plan_only:
        _log(opts, f"{opts.corpus}/{opts.config}: planned {plan['num_rows']} input rows in "
             f"{plan['num_shards']} shards ({plan_path(opts.out, opts.config)})")
        return {**summarize(opts.out, plan), "planned": True}
    if opts.shard_index is not None and not 0 <= opts.shard_index < plan["num_shards"]:
        raise ValueError(f"--shard-index must be in [0, {plan['num_shards']})")
    todo = pending_shards(opts.out, plan, opts.shard_index)
    _log(opts, f"{opts.corpus}/{opts.config}: {plan['num_rows']} input rows in {plan['num_shards']} shards, "
         f"{len(todo)} to build ({opts.executor} executor)")
    progress = executors.Progress(plan, todo, opts.quiet)
    try:
        if opts.executor == "ray":
            executors.run_ray(opts.out, plan, todo, opts.ray_address, opts.gpus_per_task, opts.cpus_per_task,
                              progress.update, progress.advance,
                              opts.allow_env_change)
        else:
            executors.run_local(opts.out, plan, todo, opts.workers, progress.update, progress.advance,
                                opts.allow_env_change)
    finally:
        progress.close()

    summary = summarize(opts.out, plan)
    if summary["complete"]:
        from jaspeech.cards.render import write_card

        write_card(opts.out, corpus_spec(opts.corpus, stored_plans(opts.out)))
    _log(opts, f"{opts.config}: {summary['rows']} rows kept, {summary['rejects']} rejected, "
         f"{summary['audio_hours']:.3f} h" + ("" if summary["complete"] else " (incomplete)"))
    return summary
