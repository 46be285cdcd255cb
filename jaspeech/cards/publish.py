"""Publish a built corpus folder to the Hugging Face Hub, resumably.

Only the dataset files go up: README.md, assets/, data/ (and rejects/ on request); build manifests
and partial files stay local. The token is read by huggingface_hub from HF_TOKEN or the saved login
and is never printed or logged here.

huggingface_hub < 2 has `HfApi.upload_large_folder` (resumable, multi-commit); from 2.0 that job is
done by `upload_folder` itself (streamed through hf_xet, split into several commits, and resumed by
running the same call again), and `upload_large_folder` is gone. We call whichever the installed
version offers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jaspeech.builders.writer import PARTIAL


@dataclass(frozen=True)
class UploadPlan:
    files: list[str]  # paths relative to the folder, sorted
    total_bytes: int
    allow_patterns: list[str]


def upload_plan(folder: Path, include_rejects: bool = False) -> UploadPlan:
    if not (folder / "README.md").exists() or not (folder / "data").is_dir():
        raise FileNotFoundError(f"{folder} is not a built corpus (README.md and data/ are needed)")
    patterns = ["README.md", "assets/*", "data/**/*.parquet"] + (["rejects/**/*.jsonl"] if include_rejects else [])
    roots = ["assets", "data"] + (["rejects"] if include_rejects else [])
    files = ["README.md"]
    for root in roots:
        for p in sorted((folder / root).rglob("*")):
            if p.is_file() and not p.name.endswith(PARTIAL) and p.suffix in (".png", ".parquet", ".jsonl"):
                files.append(str(p.relative_to(folder)))
    return UploadPlan(sorted(files), sum((folder / f).stat().st_size for f in files), patterns)


def publish(folder: Path, repo_id: str, private: bool = False, include_rejects: bool = False,
            dry_run: bool = False, api=None) -> UploadPlan:
    """Create the dataset repo if missing and upload the dataset files; `dry_run` only plans."""
    plan = upload_plan(folder, include_rejects)
    if dry_run:
        return plan
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    api.create_repo(repo_id=repo_id, repo_type="dataset", private=private, exist_ok=True)
    if hasattr(api, "upload_large_folder"):
        api.upload_large_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset",
                                allow_patterns=plan.allow_patterns, private=private)
    else:
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset",
                          allow_patterns=plan.allow_patterns,
                          commit_message=f"Upload {folder.name} with jaspeech")
    return plan
