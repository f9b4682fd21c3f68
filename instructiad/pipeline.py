"""Reading sources into samples, and samples into records (in parallel, order kept)."""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from instructiad.errors import BadFileError, OnBadFile, raise_bad_file
from instructiad.processes import Catalog
from instructiad.records import make_record
from instructiad.sample import Sample
from instructiad.sources import resolve_source
from instructiad.sources.files import SPLITS

THREADS = 3
"""Threads that make records within one process."""


def list_samples(name: str | None, root: str | Path, on_bad: OnBadFile = raise_bad_file) -> dict[str, list[Sample]]:
    """Every sample of one source, grouped by split in :data:`SPLITS` order.

    Raises:
        InstructIADError: the root is missing, matches no reader, or holds an empty category.
    """
    reader, path = resolve_source(name, root)
    by_split: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for sample in reader.iter_samples(path, on_bad):
        by_split[sample.split].append(sample)
    return {split: samples for split, samples in by_split.items() if samples}


def _record_or_error(sample: Sample, max_side: int | None) -> dict | BadFileError:
    try:
        return make_record(sample, max_side)
    except BadFileError as error:
        return error


def iter_records(
    samples: Iterable[Sample],
    *,
    catalog: Catalog | None = None,
    max_side: int | None = None,
    on_bad: OnBadFile = raise_bad_file,
    num_proc: int = 1,
) -> Iterator[dict]:
    """Records of ``samples`` in the same order, made by ``num_proc`` processes.

    Each record's ``process_id`` names its category's annotation in ``catalog`` (default:
    the bundled annotations), or is ``None`` where the category has none.

    With one process, :data:`THREADS` threads make records (reading, hashing and decoding
    release the GIL). The order, and so every byte written from it, does not depend on
    ``num_proc``.
    """
    catalog = catalog or Catalog()
    work = partial(_record_or_error, max_side=max_side)
    if num_proc <= 1:
        results = _handle(_ordered_thread_map(work, samples, THREADS), on_bad)
        yield from _with_process_ids(results, catalog)
        return
    with get_context("fork" if sys.platform == "linux" else "spawn").Pool(num_proc) as pool:
        yield from _with_process_ids(_handle(pool.imap(work, samples, chunksize=4), on_bad), catalog)


def _with_process_ids(records: Iterable[dict], catalog: Catalog) -> Iterator[dict]:
    for record in records:
        record["process_id"] = catalog.id_for(record["source"], record["category"])
        yield record


def _ordered_thread_map(function: Callable, items: Iterable, workers: int, window: int = 16) -> Iterator:
    """``map(function, items)`` on a thread pool, in order, with at most ``window`` results ahead."""
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future] = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _handle(results: Iterable[dict | BadFileError], on_bad: OnBadFile) -> Iterator[dict]:
    for result in results:
        if isinstance(result, BadFileError):
            on_bad(result)
        else:
            yield result
