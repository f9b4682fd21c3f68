"""What templates can read: the context built from a record and its process annotation."""

from __future__ import annotations

from instructiad.processes import Defect, ProcessAnnotation


def category_context(annotation: ProcessAnnotation | None, source: str, category: str) -> dict:
    """Fields every template can read.

    ``product`` {name, description}, ``materials`` [str], ``process`` [{id, name,
    description}], ``normal_appearance`` [str], ``acceptable_variation`` [str], ``source``,
    ``category``. Without an annotation the product is named after the category and the
    lists are empty.
    """
    if annotation is None:
        return {
            "source": source,
            "category": category,
            "product": {"name": category.replace("_", " "), "description": ""},
            "materials": [],
            "process": [],
            "normal_appearance": [],
            "acceptable_variation": [],
        }
    return {
        "source": source,
        "category": category,
        "product": {"name": annotation.product_name, "description": annotation.product_description},
        "materials": list(annotation.materials),
        "process": [{"id": s.id, "name": s.name, "description": s.description} for s in annotation.process],
        "normal_appearance": list(annotation.normal_appearance),
        "acceptable_variation": list(annotation.acceptable_variation),
    }


def defect_context(defect: Defect, annotation: ProcessAnnotation) -> dict:
    """A defect as templates see it: ``key``, ``name``, ``appearance``, ``mechanism``,
    ``severity``, ``kind``, ``cause`` (its most likely step: {id, name, description}) and
    ``causes`` (every step in ``caused_by``)."""
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
    }


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
