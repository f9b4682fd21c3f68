"""MMAD's table: its answer parsing and scoring rules, applied to the MMAD questions of a run.

MMAD (github jam-cc/MMAD) scores a model from an answers file with one row per question. Its
rules, which :func:`tables` follows:

- **Parsing** (its query scripts): the answer is the last capital letter A-E standing alone
  in the model's text (``\\b([A-E])\\b``); when there is none, the option whose text is closest
  to the whole answer (``difflib.get_close_matches``, no cutoff, so some option always wins).
  An MMAD answers file holds that letter already (``gpt_answer``); replaying it parses to itself.
- **Dropped answers**: a row whose correct or given answer is not one of A-E is left out of
  the table (an empty ``gpt_answer`` is MMAD's failed request; a failed request here is left out
  the same way).
- **Columns**: accuracy per dataset (the image path's first part: ``DS-MVTec``, ``MVTec-LOCO``,
  ``VisA``, ``GoodsAD``) and question type, with ``Object Structure`` and ``Object Details``
  counted as ``Object Analysis``; ``Anomaly Detection`` is balanced accuracy instead, the mean
  of the accuracy on normal images (``good`` anywhere in the image path) and on the others.
- **Average**: per dataset, the unweighted mean over its types; the ``Average`` row is the mean
  over datasets of every column, so its ``Average`` is MMAD's headline number. Overkill and
  miss (one minus the normal and the anomalous accuracy of Anomaly Detection) come with it, as
  MMAD's scorer prints them.
- **Empty cells count as 0**: a type some dataset of the run lacks scores 0 for that dataset
  (and pulls its average down), and Anomaly Detection without normal (or anomalous) images
  takes 0 for that half, exactly as MMAD's scorer does. On MMAD itself every dataset has every
  type and both kinds of image; on a part of it (``--limit``) read ``n`` beside each cell.

Where this differs from MMAD's ``summary.py``, and why:

- MMAD drops rows with ``list.remove`` while iterating over the same list, which also hides
  the row right after each dropped one from the table. That is a bug whose effect depends on
  the order of the file, which a run does not keep (its requests follow records, then tasks).
  Here only the rows MMAD means to drop are dropped (``dropped`` counts them). On an answers
  file whose answers are all letters A-E, nothing is dropped and the two tables are the same.
- The column order is MMAD's usual order (that of its published tables), not the order in
  which types first appear in the file; the numbers do not depend on it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from difflib import get_close_matches

import numpy as np

from instructiad.sources import mmad

LETTERS = frozenset("ABCDE")
"""The answers MMAD's scorer keeps."""
NORMAL_FLAG = "good"
"""MMAD's scorer calls an image normal when its path holds this."""
_LETTER = re.compile(r"\b([A-E])\b")


def parse_letter(text: str, options: Mapping[str, str]) -> str | None:
    """MMAD's answer parsing: the last stand-alone capital A-E of ``text``; if it has none, the
    letter of the option (letter -> text) whose text is closest to the whole of ``text``."""
    found = _LETTER.findall(text)
    if found:
        return found[-1]
    closest = get_close_matches(text, list(options.values()), n=1, cutoff=0.0)
    return next((letter for letter, option in options.items() if closest and option == closest[0]), None)


def answer_of(prediction: dict) -> str | None:
    """The letter MMAD's rules read from a prediction (``None`` for a failed request)."""
    if prediction["status"] == "failed":
        return None
    if prediction["raw"] is None:  # option scoring: the most probable letter
        return prediction["parsed"]
    return parse_letter(prediction["raw"], prediction["options"])


def is_mmad(task: str) -> bool:
    """Whether ``task`` is one of MMAD's question types."""
    return task in mmad.TASKS


