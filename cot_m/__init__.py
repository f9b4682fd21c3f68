"""CoT-M: templates that turn a record and its process annotation into questions and reasoning.

>>> from cot_m import annotate, process_context
>>> fields = annotate(record, annotation)          # questions, skips, conversations, template set
>>> process_context(annotation, form="short")      # what evaluation prepends in the `process` condition

Template sets live in ``cot_m/templates/<set>/``; see ``cot_m/README.md`` for how to write one.
"""

from __future__ import annotations

from collections.abc import Sequence

from cot_m.context import category_context
from cot_m.conversation import NoConversation, chat_messages, llava_turns, make_conversation
from cot_m.engine import DEFAULT_SET, TemplateError, TemplateSet, template_set
from cot_m.questions import QUESTION_TYPES, Question, make_questions
from instructiad.processes import ProcessAnnotation

__all__ = [
    "DEFAULT_SET",
    "QUESTION_TYPES",
    "Question",
    "TemplateError",
    "TemplateSet",
    "annotate",
    "process_context",
    "template_set",
]


def process_context(annotation: ProcessAnnotation, form: str = "short", templates: TemplateSet | None = None) -> str:
    """The category's process context: ``"short"`` (steps, normal appearance, acceptable
    variation) or ``"full"`` (also the product, materials and each step's description)."""
    if form not in ("short", "full"):
        raise TemplateError(f"process context form must be short or full, not {form!r}")
    templates = templates or template_set()
    return templates.render(f"context/{form}", category_context(annotation, annotation.source, annotation.category))


def annotate(
    record: dict,
    annotation: ProcessAnnotation | None,
    templates: TemplateSet | None = None,
    group: Sequence[ProcessAnnotation] = (),
) -> dict:
    """The CoT-M fields of one dataset record.

    Args:
        record: a record as :func:`instructiad.records.make_record` makes it (``id``,
            ``source``, ``category``, ``label``, ``defect_types``, ``sub_types``,
            ``location``, ``regions``, ``location_share``).
        annotation: its category's process annotation, or ``None``.
        templates: the template set (default: the bundled ``default`` set).
        group: every annotation of the record's source (``annotation`` among them), whose
            root-cause questions are balanced together; default: ``annotation`` alone.

    Returns:
        ``questions``, ``skipped`` (``{"type", "reason"}`` for each question type, or the
        conversation, that could not be made), ``conversation_llava``,
        ``conversation_messages``, ``template_set`` and ``template_version``.
    """
    templates = templates or template_set()
    questions, skipped = make_questions(record, annotation, templates, group)
    try:
        instruction, answer = make_conversation(record, annotation, templates)
        llava, messages = llava_turns(instruction, answer), chat_messages(instruction, answer)
    except NoConversation as reason:
        skipped.append({"type": "conversation", "reason": str(reason)})
        llava, messages = [], []
    return {
        "questions": [q.as_record() for q in questions],
        "skipped": skipped,
        "conversation_llava": llava,
        "conversation_messages": messages,
        "template_set": templates.name,
        "template_version": templates.version,
    }
