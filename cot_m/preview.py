"""`triad render`: what every template produces for one category, for contributors to review."""

from __future__ import annotations

import json
from collections.abc import Sequence

from cot_m import annotate, process_context
from cot_m.engine import TemplateError, TemplateSet
from instructiad.processes import ProcessAnnotation


def example_record(annotation: ProcessAnnotation, defect: str | None) -> dict:
    """A record of the category as the builder would make it: normal (``defect`` None), or
    showing ``defect`` as one region in the center of a 300 x 300 image."""
    record_id = f"{annotation.id}/test/render/{defect or 'good'}.png"
    record = {"id": record_id, "source": annotation.source, "category": annotation.category, "sub_types": [],
              "width": 300, "height": 300}  # fmt: skip
    if defect is None:
        return record | {"label": "normal", "defect_types": [], "location": None, "regions": [], "location_share": 0.0,
                         "boxes": []}  # fmt: skip
    return record | {"label": "anomaly", "defect_types": [defect], "location": "center", "regions": ["center"],
                     "location_share": 1.0, "boxes": [[120, 120, 180, 180]]}  # fmt: skip


def preview(
    annotation: ProcessAnnotation,
    templates: TemplateSet,
    defect: str | None = None,
    group: Sequence[ProcessAnnotation] = (),
) -> str:
    """Plain text: both process contexts, then the questions, skips and conversation of a
    normal record and of one record per defect (or only ``defect``); ``group``: the
    annotations of the source, as :func:`cot_m.annotate` takes them."""
    if defect is not None and annotation.defect(defect) is None:
        raise TemplateError(f"{annotation.path}: no defect {defect!r} (defects: {', '.join(annotation.defects)})")
    names = [defect] if defect else [None, *annotation.defects]
    lines = [f"# {annotation.id} with template set {templates.name} {templates.version}", ""]
    for form in ("short", "full"):
        lines += [f"## process context ({form})", process_context(annotation, form, templates), ""]
    for name in names:
        record = example_record(annotation, name)
        fields = annotate(record, annotation, templates, group)
        lines.append(f"## {'normal image' if name is None else f'defect {name} (in the center)'}")
        for question in fields["questions"]:
            lines.append(f"[{question['type']}] {question['question']}")
            for option in question["options"]:
                mark = "*" if option["letter"] == question["answer"] else " "
                lines.append(f"  {mark} {option['letter']}. {option['text']}")
            lines.append(f"    facts: {question['facts']}")
        lines += [f"[skipped {s['type']}] {s['reason']}" for s in fields["skipped"]]
        for turn in fields["conversation_llava"]:
            lines += [f"<{turn['from']}>", turn["value"]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def as_json(
    annotation: ProcessAnnotation,
    templates: TemplateSet,
    defect: str | None = None,
    group: Sequence[ProcessAnnotation] = (),
) -> str:
    """The same as :func:`preview`, as JSON records."""
    names = [defect] if defect else [None, *annotation.defects]
    fields = [annotate(example_record(annotation, n), annotation, templates, group) for n in names]
    return json.dumps(fields, indent=2)
