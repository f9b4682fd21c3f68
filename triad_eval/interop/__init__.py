"""Other evaluation tools' formats: answer files `replay:` reads, and exports `triad export` writes.

Exports (:data:`EXPORTS`, run by :func:`triad_eval.interop.export.export_dataset`) write one row
per question and condition with the exact prompt `triad eval` sends (:mod:`.rows`).

:data:`FORMATS` names, per answer-file format, an object as ``"module:object"``, or a module
alone as ``"module"`` (imported only when a file of that format is read, like
:mod:`triad_eval.registry` does for adapters). The object (or module) offers

- ``looks_like(path: Path) -> bool``: a cheap check (file name, first bytes) used to auto-detect
  the format of ``replay:<file>`` when ``--model-args format=`` is not given;
- ``read(path: Path, data: EvalDataset) -> Iterable[dict]``: the file's answers as replay entries
  ``{"id", "task", "condition", "raw"}`` (optional ``"probs"``, ``"error"``); ``data`` is the
  evaluated dataset, for formats whose rows must be mapped back to record ids. It raises
  :class:`~instructiad.errors.InstructIADError` naming the first row it cannot map.

A format whose rows name their record ids already sets ``NEEDS_DATA = False``: `replay:` then
reads it (``data`` is ``None``) before the dataset is opened; the others are read when the run
binds the dataset. A writer's module sets ``NEEDS_IMAGES = True`` where the tool cannot ask a
question without an image: `triad export` then refuses ``no_image`` conditions.

Auto-detection tries the formats in :data:`FORMATS` order, ``jsonl`` (the native format) last.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from instructiad.errors import InstructIADError
from triad_eval.registry import load_object

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset

FORMATS: dict[str, str] = {
    "lmms": "triad_eval.interop.lmms_eval",
    "vlmevalkit": "triad_eval.interop.vlmevalkit",
    "mmad": "triad_eval.interop.mmad",
    "jsonl": "triad_eval.interop.jsonl",
}
"""Answer-file formats `replay:` reads, by name (``--model-args format=<name>``)."""

EXPORTS: dict[str, str] = {
    "lmms-eval": "triad_eval.interop.lmms_eval:write_task",
    "vlmevalkit": "triad_eval.interop.vlmevalkit:write_tsv",
    "mmad": "triad_eval.interop.mmad_export:write_mmad",
    "jsonl": "triad_eval.interop.jsonl:write_requests",
}
"""`triad export --format <name>`: the writer of each format, ``write(rows, folder, info)``
(:class:`~triad_eval.interop.rows.ExportRow` list, an empty folder, what was exported)."""


class AnswerFormat(Protocol):
    """What a :data:`FORMATS` entry names."""

    def looks_like(self, path: Path) -> bool:
        """Whether ``path`` is probably a file of this format (cheap: name, first bytes)."""

    def read(self, path: Path, data: EvalDataset) -> list[dict]:
        """The replay entries of ``path``, rows mapped to ``data``'s record ids."""


def answer_format(name: str) -> AnswerFormat:
    """The format registered as ``name``.

    Raises:
        InstructIADError: no such format (the message lists the known ones).
    """
    if name not in FORMATS:
        raise InstructIADError(f"unknown answer-file format {name!r} (known: {', '.join(sorted(FORMATS))})")
    target = FORMATS[name]
    return load_object(target) if ":" in target else importlib.import_module(target)


def detect_format(path: Path) -> str:
    """The name of the first format whose ``looks_like`` accepts ``path`` (``jsonl`` last, and the
    fallback: its reader then says what is wrong with the file)."""
    names = [name for name in FORMATS if name != "jsonl"] + ["jsonl"]
    for name in names:
        if name in FORMATS and answer_format(name).looks_like(path):
            return name
    return "jsonl"
