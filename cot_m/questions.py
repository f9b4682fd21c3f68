"""Multiple-choice questions for one record: five types, one correct option each, or a skip.

Options are lettered and shuffled with a generator seeded from the record id, so the same
record always gets the same question. A question that cannot be made honestly (no defect,
a single defect type, a one-step process, several defects with no single answer) is skipped
with its reason, never invented.

Two versions of the rules exist, chosen by the template set's ``rules`` (:data:`BUILDERS`).
Rules 2 (template set 2.0.0 on) make questions that need the image: no typed question for a catch-all class,
appearance options that describe different things, and root-cause options chosen per
category so that blind strategies score at chance (:mod:`cot_m.root_cause`). Answer letters
and location cells are balanced over a whole dataset by :mod:`cot_m.balance`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cot_m import root_cause
from cot_m.context import category_context, observed_defects
from cot_m.engine import TemplateError, TemplateSet
from instructiad.masks import GRID_CELLS
from instructiad.processes import Defect, ProcessAnnotation
from instructiad.seeds import rng_for
from instructiad.sources import mmad

QUESTION_TYPES = ("discrimination", "defect_type", "location", "appearance", "root_cause", *mmad.TASKS)
"""Every question type, in the order records hold them; the one list the package reads (see
CONTRIBUTING.md, "Add a question type"). Which types a template set asks is :data:`BUILDERS`;
the types no builder makes are MMAD's (:data:`instructiad.sources.mmad.TASKS`), which only the
records of the ``mmad`` source hold, with MMAD's own questions."""
LETTERS = "ABCD"
MIN_LOCATION_SHARE = 0.5
"""A location question needs one cell to hold at least half of the defect's pixels."""

CELLS = tuple(cell for row in GRID_CELLS for cell in row)


@dataclass(frozen=True)
class Question:
    """A rendered question: its stem, lettered options, the correct letter, and its facts."""

    type: str
    question: str
    options: tuple[str, ...]
    answer: str
    facts: dict = field(default_factory=dict)

    def as_record(self) -> dict:
        """The question as stored in the dataset (``facts`` as sorted JSON)."""
        return {
            "type": self.type,
            "question": self.question,
            "options": [{"letter": LETTERS[i], "text": text} for i, text in enumerate(self.options)],
            "answer": self.answer,
            "facts": json.dumps(self.facts, sort_keys=True),
        }


class Skip(Exception):
    """A question type that cannot be made for this record, and why."""


@dataclass(frozen=True)
class _Inputs:
    record: dict
    annotation: ProcessAnnotation | None
    templates: TemplateSet
    context: dict
    group: Sequence[ProcessAnnotation]


def make_questions(
    record: dict,
    annotation: ProcessAnnotation | None,
    templates: TemplateSet,
    group: Sequence[ProcessAnnotation] = (),
) -> tuple[list[Question], list[dict]]:
    """Every question type for ``record``; ``group``: the annotations of the record's source,
    whose root-cause options are balanced together (rules 2; default: ``annotation`` alone).

    Returns:
        ``(questions, skipped)``: the questions made, in :data:`QUESTION_TYPES` order, and
        ``{"type", "reason"}`` for each type that was skipped.
    """
    context = category_context(annotation, record["source"], record["category"])
    inputs = _Inputs(record, annotation, templates, context, group or ([annotation] if annotation else []))
    builders = BUILDERS.get(templates.rules)
    if builders is None:
        known = ", ".join(map(str, BUILDERS))
        raise TemplateError(f"template set {templates.name!r}: unknown rules {templates.rules} (known: {known})")
    questions, skipped = [], []
    for question_type in QUESTION_TYPES:
        if question_type not in builders:  # a type newer than the set's rules is not asked
            continue
        try:
            questions.append(builders[question_type](inputs))
        except Skip as reason:
            skipped.append({"type": question_type, "reason": str(reason)})
    return questions, skipped


def _ask(inputs: _Inputs, question_type: str, correct: str, distractors: list[str], facts: dict) -> Question:
    """Render the stem, pick up to three distractors and shuffle the options, all seeded."""
    record_id = inputs.record["id"]
    pool = sorted(set(distractors) - {correct})
    if not pool:
        raise Skip("no wrong option to offer")
    rng = rng_for(f"{record_id}/{question_type}/options")
    options = [correct, *rng.sample(pool, min(len(LETTERS) - 1, len(pool)))]
    rng.shuffle(options)
    stem = inputs.templates.render(
        f"questions/{question_type}", inputs.context, rng_for(f"{record_id}/{question_type}")
    )
    return Question(question_type, stem, tuple(options), LETTERS[options.index(correct)], facts)


def _discrimination(inputs: _Inputs) -> Question:
    anomalous = inputs.record["label"] == "anomaly"
    return _ask(
        inputs, "discrimination", "Yes" if anomalous else "No", ["Yes", "No"], {"label": inputs.record["label"]}
    )


