"""Balancing questions over a whole dataset (template rules 2): answer letters and location cells.

Per record, options are shuffled with a seeded generator, which leaves letter counts off by a
few points by chance, and location distractors are drawn from the untouched cells, which
makes "pick the centre" a winning blind guess (defects sit in the centre more often). A
:class:`Balancer` sees the records of one split in order and fixes both:

- **letters**: the questions of each type and option count are taken in blocks of that
  count; within a block the correct option goes to each letter once, in an order seeded from
  the block's first record id. Letter shares then differ by at most one question.
- **location**: the wrong cells are those most owed an offer, so that over the split every
  cell is the answer about as often as chance says given how often it is offered. Where one
  cell holds the answer of more questions than it can be offered in to stay at chance, its
  extra questions are skipped, with that reason.

The output depends on the order of the records, which the builder keeps fixed.
"""

from __future__ import annotations

import json
from collections import Counter

from cot_m.questions import CELLS, LETTERS
from instructiad.seeds import rng_for

CELL_SLACK = 0.03
"""How far above chance a cell's answer rate may go before its questions are skipped."""
WARM_UP = 12
"""Location questions made before a cell's answer rate is checked."""


class Balancer:
    """Balances the questions of a stream of records (one split); call it on each record in order."""

    def __init__(self) -> None:
        self._made: Counter = Counter()  # (type, number of options) -> questions seen
        self._block_order: dict[tuple[str, int], list[int]] = {}
        self._answers: Counter = Counter()  # cell -> location questions it answers
        self._offered: Counter = Counter()  # cell -> location questions that offer it
        self._open: Counter = Counter()  # cell -> location questions it answers or could be offered in
        self._locations = 0

    def __call__(self, record: dict) -> dict:
        """The record with its questions rebalanced (the input is not changed)."""
        questions, skipped = [], list(record["skipped"])
        for question in record["questions"]:
            if question["type"] == "location":
                question = self._location(record, question)
                if question is None:
                    skipped.append({"type": "location", "reason": self._skip_reason})
                    continue
            questions.append(self._letters(record["id"], question))
        return record | {"questions": questions, "skipped": skipped}

    def _letters(self, record_id: str, question: dict) -> dict:
        texts = [o["text"] for o in question["options"]]
        correct = texts[LETTERS.index(question["answer"])]
        key = (question["type"], len(texts))
        position = self._made[key] % len(texts)
        if position == 0:
            order = list(range(len(texts)))
            rng_for(f"{record_id}/{question['type']}/letter-block").shuffle(order)
            self._block_order[key] = order
        self._made[key] += 1
        target = self._block_order[key][position]
        current = texts.index(correct)
        texts[current], texts[target] = texts[target], texts[current]
        options = [{"letter": LETTERS[i], "text": text} for i, text in enumerate(texts)]
        return question | {"options": options, "answer": LETTERS[target]}

    def _location(self, record: dict, question: dict) -> dict | None:
        answer = json.loads(question["facts"])["region"]
        size = len(question["options"])
        untouched = [c for c in CELLS if c not in record["regions"] and c != answer]
        # a cell can be offered at most in the questions where it is untouched: beyond 1/size
        # of those (plus slack) its answers would outnumber what offering it can balance
        limit = (1 / size + CELL_SLACK) * (self._open[answer] + 1)
        if self._locations >= WARM_UP and self._answers[answer] + 1 > limit:
            self._skip_reason = (
                f"balance: the {answer} cell already answers more location questions than it can be offered in"
            )
            return None
        for cell in (answer, *untouched):
            self._open[cell] += 1
        rng = rng_for(f"{record['id']}/location/balance")
        ties = {c: rng.random() for c in untouched}
        # a cell is owed offers when it has answered more than 1/size of the questions offering it
        owed = sorted(untouched, key=lambda c: (-(size * self._answers[c] - self._offered[c]), ties[c]))
        wrong = owed[: size - 1]
        self._locations += 1
        self._answers[answer] += 1
        for cell in (answer, *wrong):
            self._offered[cell] += 1
        options = [{"letter": LETTERS[i], "text": text} for i, text in enumerate([answer, *wrong])]
        return question | {"options": options, "answer": "A"}
