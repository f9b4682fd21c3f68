"""`triad leaderboard --space DIR`: write a Gradio Space that shows a results repo.

The Space is three files: ``app.py`` (:mod:`triad_eval.space_app` with the results repo, its
revision and the question types filled in), ``requirements.txt`` and ``README.md`` with the
Space's YAML header (``sdk: gradio`` at the version the tests run). The folder appears only
complete; the same arguments write the same bytes.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from cot_m import QUESTION_TYPES
from instructiad.errors import InstructIADError
from triad_eval import space_app

GRADIO_VERSION = "6.31.0"
"""The Gradio a Space runs (``sdk_version``); the ``space`` extra installs the same minor series."""
REQUIREMENTS = ("huggingface_hub>=0.30", "pandas>=2")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


def write_space(out: str | Path, repo_id: str, revision: str = "main") -> list[Path]:
    """Write the Space for the results repo ``repo_id`` at ``revision`` into the new folder ``out``.

    Raises:
        InstructIADError: ``out`` exists and is not empty, or the repo id or revision is malformed.
    """
    if not _REPO_ID.match(repo_id):
        raise InstructIADError(f"--repo {repo_id}: not a Hub repo id (owner/name)")
    if not _REVISION.match(revision) or ".." in revision:
        raise InstructIADError(f"--revision {revision}: not a branch, tag or commit name")
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InstructIADError(f"{out}: Space folder already exists and is not empty")
    if not out.parent.is_dir():
        raise InstructIADError(f"{out.parent}: parent of the Space folder does not exist")
    files = {"app.py": app_source(repo_id, revision), "requirements.txt": "\n".join(REQUIREMENTS) + "\n"}
    files["README.md"] = _readme(repo_id, revision)
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        for name, text in files.items():
            (partial / name).write_text(text, encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [out / name for name in files]


def app_source(repo_id: str, revision: str) -> str:
    """:mod:`triad_eval.space_app`'s source with the settings' defaults and the question types filled in."""
    source = Path(space_app.__file__).read_text(encoding="utf-8")
    fills = {
        'RESULTS_REPO = os.environ.get("RESULTS_REPO", "")': (
            f'RESULTS_REPO = os.environ.get("RESULTS_REPO", {_quoted(repo_id)})'
        ),
        'RESULTS_REVISION = os.environ.get("RESULTS_REVISION", "main")': (
            f'RESULTS_REVISION = os.environ.get("RESULTS_REVISION", {_quoted(revision)})'
        ),
        "QUESTION_TYPES: tuple[str, ...] = ()": f"QUESTION_TYPES: tuple[str, ...] = {tuple(QUESTION_TYPES)!r}",
    }
    for line, filled in fills.items():
        if source.count(line) != 1:  # a bug: the app module changed under the writer
            raise RuntimeError(f"triad_eval/space_app.py: expected the line {line!r} once")
        source = source.replace(line, filled)
    return source


def _quoted(text: str) -> str:
    return '"' + text + '"'  # both checked against patterns without quotes or backslashes


def _readme(repo_id: str, revision: str) -> str:
    return f"""---
title: InstructIAD leaderboard
emoji: 🏭
colorFrom: blue
colorTo: gray
sdk: gradio
sdk_version: {GRADIO_VERSION}
app_file: app.py
pinned: false
short_description: InstructIAD results read from a Hub dataset repo
---

# InstructIAD leaderboard

Shows the results that `triad push-results` published to the dataset repo
[`{repo_id}`](https://huggingface.co/datasets/{repo_id}) (revision `{revision}`): per dataset, the
headline table (zero-shot average, process gain with its 95% CI and McNemar p, one-shot and
expert gains, blind score and visual gain) and every task x condition. The button reloads them.

Settings (Space variables): `RESULTS_REPO` and `RESULTS_REVISION` replace the repo and revision
above; a private results repo needs an `HF_TOKEN` secret that can read it.

Run it locally: `pip install gradio=={GRADIO_VERSION} -r requirements.txt && python app.py`.
Written by `triad leaderboard --space` (package `instructiad`).
"""
