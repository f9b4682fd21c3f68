"""Metrics of a run, computed from its predictions with scikit-learn and SciPy.

Failed requests are never scored: they are counted and left out. Unparsed answers are
scored as wrong and reported as their own rate.
"""

from __future__ import annotations

from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

from triad_eval import mmad

BOOTSTRAP_SAMPLES = 1000
_BOOTSTRAP_BLOCK = 4_000_000
"""Resampled indices drawn at a time (int64: 32 MB)."""
READS = ("id", "task", "condition", "category", "label", "options", "answer", "parsed", "status", "probs", "raw")
"""The fields of a prediction that :func:`compute_metrics` reads (a run keeps only these in memory);
``raw`` for MMAD's table, which parses answers by MMAD's rule (:mod:`triad_eval.mmad`)."""


_PROB_LETTERS = "ABCDE"


class PredictionTable:
    """Predictions as :func:`compute_metrics` reads them (:data:`READS`), held as columns of
    4-byte codes into tables of the distinct values (option sets, categories, letters repeat
    across requests), so a run keeps a few dozen bytes per request, not a dict.

    :meth:`add` a prediction; iterating gives the rows back as dicts, in order, one at a time;
    :meth:`cells` gives the rows of one (task, condition) cell at a time. ``raw`` is kept for
    MMAD's questions only (no other metric reads it); ``probs`` as five floats a row where given.
    """

    _CODED = tuple(name for name in READS if name != "probs")

    def __init__(self) -> None:
        self._codes = {name: array("I") for name in self._CODED}
        self._values: dict[str, list] = {name: [] for name in self._CODED}
        self._known: dict[str, dict] = {name: {} for name in self._CODED}
        self._probs_at = array("i")  # row -> its offset in _probs / 5, or -1 for none
        self._probs = array("d")
        self._other_probs: dict[int, dict] = {}  # probs with letters beyond A-E, by row
        self._cells: dict[tuple[str, str], array] = {}

    def add(self, prediction: dict) -> None:
        """Append one prediction (a dict with at least :data:`READS`, ``raw`` and ``probs`` optional)."""
        row = len(self)
        for name in self._CODED:
            value = prediction.get(name)
            if name == "raw" and not mmad.is_mmad(prediction["task"]):
                value = None
            key = tuple(value.items()) if isinstance(value, dict) else value
            code = self._known[name].setdefault(key, len(self._values[name]))
            if code == len(self._values[name]):
                self._values[name].append(value)
            self._codes[name].append(code)
        probs = prediction.get("probs")
        if probs is None:
            self._probs_at.append(-1)
        elif set(probs) <= set(_PROB_LETTERS):
            self._probs_at.append(len(self._probs) // len(_PROB_LETTERS))
            self._probs.extend(float(probs.get(letter, np.nan)) for letter in _PROB_LETTERS)
        else:
            self._probs_at.append(-1)
            self._other_probs[row] = probs
        self._cells.setdefault((prediction["task"], prediction["condition"]), array("I")).append(row)

    def __len__(self) -> int:
        return len(self._probs_at)

    def row(self, index: int) -> dict:
        """Prediction ``index`` as a dict of :data:`READS`."""
        row = {name: self._values[name][self._codes[name][index]] for name in self._CODED}
        at = self._probs_at[index]
        if at >= 0:
            five = self._probs[at * len(_PROB_LETTERS) : (at + 1) * len(_PROB_LETTERS)]
            row["probs"] = {k: v for k, v in zip(_PROB_LETTERS, five, strict=True) if not np.isnan(v)}
        else:
            row["probs"] = self._other_probs.get(index)
        return row

    def __iter__(self) -> Iterator[dict]:
        return (self.row(i) for i in range(len(self)))

    def cells(self) -> Mapping[tuple[str, str], list[dict]]:
        """(task, condition) -> that cell's rows, made when asked for, in first-seen order."""
        return _Cells(self)


class _Cells(Mapping):
    def __init__(self, table: PredictionTable) -> None:
        self._table = table

    def __getitem__(self, key: tuple[str, str]) -> list[dict]:
        return [self._table.row(i) for i in self._table._cells[key]]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._table._cells)

    def __len__(self) -> int:
        return len(self._table._cells)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def is_correct(prediction: dict) -> bool:
    return prediction["status"] != "failed" and prediction["parsed"] == prediction["answer"]


def anomaly_score(prediction: dict) -> float | None:
    """P("Yes") of a discrimination prediction, where the model gave probabilities."""
    if not prediction.get("probs"):
        return None
    yes = next((letter for letter, text in prediction["options"].items() if text == "Yes"), None)
    return prediction["probs"].get(yes) if yes else None


