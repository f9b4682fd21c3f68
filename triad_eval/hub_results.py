"""`triad push-results`: publish run folders and their leaderboard to a Hub dataset repo.

The repo holds ``runs/<run folder name>/`` (config.json, metrics.json, predictions.jsonl,
summary.txt, and usage.json where the run has one; never the response cache) and
``leaderboard.json``, the payload ``triad leaderboard`` writes, with each entry's ``runs`` naming
the run folders in the repo. One push is one commit, and the repo then holds exactly the runs
pushed: runs an earlier push left there are deleted in the same commit, so the leaderboard and
the run folders always agree. A Space written by ``triad leaderboard --space`` shows the repo.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import schemas
from instructiad.errors import InstructIADError
from instructiad.hub import refuse_existing_tag
from triad_eval.leaderboard import build_board, collect
from triad_eval.run_folder import CONFIG, METRICS, PREDICTIONS, SUMMARY, identity, read_config

LEADERBOARD = "leaderboard.json"
RUNS = "runs"
USAGE = "usage.json"
RUN_FILES = (CONFIG, METRICS, PREDICTIONS, SUMMARY)
"""What every published run folder holds; ``usage.json`` goes too where the run wrote one."""

_SECRET_PATTERNS = (
    ("a Hugging Face token", re.compile(rb"\bhf_[A-Za-z0-9]{30,}")),
    ("an OpenAI-style API key", re.compile(rb"\bsk-[A-Za-z0-9_-]{20,}")),
)
_SECRET_VARIABLES = re.compile(r"(TOKEN|KEY|SECRET|PASSWORD)(?!.*_(PATH|FILE|DIR|HOME)$)", re.IGNORECASE)
"""Environment variables whose values must not be published (not those naming where a secret lives)."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class ResultsPlan:
    """What one push uploads: repo path -> a local file or the bytes to write there."""

    files: dict[str, Path | bytes]
    board: dict

    def size(self, name: str) -> int:
        """Bytes of the file uploaded to ``name``."""
        source = self.files[name]
        return len(source) if isinstance(source, bytes) else source.stat().st_size


