"""`triad push`: upload a built folder to the Hugging Face Hub and tag its version."""

from __future__ import annotations

import json
import os
from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.export import BUILD_REPORT
from instructiad.manifest import MANIFEST, read_manifest, verify


def push(
    folder: str | Path,
    repo_id: str,
    *,
    revision: str | None = None,
    dry_run: bool = False,
    private: bool = False,
    endpoint: str | None = None,
) -> list[str]:
    """Upload ``folder`` to the dataset repo ``repo_id`` and tag the commit.

    The folder is verified first. Data files of earlier versions that this one does not
    have are deleted in the same commit, so the configs' glob patterns only match this
    version. The token comes from the environment (``HF_TOKEN``) or ``hf auth login``.

    Args:
        folder: a folder written by ``triad build``.
        repo_id: e.g. ``"triad/instructiad"``.
        revision: the tag to create (default ``v<version>`` from the manifest).
        dry_run: list what would be uploaded; touch no network.
        private: create the repo as private if it does not exist.
        endpoint: the Hub's URL (default: ``HF_ENDPOINT`` or huggingface.co).

    Returns:
        Lines describing what was (or would be) done.
    """
    folder = Path(folder).expanduser().absolute()
    manifest = read_manifest(folder)
    problems = verify(folder)
    if problems:
        raise InstructIADError(f"{problems[0]} (run `triad verify {folder}`; nothing was uploaded)")
    tag = revision or f"v{manifest['version']}"
    files = {**{name: entry["bytes"] for name, entry in manifest["files"].items()}}
    files[MANIFEST] = (folder / MANIFEST).stat().st_size
    plan = [f"{name}  {size} bytes" for name, size in sorted(files.items())]
    named = json.loads((folder / BUILD_REPORT).read_text(encoding="utf-8"))["options"].get("hub_repo")
    if named and named != repo_id:
        plan.append(f"note: the card's load examples name {named}; rebuild with --repo {repo_id} to name this repo")
    total = sum(files.values())
    summary = f"{len(files)} files, {total} bytes -> datasets/{repo_id}, tag {tag}"
    if dry_run:
        return [*plan, f"dry run: would upload {summary}"]

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=endpoint, token=os.environ.get("HF_TOKEN"))
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
        refuse_existing_tag(api, repo_id, tag)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=folder,
            allow_patterns=sorted(files),
            delete_patterns=["data/**"],
            commit_message=f"InstructIAD {manifest['version']} (fingerprint {manifest['fingerprint'][:12]})",
        )
        api.create_tag(repo_id, tag=tag, repo_type="dataset", revision=commit.oid, tag_message=f"InstructIAD {tag}")
    except HfHubHTTPError as error:
        raise InstructIADError(f"push to {repo_id} failed: {str(error).splitlines()[0]}") from None
    except ValueError as error:  # the Hub refused the card's YAML metadata
        raise InstructIADError(f"push to {repo_id} failed: {' '.join(str(error).split())}") from None
    return [*plan, f"uploaded {summary} (commit {commit.oid})"]


def refuse_existing_tag(api, repo_id: str, tag: str) -> None:
    """Raise before anything is uploaded if the dataset repo ``repo_id`` already has ``tag``
    (``api``: a ``huggingface_hub.HfApi``); a tag made after the commit would fail with 409."""
    if tag in {ref.name for ref in api.list_repo_refs(repo_id, repo_type="dataset").tags}:
        raise InstructIADError(f"{repo_id}: tag {tag} already exists; choose another --revision (nothing was uploaded)")
