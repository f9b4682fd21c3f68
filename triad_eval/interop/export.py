"""`triad export`: a built dataset's questions, as `triad eval` asks them, in another tool's format.

Everything is checked before anything is written: the format, tasks, conditions, expert, the
dataset and the output folder (it must not exist, or be empty). The export is written into a
hidden sibling folder (``.DIR.partial``) that is renamed into place at the end, so a failed
export leaves nothing behind. The same dataset and settings give the same bytes.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.jsonio import write_json
from triad_eval.conditions import is_blind, parse_condition
from triad_eval.interop import EXPORTS
from triad_eval.registry import load_object

EXPORT_INFO = "export.json"
"""What every export folder also holds: the format, dataset, tasks, conditions, seed and expert."""


@dataclass
class ExportSettings:
    """What `triad export` was asked to do."""

    data: str
    config: str
    format: str
    out: Path
    tasks: list[str]
    conditions: list[str]
    split: str = "test"
    revision: str | None = None
    seed: int = 0
    limit: int | None = None
    expert: str | None = None
    expert_args: dict[str, str] = field(default_factory=dict)


@dataclass
class ExportResult:
    """Where the export went and how many rows it holds per condition."""

    folder: Path
    rows: dict[str, int]


def export_dataset(settings: ExportSettings) -> ExportResult:
    """Write ``settings.data``'s questions in ``settings.format`` to ``settings.out``.

    Raises:
        InstructIADError: an unknown format, task or condition, a condition the format cannot
            carry (no image), an output folder that is not empty, a dataset that cannot be
            opened; nothing is written then.
    """
    from triad_eval.data import describe, open_dataset
    from triad_eval.experts import parse_expert
    from triad_eval.interop.rows import export_rows
    from triad_eval.requests import parse_tasks

    if settings.format not in EXPORTS:
        raise InstructIADError(f"unknown export format {settings.format!r} (known: {', '.join(EXPORTS)})")
    writer = load_object(EXPORTS[settings.format])
    tasks = parse_tasks(settings.tasks)
    expert = parse_expert(settings.expert, settings.expert_args)
    conditions = [parse_condition(c, expert)[0] for c in settings.conditions]
    if not conditions:
        raise InstructIADError("--conditions: give at least one condition")
    if getattr(sys.modules[writer.__module__], "NEEDS_IMAGES", False):
        blind = next((c for c in conditions if is_blind(c)), None)
        if blind:
            raise InstructIADError(f"--format {settings.format} cannot carry a question without an image ({blind})")
    out = settings.out.expanduser().absolute()
    _check_out(out)
    data = open_dataset(settings.data, settings.config, settings.split, settings.revision)
    rows = export_rows(data, tasks, list(dict.fromkeys(conditions)), settings.seed, settings.limit, expert)
    dataset = describe(data)
    info = {
        "dataset": {k: dataset[k] for k in ("config", "split", "revision", "fingerprint") if k in dataset},
        "tasks": [t for t in tasks if any(r.task == t for r in rows)],
        "conditions": [c for c in dict.fromkeys(conditions) if any(r.condition == c for r in rows)],
        "seed": settings.seed,
        "expert": expert.spec if expert else None,
    }
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)  # left by an export that was killed
    try:
        partial.mkdir(parents=True)
        writer(rows, partial, info)
        counts = _counts(rows)
        write_json(partial / EXPORT_INFO, {"format": settings.format, **info, "rows": counts})
        _check_out(out)  # checked again: another writer may have filled it meanwhile
        if out.is_dir():
            out.rmdir()
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return ExportResult(out, counts)


def _counts(rows: list) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.condition] = counts.get(row.condition, 0) + 1
    return counts


def _check_out(out: Path) -> None:
    if out.is_dir() and any(out.iterdir()):
        raise InstructIADError(f"{out}: output folder is not empty")
    if out.exists() and not out.is_dir():
        raise InstructIADError(f"{out}: exists and is not a folder")
