"""Evaluation conditions: what a prompt carries besides the query image and the question.

A condition is one small class: it adds content parts (text, reference images) before the
query, or says it cannot serve a record. Conditions combine with ``+`` (``process+one_shot``)
and always apply in :data:`CONDITIONS` order, so ``one_shot+process`` is the same condition.
"""

from __future__ import annotations

from typing import ClassVar

import cot_m
from cot_m.engine import template_set
from instructiad.errors import InstructIADError
from instructiad.seeds import rng_for
from triad_eval.data import EvalDataset


class Unavailable(Exception):
    """The condition cannot serve this record (the reason is the message)."""


class Condition:
    """Base class: no extra content."""

    name: ClassVar[str]

    def parts(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        """Content parts that go before the query image: ``{"type": "text", "text": ...}`` or
        ``{"type": "image", "image": ImageRef}``. Raises :class:`Unavailable`."""
        return []


class ZeroShot(Condition):
    """The query image and the question only."""

    name = "zero_shot"


class ProcessContext(Condition):
    """The category's process context, exactly as cot_m renders it (short form), before the query."""

    name = "process"

    def parts(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        if not record["process_id"]:
            raise Unavailable("the category has no process annotation")
        templates = template_set(record["template_set"], record["template_version"])
        context = cot_m.process_context(data.annotation(record["process_id"]), "short", templates)
        return [{"type": "text", "text": context}]


class OneShot(Condition):
    """One normal image of the same category from the train split, chosen with a seed from the
    record id, shown as a reference before the query."""

    name = "one_shot"

    def parts(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        candidates = data.normal_references.get(record["category"], [])
        if not candidates:
            raise Unavailable("the category has no normal training image")
        _, reference = candidates[rng_for(f"{seed}/{record['id']}/one_shot").randrange(len(candidates))]
        return [
            {"type": "text", "text": "Following is an image of a normal sample, to compare the query image with:"},
            {"type": "image", "image": reference},
        ]


CONDITIONS: dict[str, type[Condition]] = {c.name: c for c in (ZeroShot, ProcessContext, OneShot)}


def parse_condition(name: str) -> tuple[str, list[Condition]]:
    """``"one_shot+process"`` -> ``("process+one_shot", [ProcessContext(), OneShot()])``.

    Raises:
        InstructIADError: an unknown condition, or ``zero_shot`` combined with another.
    """
    parts = [p.strip() for p in name.split("+") if p.strip()]
    unknown = [p for p in parts if p not in CONDITIONS]
    if unknown or not parts:
        raise InstructIADError(f"unknown condition {name!r} (known: {', '.join(CONDITIONS)}, combined with +)")
    if "zero_shot" in parts and len(parts) > 1:
        raise InstructIADError(f"condition {name!r}: zero_shot cannot be combined with others")
    ordered = [c for c in CONDITIONS if c in parts]
    return "+".join(ordered), [CONDITIONS[c]() for c in ordered]
