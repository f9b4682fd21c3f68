"""`triad audit`: does a question set need the image? Blind strategies against chance.

A benchmark question that can be answered without looking measures a prior, not inspection.
The audit answers every question with strategies that never see the image and compares
their accuracy with chance (the expected accuracy of a uniform guess):

- ``letter_prior``: the letter most often correct for the type (learned on the other half
  of the questions, see below);
- ``longest_option`` / ``shortest_option``;
- ``first_step`` / ``last_step``: the option earliest or latest in the process (root cause);
- ``cause_prior``: the step that causes the most *other* defects of the category, read from
  the public annotation (root cause);
- ``handling_keywords``: a step named for handling, packing or inspection (root cause);
- ``common_cell``: the offered cell most often correct (learned on the other half);
- ``majority``: the ``majority`` baseline's rule (the option text most often correct for the
  type, else the first letter).

Ties count as a random choice among the tied options (expected accuracy). Discrimination is
scored by balanced accuracy, as the harness scores it, so its chance is 50%. The learned
priors (letters, cells, the majority text) are cross-fitted: the questions are split in two
halves by a hash of their defect (category and defect type; the record id for questions about
no defect type), and each half is answered with what the other half teaches. That estimates
how a prior learned elsewhere would do: counting a question's own answer would flatter it,
and a defect's other images would hand over its answer; leaving only the question itself out
makes an exactly balanced set look anti-correlated with itself.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import cot_m
from cot_m.balance import Balancer
from cot_m.engine import TemplateSet
from cot_m.preview import example_record
from cot_m.questions import LETTERS
from cot_m.root_cause import HANDLING, cause_prior, expected_hit
from instructiad.processes import Catalog, ProcessAnnotation
from instructiad.seeds import seed_for

MAX_GAP = 5.0
"""Points above chance a blind strategy may score before the audit fails."""


@dataclass(frozen=True)
class Item:
    """One question as the audit sees it."""

    record_id: str
    source: str
    category: str
    type: str
    options: tuple[str, ...]
    answer: int
    """Index of the correct option."""
    annotation: ProcessAnnotation | None
    defect: str | None

    @property
    def correct(self) -> str:
        return self.options[self.answer]

    @property
    def half(self) -> int:
        """Which half of the set the question falls in (cross-fitting): by defect, else by record."""
        key = f"{self.source}/{self.category}/{self.defect}" if self.defect else self.record_id
        return seed_for(f"{key}/audit-half") % 2


# --- collecting questions -----------------------------------------------------------------------


def annotation_items(catalog: Catalog, templates: TemplateSet) -> tuple[list[Item], Counter]:
    """The questions a build would ask about every annotation in ``catalog``.

    Each category gets one normal record and one record per defect (shown alone, in the
    centre); the records of each source are balanced together, as one config of a build.

    Returns:
        ``(items, skipped)``: the questions (location left out) and ``(type, reason)`` counts.
    """
    items, skipped = [], Counter()
    for source in sorted({id_.split("/", 1)[0] for id_ in catalog.paths}):
        balance = Balancer() if templates.rules >= 2 else None
        group = catalog.of_source(source)
        for annotation in group:
            for defect in [None, *annotation.defects]:
                record = example_record(annotation, defect)
                record |= cot_m.annotate(record, annotation, templates, group)
                if balance:
                    record = balance(record)
                questions = [q for q in record["questions"] if q["type"] != "location"]
                items += [_item(record, q, annotation) for q in questions]
                skipped.update((s["type"], _reason(s["reason"])) for s in record["skipped"] if s["type"] != "location")
    return items, skipped


def dataset_items(
    records: Iterable[dict], annotation: Callable[[str], ProcessAnnotation]
) -> tuple[list[Item], Counter]:
    """The questions of a built dataset's records (``annotation`` loads a record's ``process_id``)."""
    items, skipped = [], Counter()
    for record in records:
        linked = annotation(record["process_id"]) if record["process_id"] else None
        items += [_item(record, q, linked) for q in record["questions"]]
        skipped.update((s["type"], _reason(s["reason"])) for s in record["skipped"])
    return items, skipped


def _item(record: dict, question: dict, annotation: ProcessAnnotation | None) -> Item:
    options = tuple(o["text"] for o in question["options"])
    return Item(
        record["id"],
        record["id"].split("/", 1)[0],  # record ids start with their source
        record["category"],
        question["type"],
        options,
        LETTERS.index(question["answer"]),
        annotation,
        json.loads(question["facts"]).get("defect"),
    )


def _reason(reason: str) -> str:
    """A skip reason without its record-specific figures ("... (largest holds 30%)")."""
    return reason.split(" (")[0]


# --- blind strategies -----------------------------------------------------------------------------

Scores = dict[str, float]
"""Option text -> score; the strategy picks the highest."""


class _Priors:
    """What strategies learn from the answers, per half of the set (a question reads the
    other half's): letter and cell counts, and the ``majority`` baseline's text per type."""

    def __init__(self, items: list[Item]) -> None:
        self.letters = {half: Counter((i.type, i.answer) for i in items if i.half != half) for half in (0, 1)}
        self.cells = {
            half: Counter(i.correct for i in items if i.type == "location" and i.half != half) for half in (0, 1)
        }
        self.majority = {}
        for half in (0, 1):
            texts: dict[str, Counter] = defaultdict(Counter)
            for item in items:
                if item.half != half:
                    texts[item.type][item.correct] += 1
            # as baselines.simple.Majority decides: most often correct, then alphabetical
            self.majority[half] = {t: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for t, c in texts.items()}


def _steps(item: Item) -> dict[str, int] | None:
    """Option text -> position in the process, when every option is a step of the annotation."""
    if item.annotation is None:
        return None
    index = {s.name: i for i, s in enumerate(item.annotation.process)}
    return {o: index[o] for o in item.options} if all(o in index for o in item.options) else None


def _letter_prior(item: Item, priors: _Priors) -> Scores:
    return {o: priors.letters[item.half][(item.type, i)] for i, o in enumerate(item.options)}


def _longest(item: Item, priors: _Priors) -> Scores:
    return {o: len(o) for o in item.options}


def _shortest(item: Item, priors: _Priors) -> Scores:
    return {o: -len(o) for o in item.options}


def _first_step(item: Item, priors: _Priors) -> Scores | None:
    steps = _steps(item)
    return {o: -i for o, i in steps.items()} if steps else None


def _last_step(item: Item, priors: _Priors) -> Scores | None:
    steps = _steps(item)
    return {o: i for o, i in steps.items()} if steps else None


def _cause_prior(item: Item, priors: _Priors) -> Scores | None:
    steps = _steps(item)
    if not steps or item.defect is None or item.annotation.defect(item.defect) is None:
        return None
    counts = cause_prior(item.annotation.defect(item.defect), item.annotation)
    ids = {s.name: s.id for s in item.annotation.process}
    return {o: counts[ids[o]] for o in item.options}


def _handling_keywords(item: Item, priors: _Priors) -> Scores:
    return {o: float(bool(HANDLING.search(o))) for o in item.options}


def _common_cell(item: Item, priors: _Priors) -> Scores:
    return {o: priors.cells[item.half][o] for o in item.options}


def _majority(item: Item, priors: _Priors) -> Scores:
    # the baseline answers its text where offered, else the first letter
    favourite = priors.majority[item.half].get(item.type)
    if favourite in item.options:
        return {o: float(o == favourite) for o in item.options}
    return {o: -i for i, o in enumerate(item.options)}


STRATEGIES: dict[str, tuple[Callable[[Item, _Priors], Scores | None], tuple[str, ...] | None]] = {
    "letter_prior": (_letter_prior, None),
    "longest_option": (_longest, None),
    "shortest_option": (_shortest, None),
    "first_step": (_first_step, ("root_cause",)),
    "last_step": (_last_step, ("root_cause",)),
    "cause_prior": (_cause_prior, ("root_cause",)),
    "handling_keywords": (_handling_keywords, ("root_cause",)),
    "common_cell": (_common_cell, ("location",)),
    "majority": (_majority, None),
}
"""Name -> (scores of an item's options, the question types it applies to; ``None``: every type)."""


# --- scoring ------------------------------------------------------------------------------------------


def _score(items: list[Item], hits: list[float]) -> float:
    """Accuracy in percent; balanced accuracy (mean over the correct answers) for discrimination."""
    if items and items[0].type == "discrimination":
        by_class: dict[str, list[float]] = defaultdict(list)
        for item, hit in zip(items, hits, strict=True):
            by_class[item.correct].append(hit)
        return 100 * sum(sum(h) / len(h) for h in by_class.values()) / len(by_class)
    return 100 * sum(hits) / len(hits)


def _chance(items: list[Item]) -> float:
    if items[0].type == "discrimination":
        return 50.0
    return 100 * sum(1 / len(i.options) for i in items) / len(items)


def _table(items: list[Item], priors: _Priors) -> dict:
    question_type = items[0].type
    strategies = {}
    for name, (scores_of, types) in STRATEGIES.items():
        if types is not None and question_type not in types:
            continue
        hits = []
        for item in items:
            scores = scores_of(item, priors)
            hits.append(1 / len(item.options) if scores is None else expected_hit(scores, item.correct))
        strategies[name] = round(_score(items, hits), 1)
    chance = round(_chance(items), 1)
    letters: dict[int, Counter] = defaultdict(Counter)  # options -> correct letters
    for i in items:
        letters[len(i.options)][LETTERS[i.answer]] += 1
    return {
        "count": len(items),
        "chance": chance,
        "strategies": strategies,
        "worst_gap": round(max(strategies.values()) - chance, 1),
        "letters": {
            f"{size} options": {k: round(100 * c[k] / c.total(), 1) for k in LETTERS[:size]}
            for size, c in sorted(letters.items(), reverse=True)
        },
    }


def audit(items: list[Item], skipped: Counter, max_gap: float = MAX_GAP) -> dict:
    """The audit report: per question type (and per source within it) the count, chance, each
    blind strategy's score, the worst gap and the answer letters; skips; and whether every
    type's worst gap is within ``max_gap`` points."""
    priors = _Priors(items)
    types = {}
    for question_type in cot_m.questions.QUESTION_TYPES:  # read when called
        of_type = [i for i in items if i.type == question_type]
        if not of_type:
            continue
        report = _table(of_type, priors)
        sources = sorted({i.source for i in of_type})
        if len(sources) > 1:
            report["by_source"] = {s: _table([i for i in of_type if i.source == s], priors) for s in sources}
        types[question_type] = report
    failures = [
        f"{t}: {max(r['strategies'], key=r['strategies'].get)} {max(r['strategies'].values())}% "
        f"vs chance {r['chance']}% (+{r['worst_gap']})"
        for t, r in types.items()
        if r["worst_gap"] > max_gap
    ]
    by_type: dict[str, dict[str, int]] = defaultdict(dict)
    for (question_type, reason), count in sorted(skipped.items()):
        by_type[question_type][reason] = count
    return {"max_gap": max_gap, "types": types, "skipped": dict(by_type), "failures": failures}


def format_report(report: dict, title: str) -> str:
    """The report as plain text tables."""
    names = list(STRATEGIES)
    header = f"{'question type':<22}{'n':>6}{'chance':>8}" + "".join(f"{n:>18}" for n in names) + f"{'worst gap':>11}"
    lines = [title, "", "accuracy in %, '-' where a strategy does not apply", header]
    for question_type, row in report["types"].items():
        rows = [(question_type, row), *((f"  {s}", r) for s, r in row.get("by_source", {}).items())]
        for label, r in rows:
            cells = "".join(f"{r['strategies'][n]:>18.1f}" if n in r["strategies"] else f"{'-':>18}" for n in names)
            flag = " !" if r["worst_gap"] > report["max_gap"] else ""
            lines.append(f"{label:<22}{r['count']:>6}{r['chance']:>8.1f}{cells}{r['worst_gap']:>+11.1f}{flag}")
    lines += ["", "answer letters (% of the questions of each type with that many options):"]
    for question_type, row in report["types"].items():
        for size, shares in row["letters"].items():
            lines.append(f"  {question_type:<16}{size:<11}" + "  ".join(f"{k} {v:.1f}" for k, v in shares.items()))
    if report["skipped"]:
        lines += ["", "skipped questions:"]
        for question_type, reasons in report["skipped"].items():
            lines += [f"  {question_type:<20}{count:>6}  {reason}" for reason, count in reasons.items()]
    lines.append("")
    if report["failures"]:
        lines += [f"FAILED: a blind strategy beats chance by more than {report['max_gap']:g} points:"]
        lines += [f"  {failure}" for failure in report["failures"]]
    else:
        lines.append(f"passed: every blind strategy within {report['max_gap']:g} points of chance")
    return "\n".join(lines) + "\n"


def summary_line(report: dict) -> str:
    """One line: the worst blind gap per question type, and whether the audit passed."""
    gaps = ", ".join(f"{t} {r['worst_gap']:+.1f}" for t, r in report["types"].items())
    verdict = "passed" if not report["failures"] else "FAILED"
    return f"audit {verdict}: worst blind strategy vs chance, in points: {gaps} (limit +{report['max_gap']:g})"
