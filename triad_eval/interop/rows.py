"""What every export writes: one row per question and condition, built from the requests
`triad eval` sends (:func:`triad_eval.requests.build_requests`), so the text is the same text.

A row keeps the request's content parts in order, with each image named by what it is: the
query image (the record), the one-shot reference (a normal training record, by its id) or an
expert crop (its box). :attr:`ExportRow.prompt` is the prompt as one text, ``<image>`` where each
image goes, the way most LMM harnesses write an interleaved prompt.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from instructiad.errors import InstructIADError
from triad_eval.api import ExpertSource, ImageRef, Request
from triad_eval.requests import INSTRUCTION, build_requests

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset

IMAGE_TOKEN = "<image>"
"""Where an image goes in :attr:`ExportRow.prompt` (lmms-eval's and LLaVA's placeholder)."""
ROLES = ("query", "reference", "crop")


@dataclass(frozen=True)
class Picture:
    """An image of a prompt.

    Attributes:
        role: ``query`` (the record's image), ``reference`` (a one-shot normal image) or ``crop``
            (an expert's region of interest).
        id: the record id of a query or reference; ``<record id>#crop<n>`` for the n-th crop.
        image: its sha256 and bytes.
        box: a crop's box in the query image (left, top, right, bottom).
    """

    role: str
    id: str
    image: ImageRef
    box: tuple[int, ...] | None = None

    @property
    def suffix(self) -> str:
        """The file suffix of its bytes' format (``.png``, ``.jpg``)."""
        return image_suffix(self.image.data)


@dataclass(frozen=True)
class ExportRow:
    """One question about one record under one condition, as `triad eval` would ask it.

    Attributes:
        id, task, condition, category, label, options, answer: as in
            :class:`~triad_eval.api.Request` (``condition`` canonical: ``process+one_shot``).
        question: the question's own text (no options, no instruction).
        parts: the content parts in order: ``{"type": "text", "text"}`` or
            ``{"type": "image", "picture": Picture}``.
    """

    id: str
    task: str
    condition: str
    category: str
    label: str
    question: str
    options: dict[str, str]
    answer: str
    parts: tuple[dict, ...]

    @property
    def pictures(self) -> list[Picture]:
        """The images, in prompt order."""
        return [p["picture"] for p in self.parts if p["type"] == "image"]

    @property
    def prompt(self) -> str:
        """The prompt as one text: the text parts in order, one per line, :data:`IMAGE_TOKEN`
        where each image goes."""
        return "\n".join(p["text"] if p["type"] == "text" else IMAGE_TOKEN for p in self.parts)

    @property
    def context(self) -> str:
        """The text that comes with the condition (process context, what the reference and the
        crops are), one part per line: everything but the question block."""
        return "\n".join(p["text"] for p in self.parts[:-1] if p["type"] == "text")

    @property
    def reference_ids(self) -> list[str]:
        """The record ids of the one-shot reference images."""
        return [p.id for p in self.pictures if p.role == "reference"]

    def entry(self) -> dict:
        """The row's fields every export names the same way (JSON-ready, no images)."""
        return {
            "id": self.id,
            "task": self.task,
            "condition": self.condition,
            "category": self.category,
            "label": self.label,
            "question": self.question,
            "options": self.options,
            "answer": self.answer,
            "prompt": self.prompt,
        }


def image_suffix(data: bytes) -> str:
    """``.png``, ``.jpg``, ... from the image's own header (``.png`` for unknown formats)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = (image.format or "PNG").lower()
    except OSError:
        kind = "png"
    return ".jpg" if kind == "jpeg" else f".{kind}"


def export_rows(
    data: EvalDataset,
    tasks: list[str],
    conditions: list[str],
    seed: int = 0,
    limit: int | None = None,
    expert: ExpertSource | None = None,
) -> list[ExportRow]:
    """The rows of every request `triad eval` would send for ``tasks`` x ``conditions`` (the same
    seed, limit and expert give the same prompts), in its order: record, task, condition.

    Raises:
        InstructIADError: a condition no record can be asked under (e.g. ``one_shot`` without a
            train split), or no request at all.
    """
    requests, unavailable = build_requests(data, tasks, conditions, seed, limit, expert)
    if not requests:
        reasons = "; ".join(f"{reason} ({count})" for reason, count in sorted(unavailable.items()))
        raise InstructIADError(f"{data.source}: nothing to export" + (f" ({reasons})" if reasons else ""))
    references: dict[str, str] = {}  # sha256 -> record id, only read where one_shot asks for it
    if any("one_shot" in r.condition.split("+") for r in requests):
        references = {ref.sha256: i for refs in data.normal_references.values() for i, ref in refs}
    questions: dict[int, dict[str, str]] = {}
    rows = []
    for request in requests:
        if request.index not in questions:
            record = data.records[request.index]
            questions = {request.index: {q["type"]: q["question"] for q in record["questions"]}}
        rows.append(_row(request, questions[request.index][request.task], references))
    return rows


def _row(request: Request, question: str, references: dict[str, str]) -> ExportRow:
    content = request.messages[0]["content"]
    images = [i for i, p in enumerate(content) if p["type"] == "image"]
    plain = [i for i in images if not content[i].get("roi")]
    query = plain[-1] if plain else None  # references come before the query, crops after it
    parts, crops = [], 0
    boxes = request.notes.get("boxes", [])
    for i, part in enumerate(content):
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
            continue
        image = part["image"]
        if part.get("roi"):
            box = tuple(boxes[crops]) if crops < len(boxes) else None
            picture = Picture("crop", f"{request.id}#crop{crops}", image, box)
            crops += 1
        elif i == query:
            picture = Picture("query", request.id, image)
        else:
            picture = Picture("reference", references.get(image.sha256, image.sha256), image)
        parts.append({"type": "image", "picture": picture})
    last = parts[-1]["text"] if parts and parts[-1]["type"] == "text" else ""
    if not last.endswith(INSTRUCTION):  # the request builder's own layout changed: fail loudly
        raise InstructIADError(f"{request.id}: the prompt does not end with the question block")
    return ExportRow(
        request.id, request.task, request.condition, request.category, request.label, question,
        dict(request.options), request.answer, tuple(parts),
    )  # fmt: skip