def compute_metrics(predictions: list[dict] | PredictionTable, seed: int = 0) -> dict:
    """The metrics.json payload (see ``schemas/metrics.schema.json``).

    Args:
        predictions: prediction dicts (``id``, ``task``, ``condition``, ``category``,
            ``label``, ``options``, ``answer``, ``parsed``, ``probs``, ``status``, ``raw``), or
            a :class:`PredictionTable` of them (a run's: one cell's rows in memory at a time).
        seed: seed of the paired bootstrap.

    MMAD's questions (the ``mmad`` config) add ``mmad``: per condition, MMAD's table by MMAD's
    rules (:mod:`triad_eval.mmad`); a condition that asks only MMAD's questions takes its
    ``Average`` as ``average``, so runs rank by the number MMAD publishes.
    """
    if isinstance(predictions, PredictionTable):
        groups = predictions.cells()
    else:
        groups = defaultdict(list)
        for prediction in predictions:
            groups[(prediction["task"], prediction["condition"])].append(prediction)
    task_order = list(dict.fromkeys(task for task, _ in groups))  # the order the run asked them in
    conditions = list(dict.fromkeys(condition for _, condition in groups))
    tasks: dict[str, dict] = {}
    for task, condition in sorted(groups, key=lambda k: (task_order.index(k[0]), conditions.index(k[1]))):
        tasks.setdefault(task, {})[condition] = _group_metrics(task, groups[(task, condition)])
    average = {c: _average(tasks, c) for c in conditions}
    mmad_tables = mmad.tables(predictions)
    for condition, table in mmad_tables.items():
        if all(mmad.is_mmad(t) for t, by_condition in tasks.items() if condition in by_condition):
            average[condition] = table["average"]["average"]
    statuses = Counter(p["status"] for p in predictions)
    metrics = {
        "counts": {
            "requests": len(predictions),
            "ok": statuses["ok"],
            "unparsed": statuses["unparsed"],
            "failed": statuses["failed"],
        },
        "tasks": tasks,
        "average": average,
        "process_gain": _process_gains(groups, seed),
    }
    return metrics | ({"mmad": mmad_tables} if mmad_tables else {})


def accuracy(task: str, scored: list[dict]) -> float | None:
    """The share of correct answers (an unparsed answer is wrong)."""
    return _round(np.mean([is_correct(p) for p in scored])) if scored else None


def _by_category(scored: list[dict]) -> dict[str, list[bool]]:
    by_category: dict[str, list[bool]] = defaultdict(list)
    for p in scored:
        by_category[p["category"]].append(is_correct(p))
    return by_category


def per_category(task: str, scored: list[dict]) -> dict:
    """Category -> its ``n`` and ``accuracy``."""
    return {c: {"n": len(v), "accuracy": _round(np.mean(v))} for c, v in sorted(_by_category(scored).items())}


def macro_accuracy(task: str, scored: list[dict]) -> float | None:
    """The unweighted mean of the categories' accuracies."""
    by_category = _by_category(scored)
    return _round(np.mean([np.mean(v) for v in by_category.values()])) if by_category else None


CELL_METRICS: dict[str, Callable[[str, list[dict]], Any]] = {
    "accuracy": accuracy,
    "per_category": per_category,
    "macro_accuracy": macro_accuracy,
}
"""The metrics of every task x condition cell, in metrics.json order: name -> function of the
task and the cell's scored predictions (failed ones left out; the list may be empty) returning
a JSON value. Discrimination cells add their binary metrics (:func:`_discrimination`). A new
metric is one entry here and one property in ``$defs/group`` of ``schemas/metrics.schema.json``."""


def _group_metrics(task: str, items: list[dict]) -> dict:
    scored = [p for p in items if p["status"] != "failed"]
    result = {
        "n": len(items),
        "scored": len(scored),
        "failed": len(items) - len(scored),
        "unparsed": sum(p["status"] == "unparsed" for p in scored),
        "unparsed_rate": _round(sum(p["status"] == "unparsed" for p in scored) / len(scored)) if scored else None,
    }
    result |= {name: metric(task, scored) for name, metric in CELL_METRICS.items()}
    if task == "discrimination" and scored:
        result |= _discrimination(scored)
    return result


