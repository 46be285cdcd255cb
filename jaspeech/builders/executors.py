"""Where shards run: local worker processes, Ray tasks, or a Slurm job array.

The shard is the unit of work everywhere (`shards.run_shard`): an executor only decides which process
builds which pending shard of a stored plan, and calls `run_shard` there; it never calls back into the
driver. A row's content never depends on that choice.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import jinja2
from tqdm import tqdm

from jaspeech.builders.plan import COMMAND_OPTIONS, option_flags
from jaspeech.builders.shards import ProgressCallback, run_shard, shard_rows

SLURM_TEMPLATE = Path(__file__).parent / "templates" / "slurm.sbatch.j2"


class Progress:
    """One progress bar over all workers: input rows done, audio hours, shards, and tqdm's ETA.

    It moves per group (`advance`, from `run_shard`'s progress callback, through a queue from worker processes or
    Ray tasks) and settles per shard (`update`, from the manifest): a shard's total comes from its manifest, so a
    group report lost or arriving late (a retried Ray task) never counts twice.
    """

    def __init__(self, plan: dict, shards: list[int], quiet: bool, file=None) -> None:
        total = sum(shard_rows(plan["num_rows"], plan["num_shards"], k) for k in shards)
        self.bar = tqdm(total=total, unit="row", desc=plan["config"], disable=quiet, file=file or sys.stderr,
                        dynamic_ncols=True, mininterval=0)
        self.rows = 0  # input rows done (tqdm counts nothing when disabled by --quiet)
        self.hours = 0.0
        self.shards_done = 0
        self.shards_total = len(shards)
        self._reported: dict[int, tuple[int, float]] = {}  # shard -> (rows, seconds) reported by groups so far
        self._done: set[int] = set()
        self._lock = threading.Lock()  # groups are reported from a queue-draining thread

    def advance(self, shard: int, rows: int, seconds: float) -> None:
        with self._lock:
            if shard in self._done:
                return
            n, secs = self._reported.get(shard, (0, 0.0))
            self._reported[shard] = (n + rows, secs + seconds)
            self._show(rows, seconds / 3600)

    def update(self, manifest: dict) -> None:
        with self._lock:
            shard = manifest["shard"]
            n, secs = self._reported.pop(shard, (0, 0.0))
            self._done.add(shard)
            self.shards_done += 1
            self._show(max(0, manifest["rows"] + manifest["rejects"] - n), manifest["audio_hours"] - secs / 3600)

    def _show(self, rows: int, hours: float) -> None:
        self.rows += rows
        self.hours += hours
        self.bar.set_postfix(hours=f"{self.hours:.3f}", shards=f"{self.shards_done}/{self.shards_total}",
                             refresh=False)
        self.bar.update(rows)

    def close(self) -> None:
        self.bar.close()


# --- local processes ------------------------------------------------------------------------------

def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES if set, else what torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


_SLOT = None
_PROGRESS = None  # a worker's queue of group reports to the driver's bar


def _init_worker(threads: int, gpus: list[str], slot, progress=None) -> None:
    """Runs once in each fresh worker: pin it to one GPU (round robin) and to its share of the cores."""
    global _SLOT, _PROGRESS
    _PROGRESS = progress
    with slot.get_lock():
        _SLOT = slot.value
        slot.value += 1
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[_SLOT % len(gpus)]
    for var in ("OMP_NUM_THREADS", "JASPEECH_ASR_THREADS", "JASPEECH_TTS_THREADS"):
        os.environ[var] = str(threads)


def _run_task(args: tuple) -> dict:
    out, plan, shard, allow_env_change = args[:4]
    queue = args[4] if len(args) > 4 else _PROGRESS  # a Ray task gets its queue with the task
    return run_shard(Path(out), plan, shard, None if queue is None else lambda *report: queue.put(report),
                     allow_env_change)


def _drain(get: Callable[[], tuple | None], on_progress: ProgressCallback) -> None:
    """Hand group reports to the bar until the None that ends them."""
    while (report := get()) is not None:
        on_progress(*report)


def run_local(out: Path, plan: dict, shards: list[int], workers: int, on_done: Callable[[dict], None],
              on_progress: ProgressCallback | None = None, allow_env_change: bool = False) -> None:
    if workers <= 1 or len(shards) <= 1:
        for k in shards:
            on_done(run_shard(Path(out), plan, k, on_progress, allow_env_change))
        return
    gpus = visible_gpus()
    # each worker's share of the cores; JASPEECH_WORKER_THREADS overrides (e.g. to oversubscribe)
    threads = int(os.environ.get("JASPEECH_WORKER_THREADS", "0")) or max(1, (os.cpu_count() or 1) // workers)
    ctx = mp.get_context("spawn")  # fresh interpreters: CUDA and thread settings apply cleanly
    slot = ctx.Value("i", 0)
    queue = ctx.SimpleQueue() if on_progress is not None else None  # the workers' group reports
    drainer = threading.Thread(target=_drain, args=(queue.get, on_progress), daemon=True) if queue else None
    if drainer:
        drainer.start()
    try:
        with ctx.Pool(workers, initializer=_init_worker, initargs=(threads, gpus, slot, queue)) as pool:
            for manifest in pool.imap_unordered(_run_task, [(str(out), plan, k, allow_env_change) for k in shards]):
                on_done(manifest)
    finally:
        if drainer:
            queue.put(None)
            drainer.join()


# --- Ray ------------------------------------------------------------------------------------------

def run_ray(out: Path, plan: dict, shards: list[int], address: str | None, gpus_per_task: float,
            cpus_per_task: float, on_done: Callable[[dict], None], on_progress: ProgressCallback | None = None,
            allow_env_change: bool = False) -> None:
    """One Ray task per shard. `address`: 'auto' or ray://... for a running cluster, None for a local one.

    On a cluster, `out` must be on a filesystem every node sees (tasks write their shard there).
    """
    try:
        import ray
    except ImportError as e:
        raise ImportError("the ray executor needs `pip install 'ray[default]'`") from e
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    try:
        from ray.util.queue import Empty, Queue

        queue = Queue() if on_progress is not None else None  # group reports of every task, drained here
        task = ray.remote(num_gpus=gpus_per_task, num_cpus=cpus_per_task, max_retries=2)(_run_task)
        pending = [task.remote((str(out), plan, k, allow_env_change, queue)) for k in shards]

        def drain() -> None:
            while queue is not None:
                try:
                    on_progress(*queue.get_nowait())
                except Empty:
                    return

        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            drain()
            for ref in done:
                on_done(ray.get(ref))
        drain()
    finally:
        if started_here:
            ray.shutdown()


# --- Slurm ----------------------------------------------------------------------------------------

def build_command(opts, num_shards: int) -> list[str]:
    """The `jaspeech build` command line of one array task: the options, which it checks against the
    stored plan (it never reads the input to plan again)."""
    cmd = [sys.executable, "-m", "jaspeech", "build", opts.corpus, "--config", opts.config,
           "--out", str(Path(opts.out).resolve()), "--num-shards", str(num_shards)]
    return cmd + option_flags(opts, (*COMMAND_OPTIONS, "allow_env_change")) + ["--quiet"]


def slurm_script(opts, num_shards: int, template: Path | None = None) -> str:
    """Render the sbatch array script (one array task per shard) from an editable Jinja2 template."""
    path = Path(template) if template else SLURM_TEMPLATE
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(path.read_text(encoding="utf-8")).render(
        job_name=f"jaspeech-{opts.config}",
        num_shards=num_shards,
        max_parallel=opts.slurm_max_parallel,
        gpus_per_task=int(opts.gpus_per_task),
        cpus_per_task=opts.cpus_per_task,
        time=opts.slurm_time,
        partition=opts.slurm_partition,
        log_dir=str((Path(opts.out) / "slurm" / "logs").resolve()),
        workdir=os.getcwd(),
        command=shlex.join(build_command(opts, num_shards)),
    )


def submit_slurm(script: str, out: Path, config: str) -> str:
    """Write the script beside the corpus and submit it; returns sbatch's answer (the job id)."""
    if shutil.which("sbatch") is None:
        raise FileNotFoundError("sbatch is not on PATH: run on a Slurm login node, or use --dry-run to print the script")
    path = out / "slurm" / f"{config}.sbatch"
    (out / "slurm" / "logs").mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    result = subprocess.run(["sbatch", "--parsable", str(path)], check=True, capture_output=True, text=True)
    return result.stdout.strip()
