"""What every answer-file reader shares: checking that each request is answered once, and the
record ids a file's rows may name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from instructiad.errors import InstructIADError

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset


FIELDS = ("id", "task", "condition", "raw", "probs", "error", "status", "latency_s")
"""What replay reads of an answer entry; readers may drop the rest (a run's predictions.jsonl
repeats each request's options and notes, which replay does not need)."""


def unique_entries(found: list[tuple[str, dict]]) -> list[dict]:
    """The entries of ``(where, entry)`` pairs, in order.

    Raises:
        InstructIADError: two entries answer the same (id, task, condition); the message names
            where the second one is (``file:line``, ``file: row index=7``).
    """
    seen: set[tuple[str, str, str]] = set()
    for where, entry in found:
        key = (entry["id"], entry["task"], entry["condition"])
        if key in seen:
            raise InstructIADError(f"{where}: duplicate prediction for {' / '.join(key)}")
        seen.add(key)
    return [entry for _, entry in found]


def record_ids(data: EvalDataset) -> set[str]:
    """The ids of the dataset's records (read from the id column where it can be read alone)."""
    records = data.records
    column = getattr(records, "column", None)
    return set(column("id")) if column else {record["id"] for record in records}