def _discrimination(scored: list[dict]) -> dict:
    """Binary metrics with "anomaly" as the positive class; an unparsed answer counts as wrong."""
    truth = np.array([p["label"] == "anomaly" for p in scored])
    said_yes = np.array(
        [p["options"].get(p["parsed"]) == "Yes" if p["parsed"] else not t for p, t in zip(scored, truth, strict=True)]
    )
    both = len(set(truth.tolist())) == 2
    specificity = float(np.mean(~said_yes[~truth])) if (~truth).any() else None
    metrics = {
        "balanced_accuracy": _round(balanced_accuracy_score(truth, said_yes)) if both else None,
        "precision": _round(precision_score(truth, said_yes, zero_division=0)),
        "recall": _round(recall_score(truth, said_yes, zero_division=0)) if truth.any() else None,
        "specificity": _round(specificity),
        "f1": _round(f1_score(truth, said_yes, zero_division=0)),
        "auroc": None,
        "ap": None,
    }
    scores = [anomaly_score(p) for p in scored]
    if both and all(s is not None for s in scores):
        metrics["auroc"] = _round(roc_auc_score(truth, scores))
        metrics["ap"] = _round(average_precision_score(truth, scores))
    return metrics


def headline(task_metrics: dict, task: str) -> float | None:
    """The number a task is ranked by: balanced accuracy for discrimination (MMAD), else accuracy."""
    return task_metrics.get("balanced_accuracy") if task == "discrimination" else task_metrics.get("accuracy")


def _average(tasks: dict, condition: str) -> float | None:
    """MMAD-style average: the unweighted mean of the tasks' headline numbers (CoT-M's tasks only
    where a condition also asks MMAD's, whose own average is their table's)."""
    asked = [t for t, by_condition in tasks.items() if condition in by_condition]
    if any(not mmad.is_mmad(t) for t in asked):
        asked = [t for t in asked if not mmad.is_mmad(t)]
    values = [headline(tasks[t][condition], t) for t in asked]
    values = [v for v in values if v is not None]
    return _round(np.mean(values)) if values else None


def _process_gains(groups: dict[tuple[str, str], list[dict]], seed: int) -> dict:
    """For each condition with ``process``: its accuracy minus the same condition without it,
    on the same items, with a paired bootstrap 95% CI and McNemar's exact test; per task, and
    under ``"all"`` pooled over the questions of every task (the leaderboard's headline)."""
    gains: dict[str, dict] = {}
    pooled: dict[str, tuple[list[float], list[float]]] = {}
    for task, condition in sorted(groups):  # a cell is made when asked for: two at a time here
        parts = condition.split("+")
        if "process" not in parts:
            continue
        base = "+".join(p for p in parts if p != "process") or "zero_shot"
        if (task, base) not in groups:
            continue
        with_process = {p["id"]: p for p in groups[(task, condition)] if p["status"] != "failed"}
        without = {p["id"]: p for p in groups[(task, base)] if p["status"] != "failed"}
        ids = sorted(with_process.keys() & without.keys())
        if not ids:
            continue
        x = [float(is_correct(without[i])) for i in ids]
        y = [float(is_correct(with_process[i])) for i in ids]
        name = f"{condition} vs {base}"
        gains.setdefault(task, {})[name] = _paired(np.array(x), np.array(y), seed)
        pooled.setdefault(name, ([], []))
        pooled[name][0].extend(x)
        pooled[name][1].extend(y)
    if pooled:
        gains["all"] = {name: _paired(np.array(x), np.array(y), seed) for name, (x, y) in pooled.items()}
    return gains


def _paired(x: np.ndarray, y: np.ndarray, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    # resamples drawn a block of rows at a time (the same stream as all at once), so memory
    # stays near 32 MB however many pairs there are
    rows, deltas = max(1, _BOOTSTRAP_BLOCK // max(1, len(x))), []
    for start in range(0, BOOTSTRAP_SAMPLES, rows):
        samples = rng.integers(0, len(x), size=(min(rows, BOOTSTRAP_SAMPLES - start), len(x)))
        deltas.append(y[samples].mean(axis=1) - x[samples].mean(axis=1))
    deltas = np.concatenate(deltas)
    only_base, only_process = int(((x == 1) & (y == 0)).sum()), int(((x == 0) & (y == 1)).sum())
    discordant = only_base + only_process
    p_value = binomtest(only_process, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "n_pairs": len(x),
        "delta": _round(y.mean() - x.mean()),
        "ci95": [_round(np.percentile(deltas, 2.5)), _round(np.percentile(deltas, 97.5))],
        "mcnemar_p": _round(p_value),
        "only_base_correct": only_base,
        "only_process_correct": only_process,
    }