def _single_defect(inputs: _Inputs) -> Defect:
    """The one annotated defect of an anomalous record, or a skip saying why there is none."""
    if inputs.record["label"] != "anomaly":
        raise Skip("the image shows no defect")
    defects, problem = observed_defects(inputs.record, inputs.annotation)
    if problem:
        raise Skip(problem)
    if len(defects) > 1 or defects[0].key == "combined":
        raise Skip("several defects in one image: no single answer")
    return defects[0]


def _the_defect(inputs: _Inputs) -> Defect:
    """The record's single defect; from rules 2, not a catch-all class."""
    defect = _single_defect(inputs)
    if inputs.templates.rules >= 2 and defect.catch_all:
        raise Skip(f"{defect.key!r} is a catch-all class: no single answer")
    return defect


def _other_defects(inputs: _Inputs, defect: Defect) -> list[Defect]:
    """The category's other defect types (from rules 2, catch-all classes left out)."""
    if inputs.templates.rules >= 2:
        candidates = root_cause.typed_defects(inputs.annotation)
    else:
        candidates = [d for d in inputs.annotation.defects.values() if d.key != "combined"]
    others = [d for d in candidates if d.key != defect.key]
    if not others:
        raise Skip("the category has fewer than two defect types")
    return others


def _defect_type(inputs: _Inputs) -> Question:
    defect = _the_defect(inputs)
    names = [d.name for d in _other_defects(inputs, defect)]
    return _ask(inputs, "defect_type", defect.name, names, {"defect": defect.key})


def _appearance(inputs: _Inputs) -> Question:
    defect = _the_defect(inputs)
    texts = [d.appearance for d in _other_defects(inputs, defect)]
    if inputs.templates.rules >= 2:  # options must differ in what the image shows
        texts = [t for t in texts if not same_look(t, defect.appearance)]
    return _ask(inputs, "appearance", defect.appearance, texts, {"defect": defect.key})


def _root_cause(inputs: _Inputs) -> Question:
    defect = _single_defect(inputs)
    steps = inputs.annotation.process
    if len(steps) < 2:
        raise Skip("the process has a single step")
    innocent = [s.name for s in steps if s.id not in defect.caused_by]
    if not innocent:
        raise Skip("every process step can cause this defect")
    cause = inputs.annotation.step(defect.caused_by[0])
    return _ask(inputs, "root_cause", cause.name, innocent, {"defect": defect.key, "step": cause.id})


def _location(inputs: _Inputs) -> Question:
    record = inputs.record
    if record["label"] != "anomaly":
        raise Skip("the image shows no defect")
    if record["location"] is None:
        raise Skip("the record has no defect mask")
    if record["location_share"] < MIN_LOCATION_SHARE:
        raise Skip(f"the defect spreads over several regions (largest holds {record['location_share']:.0%})")
    untouched = [cell for cell in CELLS if cell not in record["regions"]]
    return _ask(inputs, "location", record["location"], untouched, {"region": record["location"]})


SAME_LOOK = 0.6
"""Appearance texts sharing this share of their content words describe the same thing."""
_FILLER = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
    ]
)


def _content_words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower())) - _FILLER


def same_look(a: str, b: str) -> bool:
    """Two appearance texts that differ only in wording (Jaccard of content words >= :data:`SAME_LOOK`)."""
    words_a, words_b = _content_words(a), _content_words(b)
    return len(words_a & words_b) >= SAME_LOOK * len(words_a | words_b)


def _root_cause_v2(inputs: _Inputs) -> Question:
    defect = _the_defect(inputs)
    choice = root_cause.design(inputs.group)[(inputs.annotation.id, defect.key)]
    if isinstance(choice, str):
        raise Skip(choice)
    annotation = inputs.annotation
    names = [annotation.step(s).name for s in choice.wrong]
    answer = annotation.step(choice.answer)
    return _ask(inputs, "root_cause", answer.name, names, {"defect": defect.key, "step": answer.id})


_BUILDERS: dict[str, Callable[[_Inputs], Question]] = {
    "discrimination": _discrimination,
    "defect_type": _defect_type,
    "location": _location,
    "appearance": _appearance,
    "root_cause": _root_cause,
}

_BUILDERS_V2: dict[str, Callable[[_Inputs], Question]] = _BUILDERS | {"root_cause": _root_cause_v2}

BUILDERS: dict[int, dict[str, Callable[[_Inputs], Question]]] = {1: _BUILDERS, 2: _BUILDERS_V2}
"""Question rules (a template set's ``rules``) -> question type -> the function that makes it
or raises :class:`Skip`. A type without a builder under a set's rules is not asked: a new type
comes with new rules, so that the sets before it still rebuild their datasets byte for byte."""