def tables(predictions: Iterable[dict]) -> dict:
    """Per condition, MMAD's table of the MMAD predictions among ``predictions`` (``id``,
    ``task``, ``condition``, ``answer``, ``options``, ``raw``, ``parsed``, ``status``), in
    ``schemas/metrics.schema.json``'s ``mmad`` shape; empty when there are none."""
    rows: dict[str, list[tuple[str, str, str, str | None]]] = defaultdict(list)
    for p in predictions:
        if is_mmad(p["task"]):
            rows[p["condition"]].append((mmad.mmad_image(p["id"]), mmad.TASKS[p["task"]], p["answer"], answer_of(p)))
    return {condition: table(items) for condition, items in rows.items()}


def table(rows: list[tuple[str, str, str, str | None]]) -> dict:
    """MMAD's table of ``rows``: (image path as ``mmad.json`` names it, MMAD's question type,
    correct letter, the letter answered or ``None``)."""
    datasets = list(dict.fromkeys(image.split("/")[0] for image, _, _, _ in rows))
    seen = {mmad.table_type(t) for _, t, _, _ in rows}
    types = [t for t in mmad.TABLE_TYPES if t in seen]
    right: dict[tuple[str, str], list[bool]] = defaultdict(list)
    detection: dict[tuple[str, bool], list[bool]] = defaultdict(list)  # (dataset, normal) -> right or wrong
    dropped = 0
    for image, question_type, correct, answer in rows:
        if correct not in LETTERS or answer not in LETTERS:
            dropped += 1
            continue
        dataset, column = image.split("/")[0], mmad.table_type(question_type)
        right[(dataset, column)].append(answer == correct)
        if column == "Anomaly Detection":
            detection[(dataset, NORMAL_FLAG in image)].append(answer == correct)
    by_dataset = {}
    for dataset in datasets:
        accuracy = {t: _mean(right[(dataset, t)]) for t in types}
        normal, anomalous = _mean(detection[(dataset, True)]), _mean(detection[(dataset, False)])
        if "Anomaly Detection" in accuracy:
            accuracy["Anomaly Detection"] = (normal + anomalous) / 2
        by_dataset[dataset] = {
            "accuracy": accuracy,
            "n": {t: len(right[(dataset, t)]) for t in types},
            "average": float(np.mean(list(accuracy.values()))),
            "overkill": 1 - normal,
            "miss": 1 - anomalous,
        }
    overall = {
        "accuracy": {t: float(np.mean([d["accuracy"][t] for d in by_dataset.values()])) for t in types},
        "n": {t: sum(d["n"][t] for d in by_dataset.values()) for t in types},
        **{k: float(np.mean([d[k] for d in by_dataset.values()])) for k in ("average", "overkill", "miss")},
    }
    return {
        "types": types,
        "datasets": {name: _rounded(row) for name, row in by_dataset.items()},
        "average": _rounded(overall),
        "dropped": dropped,
    }


def _mean(values: list[bool]) -> float:
    """The share of ``True``; 0 for no values (MMAD's rule)."""
    return sum(values) / len(values) if values else 0.0


def _rounded(row: dict) -> dict:
    return {
        "accuracy": {t: round(v, 6) for t, v in row["accuracy"].items()},
        "n": row["n"],
        **{k: round(row[k], 6) for k in ("average", "overkill", "miss")},
    }


def format_table(table: dict) -> list[str]:
    """MMAD's table as text lines, in percent: one row per dataset, then ``Average``."""
    columns = [*table["types"], "Average"]
    rows = [*table["datasets"].items(), ("Average", table["average"])]
    first = max(len(name) for name, _ in [("dataset", None), *rows]) + 2
    lines = [f"{'dataset':<{first}}" + "".join(f"{c:>{len(c) + 2}}" for c in columns)]
    for name, row in rows:
        cells = [row["accuracy"][t] for t in table["types"]] + [row["average"]]
        lines.append(
            f"{name:<{first}}" + "".join(f"{100 * v:>{len(c) + 2}.1f}" for c, v in zip(columns, cells, strict=True))
        )
    return lines
