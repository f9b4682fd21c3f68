"""MMAD's answers files back into a run: ``replay:result/answers_1_shot_<model>.json``.

MMAD's query scripts (github jam-cc/MMAD, ``evaluation/examples``) write
``result/answers_{k}_shot_{model}.json``: a JSON list with one object per question, ``image``
(the path ``mmad.json`` names the image by), ``question`` (the prompt text, or an object holding
it), ``question_type`` (MMAD's type name), ``correct_answer`` and ``gpt_answer`` (the letter
their parser read from the model's answer; empty when the request failed; the model's text
where no letter was found). Each row maps to the record of an ``mmad`` build whose id ends in
that path (or, for a dataset `triad export --format mmad` wrote, whose id is that path), and
to its question of that type (MMAD's type names, or ours as the export names them); ``k`` in
the file name gives the condition (0: ``zero_shot``, 1: ``one_shot``). The letter becomes the
replayed answer; a ``gpt_answer`` that is not a letter A-E, which MMAD's scorer leaves out of
its table, replays as a failed request, which is never scored either (``triad eval`` then wants
``--allow-failures``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from instructiad.errors import InstructIADError
from instructiad.sources import mmad
from triad_eval.interop.mmad_export import MMAD_TYPES
from triad_eval.mmad import LETTERS

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset

_EXPORTED = {mmad_type: task for task, mmad_type in MMAD_TYPES.items()}
"""MMAD's type name -> our question type, as `triad export --format mmad` names ours."""
CONDITIONS = {0: "zero_shot", 1: "one_shot"}
"""MMAD's number of normal template images shown -> the condition that matches it."""
FIELDS = ("image", "question_type", "correct_answer", "gpt_answer")
_SHOTS = re.compile(r"answers_(\d+)_shot_")
_HEAD = 65536


def looks_like(path: Path) -> bool:
    """A ``.json`` file that opens as a list whose first object has MMAD's answer fields."""
    if path.suffix.lower() != ".json":
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD).decode("utf-8", "ignore").lstrip()
    except OSError:
        return False
    return head.startswith("[") and all(f'"{field}"' in head for field in ("question_type", "gpt_answer"))


def condition_of(path: Path) -> str:
    """The condition of an answers file, from the ``k`` of its name ``answers_{k}_shot_{model}.json``.

    Raises:
        InstructIADError: the name gives no ``k``, or a ``k`` no condition matches.
    """
    found = _SHOTS.search(path.name)
    if not found:
        raise InstructIADError(f"{path}: cannot tell the shots from the name (MMAD's is answers_<k>_shot_<model>.json)")
    shots = int(found.group(1))
    if shots not in CONDITIONS:
        raise InstructIADError(f"{path}: {shots}-shot answers; triad eval shows at most one reference (one_shot)")
    return CONDITIONS[shots]


def read(path: Path, data: EvalDataset) -> list[dict]:
    """The replay entries ``{"id", "task", "condition", "raw"}`` (or ``"error"``) of an MMAD
    answers file, one per row, mapped to ``data``'s records.

    Raises:
        InstructIADError: the file is not a JSON list of MMAD answers, or names the first row
            that is malformed, names an image or question the dataset does not have, gives
            another correct answer than the dataset's, or repeats an earlier row.
    """
    condition = condition_of(path)
    try:
        rows = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise InstructIADError(f"{path}: cannot read ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InstructIADError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(rows, list):
        raise InstructIADError(f"{path}: not a JSON list of MMAD answers")
    answers = {
        record_id: {q["type"]: q["answer"] for q in questions}
        for record_id, questions in zip(data.records.column("id"), data.records.column("questions"), strict=True)
    }
    by_image = {mmad.mmad_image(i): i for i in answers if i.startswith(f"{mmad.NAME}/")}
    entries: list[dict] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{path}: row {number}"
        complete = isinstance(row, dict) and FIELDS[3] in row
        if not complete or not all(isinstance(row.get(f), str) for f in FIELDS[:3]):
            raise InstructIADError(f"{where}: not an MMAD answer (needs {', '.join(FIELDS)})")
        image, mmad_type, correct = row["image"], row["question_type"], row["correct_answer"]
        record_id = by_image.get(image, image)
        if record_id not in answers:
            raise InstructIADError(
                f"{where}: image {image!r} is not in {data.source} (config {data.config}, split {data.split})"
            )
        asked = answers[record_id]
        task = next((t for t in (mmad.TYPES.get(mmad_type), _EXPORTED.get(mmad_type), mmad_type) if t in asked), None)
        if task is None:
            raise InstructIADError(f"{where}: the dataset has no question of type {mmad_type!r} about {image}")
        if correct != asked[task]:
            raise InstructIADError(
                f"{where}: correct_answer {correct!r}, but the dataset's is {asked[task]!r} "
                "(answers to another version of the questions?)"
            )
        if (record_id, task) in seen:
            raise InstructIADError(f"{where}: repeats row {seen[(record_id, task)]} ({image}, {mmad_type})")
        seen[(record_id, task)] = number
        entry = {"id": record_id, "task": task, "condition": condition}
        answer = row["gpt_answer"]
        if isinstance(answer, str) and answer in LETTERS:
            entry["raw"] = answer
        else:
            entry["error"] = f"MMAD read no letter A-E ({answer!r}); its scorer leaves this answer out"
        entries.append(entry)
    return entries
