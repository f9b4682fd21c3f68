"""MMAD: a built dataset's questions in the shape of MMAD's ``mmad.json`` (`triad export --format mmad`),
so MMAD's own query scripts and scorer run on them.

One file per condition, ``mmad_<condition>.json``: ``{"<image path>": {"image_path",
"mask_path", "similar_templates", "random_templates", "conversation": [{"Question", "Answer",
"Options", "type", "annotation"}, ...]}}``, keyed by record id (``<source>/<category>/...``, so
MMAD's scorer reads the dataset and class from the path, and ``good`` marks normal images). The
images are written at those paths under the export folder, which is MMAD's ``data_path``; the
one-shot reference is the template (``similar_templates`` and ``random_templates``: run MMAD with
one template image). Question types are named as MMAD names its own (discrimination is "Anomaly
Detection", which MMAD scores by balanced accuracy). Each question also keeps what MMAD ignores:
``task``, ``condition``, the exact ``prompt`` `triad eval` sends, and the condition's ``context``;
an entry lists its ``expert_crops``.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from instructiad.errors import InstructIADError
from triad_eval.interop.rows import ExportRow

NEEDS_IMAGES = True
"""MMAD's query scripts always send the query image: no ``no_image`` conditions."""
MMAD_TYPES = {
    "discrimination": "Anomaly Detection",
    "defect_type": "Defect Classification",
    "location": "Defect Localization",
    "appearance": "Defect Description",
    "root_cause": "Defect Analysis",
}
"""Our question types as MMAD names the matching ones (other types keep their own name)."""


def json_name(condition: str) -> str:
    """The file of one condition: ``mmad_<condition>.json``."""
    return f"mmad_{condition}.json"


def write_mmad(rows: list[ExportRow], folder: Path, info: dict) -> None:
    """Write ``mmad_<condition>.json`` per condition, the query and reference images at their
    record ids' paths and the expert crops under ``crops/``."""
    for condition in info["conditions"]:
        entries: dict[str, dict] = {}
        for row in (r for r in rows if r.condition == condition):
            paths = {p.id: _write_image(folder, p) for p in row.pictures}
            entry = entries.setdefault(row.id, _entry(row, paths))
            entry["conversation"].append(
                {
                    "Question": row.question,
                    "Answer": row.answer,
                    "Options": row.options,
                    "type": MMAD_TYPES.get(row.task, row.task),
                    "annotation": True,
                    "task": row.task,
                    "condition": row.condition,
                    "context": row.context,
                    "prompt": row.prompt,
                }
            )
        text = json.dumps(entries, indent=4, ensure_ascii=False) + "\n"
        (folder / json_name(condition)).write_text(text, encoding="utf-8")


def _entry(row: ExportRow, paths: dict[str, str]) -> dict:
    references = [paths[i] for i in row.reference_ids]
    crops = [paths[p.id] for p in row.pictures if p.role == "crop"]
    entry = {
        "image_path": paths[row.id] if row.id in paths else _safe(row.id),
        "mask_path": "",
        "similar_templates": references,
        "random_templates": references,
        "conversation": [],
    }
    return entry | ({"expert_crops": crops} if crops else {})


def _write_image(folder: Path, picture) -> str:
    """The image's path under ``folder`` (its record id, or ``crops/<sha256>.png``), written once."""
    name = f"crops/{picture.image.sha256}{picture.suffix}" if picture.role == "crop" else _safe(picture.id)
    path = folder / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(picture.image.data)
    return name


def _safe(record_id: str) -> str:
    """A record id as a relative path that stays inside the export folder.

    Raises:
        InstructIADError: an id that is absolute, climbs out with ``..`` or is empty.
    """
    path = PurePosixPath(record_id)
    if not record_id or path.is_absolute() or "\\" in record_id or any(p in ("", ".", "..") for p in path.parts):
        raise InstructIADError(f"record id {record_id!r} cannot be a path inside the export folder")
    return path.as_posix()
