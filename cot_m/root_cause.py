"""Root-cause questions that a blind guess cannot answer (template rules 2).

A root-cause question shows one step that can cause the defect and wrong options that
cannot. Without care, the wrong options give the answer away: the right step tends to be the
last one, or the one that causes most of the category's defects, or the one named "handling".
So the options of every defect of a source's categories (one dataset config) are chosen
together, so that over them:

- each blind strategy (:data:`STRATEGIES`: first or last step, the step that causes the most
  *other* defects, a handling/packing/inspection keyword, the longest or shortest name) picks
  the right option about as often as chance;
- each step is the answer about as often as chance says, given how often it is offered;
- the answer may be any step in the defect's ``caused_by`` (the stem asks which option
  *could* have caused it), and no step in ``caused_by`` or named in the defect's mechanism is
  ever a wrong option.

The choice is a small deterministic search (coordinate descent over the defects, every
combination of answer and wrong options tried in a fixed order), cached per set of annotations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from instructiad.processes import Defect, ProcessAnnotation
from instructiad.seeds import rng_for

MAX_WRONG = 3
"""Wrong options per question (four options in all where the process allows)."""
MIN_WRONG = 2
"""Fewer honest wrong options than this and the question is skipped."""
HANDLING = re.compile(r"\b(handling|packing|packaging|inspection|transport|storage|shipping|sorting)\b", re.I)
"""Step names a blind guesser blames first."""
SWEEPS = 20
RESTARTS = 6
STEP_BALANCE_WEIGHT = 1.0
ABOVE_CHANCE_WEIGHT = 4.0
MARGIN = 0.03
"""A strategy's mean gap above chance (3 points) beyond which the excess weighs
:data:`OVER_MARGIN_WEIGHT` times more: enough to skip a question rather than exceed it."""
OVER_MARGIN_WEIGHT = 500.0
"""A strategy that beats chance is what makes a question answerable blind; one that falls
below it is merely wrong more often, so gaps above chance weigh more."""
SKIP_COST = 8.0
"""What leaving a defect without a root-cause question costs in the search: worth it only where
no choice of options keeps the category's blind strategies near chance."""
PLAUSIBILITY_BONUS = 1e-3
"""Tie-break: prefer wrong options that cause other defects of the category."""
UNBALANCED = "no choice of wrong options keeps blind guesses at chance for this category"


@dataclass(frozen=True)
class RootCause:
    """The options of one defect's root-cause question: the answer step and the wrong ones (ids)."""

    answer: str
    wrong: tuple[str, ...]


def typed_defects(annotation: ProcessAnnotation) -> list[Defect]:
    """The defects that get typed questions: all but catch-all classes (and ``combined``)."""
    return [d for d in annotation.defects.values() if not d.catch_all and d.key != "combined"]


def honest_wrong_options(defect: Defect, annotation: ProcessAnnotation) -> list[str]:
    """Steps that are neither in ``caused_by`` nor named in the defect's mechanism, in process order."""
    excluded = set(defect.caused_by) | set(annotation.steps_named(defect.mechanism))
    return [s.id for s in annotation.process if s.id not in excluded]


def cause_prior(defect: Defect, annotation: ProcessAnnotation) -> dict[str, int]:
    """For each step, how many *other* typed defects of the category list it in ``caused_by``."""
    others = [d for d in typed_defects(annotation) if d.key != defect.key]
    return {s.id: sum(s.id in d.caused_by for d in others) for s in annotation.process}


def strategies(annotation: ProcessAnnotation) -> dict[str, Callable[[Defect, str], float]]:
    """Blind strategies as scores: each picks the offered step with the highest score."""
    index = {s.id: i for i, s in enumerate(annotation.process)}
    name = {s.id: s.name for s in annotation.process}
    priors = {d.key: cause_prior(d, annotation) for d in annotation.defects.values()}
    return {
        "first_step": lambda d, s: -index[s],
        "last_step": lambda d, s: index[s],
        "cause_prior": lambda d, s: priors[d.key][s],
        "handling_keywords": lambda d, s: float(bool(HANDLING.search(name[s]))),
        "longest_option": lambda d, s: len(name[s]),
        "shortest_option": lambda d, s: -len(name[s]),
    }


def expected_hit(scores: dict[str, float], answer: str) -> float:
    """Expected accuracy of picking the highest score, ties broken at random."""
    best = max(scores.values())
    top = [s for s, v in scores.items() if v == best]
    return 1 / len(top) if answer in top else 0.0