def plan_results(folders: list[Path]) -> ResultsPlan:
    """Check ``folders`` and lay out what a push uploads.

    Raises:
        InstructIADError: a folder is not a finished run, two folders are runs of one
            evaluation (same model, data and settings: the leaderboard would keep only one),
            two folders share a name, shards do not join, or a file holds what looks like a secret.
    """
    folders = [Path(f).expanduser().absolute() for f in folders]
    if not folders:
        raise InstructIADError("push-results: no run folder given")
    configs = {}
    for folder in folders:
        if not folder.is_dir():
            raise InstructIADError(f"{folder}: no such run folder")
        configs[folder] = read_config(folder)  # names the first missing file of an unfinished run
        if not (folder / SUMMARY).is_file():
            raise InstructIADError(f"{folder}: not a finished run (no {SUMMARY})")
    whole: dict[str, list[Path]] = defaultdict(list)
    for folder, config in configs.items():
        if not config.get("shard"):
            whole[identity(config)].append(folder)
    for repeated in whole.values():
        if len(repeated) > 1:
            raise InstructIADError(
                f"{repeated[0]} and {repeated[1]} are both runs of one evaluation (same model, data and settings); "
                "the leaderboard keeps one: pass one of them"
            )
    names: dict[str, Path] = {}
    for folder in folders:
        if not _SAFE_NAME.match(folder.name):
            raise InstructIADError(f"{folder}: a run folder name for the repo must be letters, digits, '.', '_', '-'")
        if folder.name in names:
            raise InstructIADError(f"{names[folder.name]} and {folder}: two run folders of one name; rename one")
        names[folder.name] = folder
    board = build_board(collect(folders))
    in_repo = {str(folder): f"{RUNS}/{name}" for name, folder in names.items()}
    for entry in board["entries"]:
        entry["runs"] = [in_repo[run] for run in entry["runs"]]
    problems = schemas.errors(board, "leaderboard")
    if problems:  # a bug, not bad input
        raise RuntimeError(f"leaderboard does not match its schema: {problems[0]}")
    files: dict[str, Path | bytes] = {}
    for name, folder in sorted(names.items()):
        for file in (*RUN_FILES, USAGE):
            if (folder / file).is_file():
                files[f"{RUNS}/{name}/{file}"] = folder / file
    files[LEADERBOARD] = (json.dumps(board, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    for name, source in files.items():
        _refuse_secrets(name if isinstance(source, bytes) else str(source), source)
    return ResultsPlan(files, board)


def _refuse_secrets(shown: str, source: Path | bytes) -> None:
    """Stop at a file that holds a token or key: the environment's secret values, or text shaped
    like a Hugging Face token or an OpenAI-style key. Read line by line (no secret spans lines)."""
    secrets = sorted(
        (variable, value.encode())
        for variable, value in os.environ.items()
        if _SECRET_VARIABLES.search(variable) and len(value) >= 8
    )
    lines = source.splitlines() if isinstance(source, bytes) else source.open("rb")
    try:
        for line in lines:
            for variable, value in secrets:
                if value in line:
                    raise InstructIADError(f"{shown}: holds the value of ${variable}; nothing was uploaded")
            for kind, pattern in _SECRET_PATTERNS:
                if pattern.search(line):
                    raise InstructIADError(f"{shown}: holds what looks like {kind}; nothing was uploaded")
    finally:
        if not isinstance(lines, list):
            lines.close()


def push_results(
    folders: list[Path],
    repo_id: str,
    *,
    revision: str | None = None,
    dry_run: bool = False,
    private: bool = False,
    endpoint: str | None = None,
) -> list[str]:
    """Upload ``folders`` and their leaderboard to the dataset repo ``repo_id`` in one commit.

    Args:
        folders: finished run folders (shards of one evaluation may be passed together).
        repo_id: e.g. ``"me/instructiad-results"``; created if missing.
        revision: a tag to create on the commit (e.g. ``results-2025-06``), so that a Space or
            a paper can pin these results.
        dry_run: list what would be uploaded; touch no network.
        private: create the repo as private if it does not exist.
        endpoint: the Hub's URL (default: ``HF_ENDPOINT`` or huggingface.co).

    Returns:
        Lines describing what was (or would be) done.

    Raises:
        InstructIADError: see :func:`plan_results`; no token (``HF_TOKEN`` or ``hf auth login``);
            the Hub refused the commit or the tag.
    """
    plan = plan_results(folders)
    lines = [f"{name}  {plan.size(name)} bytes" for name in sorted(plan.files)]
    total = sum(plan.size(name) for name in plan.files)
    tag = f", tag {revision}" if revision else ""
    summary = f"{len(plan.files)} files, {total} bytes -> datasets/{repo_id}{tag}"
    if dry_run:
        return [*lines, f"dry run: would upload {summary}"]

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    token = get_token()  # HF_TOKEN, else what `hf auth login` stored
    if not token:
        raise InstructIADError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (nothing was uploaded)")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
        if revision:
            refuse_existing_tag(api, repo_id, revision)
        present = api.list_repo_files(repo_id, repo_type="dataset")
        stale = sorted(name for name in present if name.startswith(f"{RUNS}/") and name not in plan.files)
        operations = [
            *(CommitOperationAdd(path_in_repo=name, path_or_fileobj=plan.files[name]) for name in sorted(plan.files)),
            *(CommitOperationDelete(path_in_repo=name) for name in stale),
        ]
        commit = api.create_commit(
            repo_id,
            operations,
            repo_type="dataset",
            commit_message=f"InstructIAD results: {len(plan.board['entries'])} leaderboard entries",
        )
        if revision:
            api.create_tag(repo_id, tag=revision, repo_type="dataset", revision=commit.oid)
    except HfHubHTTPError as error:
        raise InstructIADError(f"push-results to {repo_id} failed: {str(error).splitlines()[0]}") from None
    removed = f"; removed {len(stale)} file(s) of runs not pushed again" if stale else ""
    return [*lines, f"uploaded {summary} (commit {commit.oid}){removed}"]
