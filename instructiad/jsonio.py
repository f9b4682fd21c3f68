"""JSON files as the project writes and reads them: one writer, one reader.

Every JSON file the project writes (manifests, build reports, run folders, leaderboards, the
synthetic source's marker) goes through :func:`write_json`, so they share one format: UTF-8,
two-space indent, non-ASCII kept as is, a trailing newline. The file is written beside its
final name and renamed into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from instructiad.errors import InstructIADError


def write_json(path: str | Path, data: dict, *, sort_keys: bool = False) -> None:
    """Write ``data`` to ``path`` as indented UTF-8 JSON with a trailing newline, atomically
    (a partial sibling file, ``.<name>.partial``, renamed into place)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    text = json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n"
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_json(path: str | Path) -> dict:
    """The JSON file at ``path``.

    Raises:
        InstructIADError: the file is missing or not valid UTF-8 JSON; one line naming it.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InstructIADError(f"{path}: unreadable ({error})") from None