@dataclass(frozen=True)
class _Part:
    """What some questions add up to: per strategy, hits minus chance; per step, times it is
    the answer minus times chance expects; wrong options that cause other defects; skips."""

    gaps: dict[str, float]
    steps: dict[tuple[str, str], float]
    plausible: int
    skipped: int
    asked: int = 0

    def __add__(self, other: _Part) -> _Part:
        steps = dict(self.steps)
        for step, value in other.steps.items():
            steps[step] = steps.get(step, 0.0) + value
        gaps = {name: self.gaps.get(name, 0.0) + other.gaps.get(name, 0.0) for name in self.gaps | other.gaps}
        return _Part(
            gaps, steps, self.plausible + other.plausible, self.skipped + other.skipped, self.asked + other.asked
        )

    @staticmethod
    def total(parts: Iterable[_Part]) -> _Part:
        result = None
        for part in parts:
            result = part if result is None else result + part
        return result or _Part({}, {}, 0, 0)

    def cost(self) -> float:
        allowed = MARGIN * self.asked
        return (
            sum(g * g * (ABOVE_CHANCE_WEIGHT if g > 0 else 1.0) for g in self.gaps.values())
            + OVER_MARGIN_WEIGHT * sum(max(0.0, g - allowed) ** 2 for g in self.gaps.values())
            + STEP_BALANCE_WEIGHT * sum(v * v for v in self.steps.values())
            + SKIP_COST * self.skipped
            - PLAUSIBILITY_BONUS * self.plausible
        )


_designs: dict[str, dict[tuple[str, str], RootCause | str]] = {}


def design(annotations: Sequence[ProcessAnnotation]) -> dict[tuple[str, str], RootCause | str]:
    """For each typed defect of ``annotations`` (one source's categories, balanced together),
    keyed ``(annotation id, defect key)``: its :class:`RootCause`, or why it gets no question.

    Computed once per process for each distinct content of what it depends on (the steps
    and the defects' causes, mechanisms and classes).
    """
    key = repr(
        [
            (
                a.id,
                [(s.id, s.name, s.terms) for s in a.process],
                [(d.key, d.caused_by, d.mechanism, d.catch_all) for d in a.defects.values()],
            )
            for a in annotations
        ]
    )
    if key not in _designs:
        _designs[key] = _design(annotations)
    return _designs[key]


def _design(annotations: Sequence[ProcessAnnotation]) -> dict[tuple[str, str], RootCause | str]:
    result: dict[tuple[str, str], RootCause | str] = {}
    options: dict[tuple[str, str], list[RootCause | None]] = {}
    parts_of: dict[tuple[str, str], list[_Part]] = {}
    for annotation in annotations:
        scorers = strategies(annotation)
        for defect in typed_defects(annotation):
            key = (annotation.id, defect.key)
            wrong = honest_wrong_options(defect, annotation)
            if len(wrong) < MIN_WRONG:
                result[key] = f"fewer than {MIN_WRONG} honest wrong options (steps that cannot cause it)"
                continue
            size = min(MAX_WRONG, len(wrong))
            prior = cause_prior(defect, annotation)
            options[key] = [RootCause(a, w) for a in defect.caused_by for w in combinations(wrong, size)] + [None]
            parts_of[key] = [_contribution(annotation, defect, c, scorers, prior) for c in options[key]]
    # coordinate descent from a few seeded starts; the cheapest end wins (the first on a tie)
    best_cost, chosen = None, {}
    for start in range(RESTARTS):
        rng = rng_for(f"root-cause-start/{start}")
        ends = _descend(parts_of, {key: 0 if start == 0 else rng.randrange(len(p)) for key, p in parts_of.items()})
        cost = _Part.total(parts_of[key][index] for key, index in ends.items()).cost()
        if best_cost is None or cost < best_cost - 1e-12:
            best_cost, chosen = cost, ends
    for key, index in chosen.items():
        choice = options[key][index]
        result[key] = UNBALANCED if choice is None else choice
    return result


def _descend(parts_of: dict[tuple[str, str], list[_Part]], chosen: dict[tuple[str, str], int]) -> dict:
    """Coordinate descent: each defect in turn takes the options that minimise the total cost."""
    chosen = dict(chosen)
    for _ in range(SWEEPS):
        changed = False
        for key in sorted(parts_of):
            rest = _Part.total(parts_of[other][index] for other, index in chosen.items() if other != key)
            costs = [(rest + part).cost() for part in parts_of[key]]
            best = costs.index(min(costs))  # the first of equal costs: deterministic
            if best != chosen[key]:
                chosen[key], changed = best, True
        if not changed:
            break
    return chosen


def _contribution(
    annotation: ProcessAnnotation,
    defect: Defect,
    choice: RootCause | None,
    scorers: dict[str, Callable[[Defect, str], float]],
    prior: dict[str, int],
) -> _Part:
    """What one question (or its absence) adds to the cost."""
    if choice is None:
        return _Part(dict.fromkeys(scorers, 0.0), {}, 0, skipped=1)
    offered = (choice.answer, *choice.wrong)
    chance = 1 / len(offered)
    gaps = {
        name: expected_hit({s: score(defect, s) for s in offered}, choice.answer) - chance
        for name, score in scorers.items()
    }
    steps = {(annotation.id, s): (1.0 if s == choice.answer else 0.0) - chance for s in offered}
    return _Part(gaps, steps, sum(prior[s] > 0 for s in choice.wrong), skipped=0, asked=1)
