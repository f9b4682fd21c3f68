"""Errors raised on bad input: each carries a one-line message naming the file and the problem."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def shown(text: str | Path) -> str:
    """``text`` (often a path) made printable and JSON-safe: bytes of a file name that are not
    UTF-8 (names from another system's encoding) are escaped as ``\\xff``."""
    text = os.fspath(text)
    try:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class InstructIADError(Exception):
    """Bad input the user can fix. The CLI prints the message on one line and exits with 1."""


class BadFileError(InstructIADError):
    """One input file (image, mask or split-file entry) is unusable.

    Unlike other errors, a bad file can be skipped with ``--on-bad-file skip``.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = shown(path)
        self.problem = shown(problem)
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):  # survives the trip back from a worker process
        return (BadFileError, (self.path, self.problem))


OnBadFile = Callable[[BadFileError], None]
"""What to do with a bad file: raise it (the default) or record it and go on."""


def raise_bad_file(error: BadFileError) -> None:
    """The default ``on_bad`` policy: stop at the first bad file."""
    raise error


class SkippedFiles:
    """The ``--on-bad-file skip`` policy: remember each bad file and go on."""

    def __init__(self) -> None:
        self.errors: list[BadFileError] = []

    def __call__(self, error: BadFileError) -> None:
        self.errors.append(error)

    def as_list(self) -> list[dict[str, str]]:
        """The skipped files as JSON-ready dicts, sorted by path."""
        return sorted(({"path": e.path, "problem": e.problem} for e in self.errors), key=lambda d: d["path"])
