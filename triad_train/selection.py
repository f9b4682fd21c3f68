"""Which records a model trains on: the held-out discipline.

The leaderboard scores the ``test`` split. A model trains on another split where that split
has anomalous images (Real-IAD's train split does); MVTec AD-style datasets keep only normal
images in ``train``, so there it trains on ``test`` with whole categories held out
(``--train-from test --holdout-categories ...``), and only the held-out categories may be
scored. What was trained on and held out goes into the output (:mod:`triad_eval.trained`).
"""

from __future__ import annotations

from dataclasses import dataclass

from instructiad.errors import InstructIADError
from triad_eval.data import EvalDataset, describe, open_dataset
from triad_eval.trained import training_set
from triad_train.options import TrainSettings

SCORED_SPLIT = "test"
"""The split `triad eval` and the leaderboard score by default."""


@dataclass(frozen=True)
class Selection:
    """The records to train on.

    Attributes:
        data: the split they come from.
        indices: their positions in it, in order.
        trained_on: what the output records (:func:`triad_eval.trained.training_set`).
    """

    data: EvalDataset
    indices: list[int]
    trained_on: dict


def category_key(record_id: str) -> str:
    """``"synthetic/steel_sheet/test/pit/000.png"`` -> ``"synthetic/steel_sheet"``."""
    return "/".join(record_id.split("/", 2)[:2])


def select_records(settings: TrainSettings) -> Selection:
    """The records of ``settings.train_from`` to train on, held-out categories removed.

    Raises:
        InstructIADError: training on the scored split without held-out categories, a held-out
            category the split does not have, every category held out, or a split other than
            ``test`` without an anomalous image (MVTec AD-style datasets: train from ``test``).
    """
    data = open_dataset(settings.data, settings.config, settings.train_from, settings.revision)
    ids = data.records.column("id")
    keys = [category_key(record_id) for record_id in ids]
    known = list(dict.fromkeys(keys))
    held: set[str] = set()
    for name in settings.holdout:
        matches = {key for key in known if name in (key, key.split("/", 1)[-1])}
        if not matches:
            names = ", ".join(sorted({key.split("/", 1)[-1] for key in known}))
            raise InstructIADError(
                f"--holdout-categories {name}: config {settings.config} split {settings.train_from} "
                f"has no such category (its categories: {names})"
            )
        held |= matches
    where = f"{data.source}: config {settings.config} split {settings.train_from}"
    if settings.train_from == SCORED_SPLIT and not held:
        raise InstructIADError(
            f"--train-from {SCORED_SPLIT} trains on the split the leaderboard scores: keep whole categories "
            "out with --holdout-categories CAT,... and score only those"
        )
    indices = [index for index, key in enumerate(keys) if key not in held]
    if not indices:
        raise InstructIADError(f"{where}: every category is held out; nothing is left to train on")
    if settings.train_from != SCORED_SPLIT:
        labels = data.records.column("label")
        if not any(labels[index] == 1 for index in indices):
            raise InstructIADError(
                f"{where} holds no anomalous image (normal images only, as in MVTec AD); "
                f"train with --train-from {SCORED_SPLIT} --holdout-categories CAT,... instead"
            )
    if settings.limit is not None:
        indices = indices[: settings.limit]
    trained = training_set(describe(data), settings.train_from, {keys[i] for i in indices}, held, len(indices))
    return Selection(data, indices, trained)
