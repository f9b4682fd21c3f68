"""Reading sources into samples, and samples into records (in parallel, order kept)."""

from __future__ import annotations

import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from multiprocessing import get_context
from pathlib import Path

import cot_m
from cot_m.balance import Balancer
from cot_m.engine import TemplateSet, template_set
from instructiad.errors import BadFileError, OnBadFile, raise_bad_file
from instructiad.processes import Catalog
from instructiad.records import make_record
from instructiad.sample import OwnQuestions, Sample
from instructiad.sources import resolve_source
from instructiad.sources.files import SPLITS, is_utf8

THREADS = 3
"""Threads that make records within one process."""


def list_samples(
    name: str | None, root: str | Path, on_bad: OnBadFile = raise_bad_file, options: dict[str, str] | None = None
) -> dict[str, list[Sample]]:
    """Every sample of one source, grouped by split in :data:`SPLITS` order; ``options`` are
    the reader's own (:attr:`~instructiad.sources.registry.Reader.options`).

    Raises:
        InstructIADError: the root is missing, matches no reader, holds an empty category, or
            an option the reader does not take.
    """
    reader, path = resolve_source(name, root)
    reader.check_options(options or {})
    by_split: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    for sample in reader.iter_samples(path, on_bad, **(options or {})):
        bad_name = next((p for p in (sample.image_path, *sample.mask_paths) if not is_utf8(p)), None)
        if bad_name is not None:
            on_bad(BadFileError(sample.root / bad_name, "file name is not valid UTF-8"))
            continue
        by_split[sample.split].append(sample)
    return {split: samples for split, samples in by_split.items() if samples}


_worker: dict = {}
"""Per-process state of record makers: the catalog, the template set and ``max_side``."""


def _init_worker(catalog: Catalog, templates: tuple[str, str, str], max_side: int | None) -> None:
    name, version, root = templates
    _worker.update(catalog=catalog, templates=TemplateSet(name, version, root), max_side=max_side)


def _record_or_error(sample: Sample) -> dict | BadFileError:
    """The full record of one sample: image facts, process link and CoT-M fields."""
    try:
        record = make_record(sample, _worker["max_side"])
    except BadFileError as error:
        return error
    catalog = _worker["catalog"]
    record["process_id"] = catalog.id_for(record["source"], record["category"])
    if sample.questions is not None:  # a source with its own questions (MMAD): kept as they are
        return record | _own_fields(sample.questions)
    annotation = catalog.get(record["process_id"]) if record["process_id"] else None
    group = catalog.of_source(record["source"]) if annotation else ()
    return record | cot_m.annotate(record, annotation, _worker["templates"], group)


def _own_fields(own: OwnQuestions) -> dict:
    """The question fields of a record whose source brings its own questions: those questions,
    no skips and no conversation (CoT-M reasons from a process annotation, MMAD does not)."""
    return {
        "questions": list(own.questions),
        "skipped": [],
        "conversation_llava": [],
        "conversation_messages": [],
        "template_set": own.origin,
        "template_version": own.version,
    }


def iter_records(
    samples: Iterable[Sample],
    *,
    catalog: Catalog | None = None,
    templates: TemplateSet | None = None,
    max_side: int | None = None,
    on_bad: OnBadFile = raise_bad_file,
    num_proc: int = 1,
) -> Iterator[dict]:
    """Records of ``samples`` in the same order, made by ``num_proc`` processes.

    Each record's ``process_id`` names its category's annotation in ``catalog`` (default:
    the bundled annotations), or is ``None`` where the category has none; its questions and
    conversations come from ``templates`` (default: the bundled ``default`` set).
    With one process, :data:`THREADS` threads make records (reading, hashing and decoding
    release the GIL). The order, and so every byte written from it, does not depend on
    ``num_proc``. From template rules 2 on, the questions of all the records are balanced
    together (:class:`cot_m.balance.Balancer`), so pass one split at a time; a source's own
    questions (MMAD's) are kept as the source wrote them.
    """
    templates = templates or template_set()
    state = (catalog or Catalog(), (templates.name, templates.version, str(templates.folder.parent)), max_side)
    balance = _balancer(templates) if templates.rules >= 2 else None
    # Close the stages here, in this thread, as soon as the consumer stops or an error goes by:
    # left to the garbage collector, a pool could be shut down from one of its own threads.
    if num_proc <= 1:
        _init_worker(*state)
        made = _ordered_thread_map(_record_or_error, samples, THREADS)
        with closing(made), closing(_handle(made, on_bad)) as records:
            yield from map(balance, records) if balance else records
        return
    context = get_context("fork" if sys.platform == "linux" else "spawn")
    with (
        context.Pool(num_proc, initializer=_init_worker, initargs=state) as pool,
        closing(_handle(pool.imap(_record_or_error, samples, chunksize=4), on_bad)) as records,
    ):
        yield from map(balance, records) if balance else records


def _balancer(templates: TemplateSet) -> Callable[[dict], dict]:
    """A :class:`Balancer` for the records whose questions ``templates`` made (not MMAD's)."""
    balance = Balancer()
    return lambda record: balance(record) if record["template_set"] == templates.name else record


def _ordered_thread_map(function: Callable, items: Iterable, workers: int, window: int = 16) -> Iterator:
    """``map(function, items)`` on a thread pool, in order, with at most ``window`` results ahead.

    When the consumer stops early or a call fails, the calls not started are cancelled, and
    the pool is never joined from one of its own threads (where the generator may be
    finalised).
    """
    pool = ThreadPoolExecutor(workers)
    worker_ids: set[int] = set()

    def call(item):
        worker_ids.add(threading.get_ident())
        return function(item)

    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(call, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=threading.get_ident() not in worker_ids)


def _handle(results: Iterable[dict | BadFileError], on_bad: OnBadFile) -> Iterator[dict]:
    for result in results:
        if isinstance(result, BadFileError):
            on_bad(result)
        else:
            yield result
