"""What templates can read: the context built from a record and its process annotation."""

from __future__ import annotations

import re

import numpy as np

from instructiad.processes import Defect, ProcessAnnotation


def category_context(annotation: ProcessAnnotation | None, source: str, category: str) -> dict:
    """Fields every template can read.

    ``product`` {name, description, plural, and the words that agree with its number: this
    (this/these), is (is/are), has (has/have), does (does/do), it (it/they)}, ``materials``
    [str], ``process`` [{id, name, description}], ``normal_appearance`` [str],
    ``acceptable_variation`` [str], ``source``, ``category``. Without an annotation the
    product is named after the category (singular) and the lists are empty.
    """
    if annotation is None:
        return {
            "source": source,
            "category": category,
            "product": {"name": category.replace("_", " "), "description": ""} | _agreement(False),
            "materials": [],
            "process": [],
            "normal_appearance": [],
            "acceptable_variation": [],
        }
    return {
        "source": source,
        "category": category,
        "product": {"name": annotation.product_name, "description": annotation.product_description}
        | _agreement(annotation.product_plural),
        "materials": list(annotation.materials),
        "process": [{"id": s.id, "name": s.name, "description": s.description} for s in annotation.process],
        "normal_appearance": list(annotation.normal_appearance),
        "acceptable_variation": list(annotation.acceptable_variation),
    }


def _agreement(plural: bool) -> dict:
    words = ("these", "are", "have", "do", "they") if plural else ("this", "is", "has", "does", "it")
    return {"plural": plural} | dict(zip(("this", "is", "has", "does", "it"), words, strict=True))


def defect_context(defect: Defect, annotation: ProcessAnnotation) -> dict:
    """A defect as templates see it: ``key``, ``name``, ``appearance``, ``mechanism``,
    ``severity``, ``kind``, ``cause`` (its most likely step: {id, name, description}),
    ``causes`` (every step in ``caused_by``) and ``cause_mechanism`` (how that step alone
    produces it, see :func:`step_mechanism`)."""
    causes = [annotation.step(step_id) for step_id in defect.caused_by]
    steps = [{"id": s.id, "name": s.name, "description": s.description} for s in causes]
    return {
        "key": defect.key,
        "name": defect.name,
        "appearance": defect.appearance,
        "mechanism": defect.mechanism,
        "severity": defect.severity,
        "kind": defect.kind,
        "cause": steps[0],
        "causes": steps,
        "cause_mechanism": step_mechanism(defect, defect.caused_by[0], annotation),
    }


def step_mechanism(defect: Defect, step_id: str, annotation: ProcessAnnotation) -> str:
    """How step ``step_id`` produces ``defect``, and nothing about other steps.

    The step's own text where the annotation gives one per step; otherwise the sentences or
    clauses of the single mechanism text that name this step and no other; the whole text
    when it names no step and the defect has a single cause; else ``""``.
    """
    if defect.mechanisms:
        return defect.mechanisms[step_id]
    clauses = re.split(r"(?<=[.;])\s+", defect.mechanism.strip())
    own = [c for c in clauses if set(annotation.steps_named(c)) == {step_id}]
    if own:
        return " ".join(c[:1].upper() + c[1:].rstrip(";.") + "." for c in own)
    if len(defect.caused_by) == 1 and not annotation.steps_named(defect.mechanism):
        return defect.mechanism
    return ""


def observation(record: dict) -> dict:
    """What the record itself says about its defect, for a conversation's observation.

    ``regions``: separate mask regions (8-connected); ``area``: the share of the image their
    bounding boxes cover, as text ("about 4%", "under 1%"); ``location``: the 3x3 cell that
    holds most of the mask, or ``None``.
    """
    boxes = record.get("boxes") or []
    area = ""
    if boxes and record.get("width") and record.get("height"):
        covered = np.zeros((record["height"], record["width"]), dtype=bool)
        for x_min, y_min, x_max, y_max in boxes:
            covered[y_min:y_max, x_min:x_max] = True
        share = covered.mean() * 100
        area = "under 1%" if share < 1 else f"about {share:.0f}%"
    return {"regions": len(boxes), "area": area, "location": record.get("location")}


def observed_defects(record: dict, annotation: ProcessAnnotation | None) -> tuple[list[Defect], str | None]:
    """The annotation entries of the defects in an anomalous record.

    Returns:
        ``(defects, problem)``: ``problem`` says why they cannot all be resolved (no
        annotation, a defect name it lacks), else ``None``.
    """
    names = record["sub_types"] or record["defect_types"]
    if annotation is None:
        return [], "the category has no process annotation"
    if not names:
        return [], "the record names no defect type"
    found = [annotation.defect(name) for name in names]
    missing = [name for name, defect in zip(names, found, strict=True) if defect is None]
    if missing:
        return [], f"defect {missing[0]!r} is not in the process annotation"
    return found, None
