"""What a fine-tuned model was trained on, and which scored records that covers.

`triad train` writes a ``trained_on`` block into the model folder's ``training_args.json``
(:func:`training_set`); the ``hf:`` and ``triad:`` adapters put it into a run's
``config.json`` (``generation.trained_on``); `triad leaderboard` counts the scored records it
covers (:func:`trained_scored`) and marks the model when there is any. Records are matched by
id (``<source>/<category>/<split>/<path>``, stable across builds): a record is covered when its
split is the one trained on and its source and category were not held out.
"""

from __future__ import annotations

from collections.abc import Iterable


def training_set(dataset: dict, split: str, categories: Iterable[str], held_out: Iterable[str], records: int) -> dict:
    """The ``trained_on`` block.

    Args:
        dataset: the dataset as ``triad_eval.data.describe`` gives it (source, config, split,
            revision, fingerprint, template sets).
        split: the split the examples came from.
        categories: ``<source>/<category>`` of every category trained on.
        held_out: ``<source>/<category>`` of every category kept out.
        records: how many records the examples came from.
    """
    return {
        "dataset": dataset,
        "split": split,
        "categories": sorted(set(categories)),
        "held_out": sorted(set(held_out)),
        "records": records,
    }


def covers(trained_on: dict, record_id: str) -> bool:
    """Whether the record ``record_id`` is one the model could have been trained on."""
    source, category, split = [*record_id.split("/", 3), "", ""][:3]
    return split == trained_on.get("split") and f"{source}/{category}" in trained_on.get("categories", ())


def trained_scored(trained_on: dict, record_ids: Iterable[str]) -> int:
    """How many distinct records of ``record_ids`` the training set covers."""
    return sum(covers(trained_on, record_id) for record_id in set(record_ids))
