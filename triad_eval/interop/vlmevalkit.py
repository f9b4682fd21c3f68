"""VLMEvalKit: its multiple-choice TSV out (`triad export --format vlmevalkit`) and its prediction
file in (`replay:<file> --model-args format=vlmevalkit`).

The TSV is what VLMEvalKit reads for a custom MCQ dataset (``$LMUData/<name>.tsv``, run with
``--data <name>``): ``index``, ``image`` (base64; a later row showing the same single image holds
the first row's index instead, as VLMEvalKit allows; several images are a list with their file
names in ``image_path``), ``question``, ``hint`` (the condition's text: process context, what the
reference and crops are), ``A``.. (options), ``answer``, ``category`` (the product) and
``l2-category`` (the task); plus ``record_id``, ``condition``, ``prompt`` (the exact text `triad
eval` sends, ``<image>`` where each image goes) and ``image_ids``. VLMEvalKit keeps every column
but ``image`` in its prediction file (``<model>_<name>.xlsx``, or ``.tsv`` / ``.json`` with
``PRED_FORMAT``) and adds ``prediction``, which is how predictions map back to requests.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from instructiad.errors import InstructIADError
from triad_eval.interop.answers import record_ids, unique_entries
from triad_eval.interop.rows import ExportRow

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset

NEEDS_IMAGES = True
"""VLMEvalKit's image datasets drop rows without an image: no ``no_image`` conditions."""
FAIL_MSG = "Failed to obtain answer"
"""What VLMEvalKit writes as the prediction of a request that failed (API errors, SKIP_ERR)."""
SUFFIXES = (".xlsx", ".tsv", ".json")
"""The prediction file formats VLMEvalKit writes (``PRED_FORMAT``)."""
MAPPING = ("record_id", "l2-category", "condition")


def tsv_name(config: str) -> str:
    """The TSV's name, which is the dataset name VLMEvalKit is run with (``--data``)."""
    return f"InstructIAD_{config}"


# --- export -------------------------------------------------------------------------------------


def write_tsv(rows: list[ExportRow], folder: Path, info: dict) -> None:
    """Write ``InstructIAD_<config>.tsv``, one row per request, in request order."""
    letters = sorted({letter for row in rows for letter in row.options})
    multi = any(len(row.pictures) > 1 for row in rows)
    header = ["index", "image", *(["image_path"] if multi else []), "question", "hint", *letters, "answer",
              "category", "l2-category", "record_id", "condition", "prompt", "image_ids"]  # fmt: skip
    first_row_of: dict[str, int] = {}  # sha256 of a single image -> the first row holding it
    path = folder / f"{tsv_name(info['dataset']['config'])}.tsv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        for index, row in enumerate(rows):
            pictures = row.pictures
            if len(pictures) == 1:
                sha = pictures[0].image.sha256
                image = str(first_row_of[sha]) if sha in first_row_of else _base64(pictures[0].image.data)
                first_row_of.setdefault(sha, index)
                paths = ""
            else:
                image = str([_base64(p.image.data) for p in pictures])
                paths = str([f"{p.image.sha256}{p.suffix}" for p in pictures])
            cells = [str(index), image, *([paths] if multi else []), row.question, row.context,
                     *(row.options.get(letter, "") for letter in letters), row.answer, row.category, row.task,
                     row.id, row.condition, row.prompt, json.dumps([p.id for p in pictures])]  # fmt: skip
            writer.writerow(cells)


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- answers (replay) ---------------------------------------------------------------------------


def looks_like(path: Path) -> bool:
    """A ``.xlsx``, ``.tsv`` or ``.json`` file whose head names an ``index`` and a ``prediction``."""
    if not path.is_file() or path.suffix.lower() not in SUFFIXES:
        return False
    if path.suffix.lower() == ".xlsx":
        return True
    try:
        with path.open("rb") as file:
            head = file.read(1 << 18).decode("utf-8", errors="ignore")
    except OSError:
        return False
    if path.suffix.lower() == ".tsv":
        first = head.split("\n", 1)[0]
        return "index" in first and "prediction" in first
    return head.lstrip().startswith("[") and '"prediction"' in head and '"index"' in head


def read(path: Path, data: EvalDataset) -> list[dict]:
    """The predictions of a VLMEvalKit prediction file of an exported TSV.

    A prediction starting with VLMEvalKit's failure message is a failed request.

    Raises:
        InstructIADError: an unreadable file or one without the columns, a row that names no
            record of ``data`` (named by its index), or a request answered twice.
    """
    table = _table(path)
    known = record_ids(data)
    found = []
    for number, row in enumerate(table, start=1):
        where = f"{path}: row index={_text(row.get('index')) or number}"
        record_id, task, condition = (_text(row.get(column)) for column in MAPPING)
        if not (record_id and task and condition):
            raise InstructIADError(f"{where}: no record_id, l2-category and condition (not a `triad export` TSV?)")
        if record_id not in known:
            raise InstructIADError(f"{where}: record id {record_id!r} is not in the dataset")
        prediction = _text(row.get("prediction"))
        entry = {"id": record_id, "task": task, "condition": condition, "raw": prediction}
        if prediction is not None and prediction.startswith(FAIL_MSG):
            entry = entry | {"raw": None, "error": prediction}
        found.append((where, entry))
    return unique_entries(found)


def _table(path: Path) -> list[dict]:
    """The file's rows as dicts (header -> cell)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            rows = _xlsx(path)
        elif suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise InstructIADError(f"{path}: not a list of prediction records")
        else:
            with path.open(encoding="utf-8", newline="") as file:
                rows = list(csv.DictReader(file, delimiter="\t"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as error:
        raise InstructIADError(f"{path}: cannot read the prediction file ({error})") from None
    if rows and "prediction" not in rows[0]:
        raise InstructIADError(f"{path}: no prediction column (a VLMEvalKit prediction file has one)")
    return rows


def _xlsx(path: Path) -> list[dict]:
    try:
        from openpyxl import load_workbook
        from openpyxl.utils.exceptions import InvalidFileException
    except ImportError:
        raise InstructIADError(
            f"{path}: reading .xlsx needs openpyxl (pip install openpyxl), or run VLMEvalKit with PRED_FORMAT=tsv"
        ) from None
    try:
        sheet = load_workbook(io.BytesIO(path.read_bytes()), read_only=True, data_only=True).worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, InvalidFileException) as error:  # not a workbook
        raise InstructIADError(f"{path}: cannot read the prediction file ({error})") from None
    if not values:
        return []
    header = [str(h) for h in values[0]]
    return [dict(zip(header, row, strict=False)) for row in values[1:]]


def _text(value: object) -> str | None:
    """A cell as text; empty and NaN cells (pandas writes NaN for a missing prediction) are None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():  # an index read back as 3.0
        value = int(value)
    text = str(value)
    return text if text else None
