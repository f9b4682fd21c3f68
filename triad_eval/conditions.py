"""Evaluation conditions: what a prompt carries besides the query image and the question.

A condition is one small class: it adds content parts (text, reference images) before the
query (:meth:`Condition.before`) or right after it (:meth:`Condition.after`), or says it
cannot serve a record; ``no_image`` instead removes every image from the
prompt the others build (the visual-dependency check). Conditions combine with ``+``
(``process+one_shot``) and always apply in :data:`CONDITIONS` order, so ``one_shot+process`` is
the same condition.
"""

from __future__ import annotations

import io
from typing import ClassVar

from PIL import Image

import cot_m
from cot_m.engine import template_set
from instructiad.errors import InstructIADError
from instructiad.seeds import rng_for
from triad_eval.api import ExpertSource, ImageRef
from triad_eval.data import EvalDataset
from triad_eval.experts.maps import crop


class Unavailable(Exception):
    """The condition cannot serve this record (the reason is the message)."""


class Condition:
    """Base class: no extra content."""

    name: ClassVar[str]
    drops_images: ClassVar[bool] = False
    """The request builder removes every image part (query, references, crops) from the prompt."""

    def before(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        """Content parts that go before the query image: ``{"type": "text", "text": ...}`` or
        ``{"type": "image", "image": ImageRef}``. Raises :class:`Unavailable`."""
        return []

    def after(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        """Content parts that go right after the query image (before the question)."""
        return []

    def note(self, record: dict) -> dict:
        """What the prediction should record about how this condition served the record."""
        return {}


class ZeroShot(Condition):
    """The query image and the question only."""

    name = "zero_shot"


class ProcessContext(Condition):
    """The category's process context, exactly as cot_m renders it (short form), before the query."""

    name = "process"

    def before(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        if not record["process_id"]:
            raise Unavailable("the category has no process annotation")
        templates = template_set(record["template_set"], record["template_version"])
        context = cot_m.process_context(data.annotation(record["process_id"]), "short", templates)
        return [{"type": "text", "text": context}]


class OneShot(Condition):
    """One normal image of the same category from the train split, chosen with a seed from the
    record id, shown as a reference before the query."""

    name = "one_shot"

    def before(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        candidates = data.normal_references.get(record["category"], [])
        if not candidates:
            raise Unavailable("the category has no normal training image")
        _, reference = candidates[rng_for(f"{seed}/{record['id']}/one_shot").randrange(len(candidates))]
        return [
            {"type": "text", "text": "Following is an image of a normal sample, to compare the query image with:"},
            {"type": "image", "image": reference},
        ]


class Expert(Condition):
    """Zoomed crops of the regions an inspection model flagged (Triad's regions of interest),
    shown right after the query image; with no region, a sentence says so."""

    name = "expert"
    LEAD = (
        "The following images are zoomed-in regions of the query image that an inspection model flagged "
        "as possibly anomalous:"
    )
    NONE = "The inspection model flagged no specific region; judge the whole image."

    def __init__(self, source: ExpertSource | None = None) -> None:
        if source is None:
            raise InstructIADError("condition expert needs --expert (e.g. maps:<folder>)")
        self.source = source
        self._regions: dict[str, tuple] = {}

    def _of(self, record: dict) -> tuple:
        if record["id"] not in self._regions:
            query = ImageRef(record["image_sha256"], record["image"]["bytes"])
            with Image.open(io.BytesIO(query.data)) as image:
                size = image.size
            self._regions[record["id"]] = (query, self.source.regions(record["id"], size))
        return self._regions[record["id"]]

    def after(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        query, regions = self._of(record)
        # "roi" marks the parts that present the regions, so that Triad can take the crops as
        # region tokens of the query image instead
        if not regions.boxes:
            return [{"type": "text", "text": self.NONE, "roi": True}]
        return [
            {"type": "text", "text": self.LEAD, "roi": True},
            *({"type": "image", "image": crop(query, b), "roi": True} for b in regions.boxes),
        ]

    def note(self, record: dict) -> dict:
        _, regions = self._of(record)
        return {"expert": self.source.spec, "boxes": [list(b) for b in regions.boxes], "fallback": regions.fallback}


class NoImage(Condition):
    """The visual-dependency check: the prompt the other conditions build, with every image
    removed (the query image, reference images, expert crops). The text stays word for word;
    nothing says the image is missing. Alone it is zero_shot without the image."""

    name = "no_image"
    drops_images = True


CONDITIONS: dict[str, type[Condition]] = {c.name: c for c in (ZeroShot, ProcessContext, OneShot, Expert, NoImage)}


def is_blind(name: str) -> bool:
    """Whether the (canonical) condition ``name`` removes the images."""
    return any(CONDITIONS[p].drops_images for p in name.split("+") if p in CONDITIONS)


def sighted(name: str) -> str:
    """The image-bearing condition a blind one is compared with: ``process+no_image`` ->
    ``process``, ``no_image`` -> ``zero_shot``; other names are returned as they are."""
    kept = [p for p in name.split("+") if not (p in CONDITIONS and CONDITIONS[p].drops_images)]
    return "+".join(kept) or "zero_shot"


def parse_condition(name: str, expert: ExpertSource | None = None) -> tuple[str, list[Condition]]:
    """``"one_shot+process"`` -> ``("process+one_shot", [ProcessContext(), OneShot()])``.

    Raises:
        InstructIADError: an unknown condition, ``zero_shot`` combined with another, or
            ``expert`` without an expert.
    """
    parts = [p.strip() for p in name.split("+") if p.strip()]
    unknown = [p for p in parts if p not in CONDITIONS]
    if unknown or not parts:
        raise InstructIADError(f"unknown condition {name!r} (known: {', '.join(CONDITIONS)}, combined with +)")
    if "zero_shot" in parts and len(parts) > 1:
        raise InstructIADError(f"condition {name!r}: zero_shot cannot be combined with others")
    ordered = [c for c in CONDITIONS if c in parts]
    return "+".join(ordered), [Expert(expert) if c == "expert" else CONDITIONS[c]() for c in ordered]
