"""The harness's own JSON lines: requests out (`triad export --format jsonl`) and answers in
(`replay:<file>`, the native format).

An export is ``requests.jsonl``, one request per line, with its images in ``images/`` (named by
their sha256). An answers file has one line per request: ``{"id", "task", "condition", "raw"}``
with optional ``"probs"`` (letter -> probability), or ``"error"`` for a request that failed
there; a run's ``predictions.jsonl`` is such a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from instructiad.errors import InstructIADError
from triad_eval.interop.answers import FIELDS
from triad_eval.interop.rows import ExportRow

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset

NEEDS_DATA = False
"""Rows name their record ids already: the file is read (and checked) before the dataset opens."""
REQUESTS = "requests.jsonl"


def write_requests(rows: list[ExportRow], folder: Path, info: dict) -> None:
    """Write ``requests.jsonl`` and ``images/<sha256>.<ext>``: each line is a row's fields, its
    prompt (``<image>`` where each image goes) and its images in prompt order (role, id, path)."""
    images = folder / "images"
    images.mkdir()
    with (folder / REQUESTS).open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            pictures = []
            for picture in row.pictures:
                name = f"images/{picture.image.sha256}{picture.suffix}"
                if not (folder / name).exists():
                    (folder / name).write_bytes(picture.image.data)
                pictures.append(
                    {"role": picture.role, "id": picture.id, "path": name, "sha256": picture.image.sha256}
                    | ({"box": list(picture.box)} if picture.box else {})
                )
            out.write(json.dumps(row.entry() | {"images": pictures}, ensure_ascii=False) + "\n")


def looks_like(path: Path) -> bool:
    """A file whose first line is a JSON object with ``id``, ``task`` and ``condition``."""
    if not path.is_file():
        return False
    try:
        with path.open(encoding="utf-8") as lines:
            first = next((line for line in lines if line.strip()), "")
        entry = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(entry, dict) and {"id", "task", "condition"} <= entry.keys()


def read(path: Path, data: EvalDataset | None = None) -> Iterator[dict]:
    """The answers of a JSON lines file, one at a time as the file is read (a run's file can
    be large; ``data`` is not needed).

    Each entry carries its ``line``, so that replay names the line of a second answer to one
    request.

    Raises:
        InstructIADError: an unreadable file, or a line that is not an object with id, task
            and condition (named ``file:line``).
    """
    shared: dict[str, str] = {}  # one object per distinct id, task, condition (repeated on many lines)
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                entry = _entry(line, f"{path}:{number}")
                for name in ("id", "task", "condition"):
                    entry[name] = shared.setdefault(entry[name], entry[name])
                yield entry | {"line": number}
    except (OSError, UnicodeDecodeError) as error:
        raise InstructIADError(f"{path}: cannot read the predictions file ({error})") from None


def _entry(line: str, where: str) -> dict:
    """What replay reads of one line (:data:`~triad_eval.interop.answers.FIELDS`)."""
    try:
        entry = json.loads(line)
        if not all(isinstance(entry[k], str) for k in ("id", "task", "condition")):
            raise TypeError
    except (json.JSONDecodeError, KeyError, TypeError):
        raise InstructIADError(f"{where}: not a JSON object with id, task and condition") from None
    return {k: entry[k] for k in FIELDS if k in entry}
