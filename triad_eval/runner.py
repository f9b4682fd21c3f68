"""Runs: from a model spec and a dataset to a run folder, resumable at any point.

The run loop: check the settings, open the dataset, build the requests, send those the cache
lacks to the model adapter and cache each response as it arrives, then score. What the run
folder holds, and how it is locked, resumed and merged, is :mod:`triad_eval.run_folder`.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from itertools import islice
from pathlib import Path

from tqdm.auto import tqdm

import instructiad
from instructiad.errors import InstructIADError
from instructiad.jsonio import write_json
from triad_eval.adapters import load_adapter
from triad_eval.api import Request, Response
from triad_eval.cache import cache_key
from triad_eval.conditions import parse_condition
from triad_eval.data import describe, open_dataset
from triad_eval.experts import parse_expert
from triad_eval.parsing import parse_answer
from triad_eval.requests import iter_requests, parse_tasks
from triad_eval.run_folder import CONFIG, add_usage, check_folder, check_resume, claim, finish


@dataclass
class EvalSettings:
    """What `triad eval` was asked to do."""

    model: str
    data: str
    config: str
    out: Path
    tasks: list[str]
    conditions: list[str]
    split: str = "test"
    revision: str | None = None
    model_args: dict[str, str] = field(default_factory=dict)
    scoring: str = "generate"
    limit: int | None = None
    categories: list[str] | None = None
    batch_size: int = 8
    concurrency: int = 1
    seed: int = 0
    shard: tuple[int, int] | None = None
    expert: str | None = None
    expert_args: dict[str, str] = field(default_factory=dict)
    resume: bool = False
    allow_failures: bool = False


@dataclass
class RunResult:
    """Where the run was written and what it found."""

    folder: Path
    metrics: dict
    from_cache: int
    sent: int

    @property
    def failed(self) -> int:
        return self.metrics["counts"]["failed"]


_CHUNK = 512
"""Requests made and answered at a time (more where one batch is larger)."""


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``; shards count from 0."""
    if not text:
        return None
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        raise InstructIADError(f"--shard {text}: expected i/n with 0 <= i < n")
    return int(index), int(count)


def run_eval(settings: EvalSettings) -> RunResult:
    """Evaluate ``settings.model`` and write the run folder (locked while the run writes to it).

    Raises:
        InstructIADError: bad settings, a run folder that cannot be (re)used, or one another
            run is writing to; nothing is overwritten then.
    """
    with ExitStack() as stack:
        return _run(settings, stack)


def _run(settings: EvalSettings, stack: ExitStack) -> RunResult:
    out = settings.out.expanduser().absolute()
    tasks = parse_tasks(settings.tasks)
    expert = parse_expert(settings.expert, settings.expert_args)
    parsed = [parse_condition(c, expert) for c in settings.conditions]
    conditions = [name for name, _ in parsed]
    if settings.scoring not in ("generate", "options"):
        raise InstructIADError(f"--scoring {settings.scoring}: must be generate or options")
    check_folder(out, settings.resume)
    cache = None
    if (out / CONFIG).is_file():  # --resume: lock the folder and open its cache before the slow part
        cache = claim(out, settings.resume, stack)
    adapter = load_adapter(settings.model, settings.model_args, settings.seed, settings.concurrency)
    if settings.scoring == "options" and not adapter.supports_scores:
        raise InstructIADError(f"{settings.model} cannot score options; use --scoring generate")
    blind = next((name for name, parts in parsed if any(c.drops_images for c in parts)), None)
    if blind and adapter.needs_image:
        raise InstructIADError(f"{settings.model} cannot answer without an image; drop condition {blind}")
    if adapter.supported_tasks is not None:  # e.g. a vision expert: no language questions
        tasks = [t for t in tasks if t in adapter.supported_tasks]
        if not tasks:
            raise InstructIADError(f"{settings.model} answers only {', '.join(adapter.supported_tasks)}")
    data = open_dataset(settings.data, settings.config, settings.split, settings.revision)
    config = {
        "model": settings.model,
        "model_args": settings.model_args,
        "scoring": settings.scoring,
        "dataset": describe(data),
        "tasks": tasks,
        "conditions": conditions,
        "expert": {"spec": expert.spec} | expert.describe() if expert else None,
        "seed": settings.seed,
        "limit": settings.limit,
        "categories": settings.categories,
        "shard": f"{settings.shard[0]}/{settings.shard[1]}" if settings.shard else None,
        "packages": _versions(),
    }
    if (out / CONFIG).is_file():
        check_resume(out, config)
    adapter.bind(data)
    # Every request is made once up front and dropped, keeping only its key: a condition that
    # fails on any record fails before anything is written, and the counts are known. The run
    # then makes them again as it goes, holding one chunk at a time, never all of them.
    unavailable: dict[str, int] = {}
    made = partial(
        iter_requests, data, tasks, conditions, settings.seed, settings.limit, expert, settings.shard,
        categories=settings.categories,
    )  # fmt: skip
    asked = [request.key for request in made(unavailable)]
    adapter.prepare(asked)
    total = len(asked)
    del asked  # not needed again: a large run's keys are tens of megabytes
    params = adapter.cache_params()  # once: it can be costly (replay hashes its whole file)
    config["generation"] = params
    config["unavailable"] = unavailable
    if cache is None:  # a new run: its folder is made only now that the input has proved good
        out.mkdir(parents=True, exist_ok=True)
        cache = claim(out, settings.resume, stack)
    if (out / CONFIG).is_file():  # checked again under the lock: another run may have written it
        check_resume(out, config)
    else:  # a new run, or --resume of one killed before it wrote config.json
        write_json(out / CONFIG, config)

    # A batch is what an adapter gets at once; API adapters get many waves of requests per
    # batch (each batch ends with a drain, slots idle while the last answers come back) and
    # report each response as it arrives, so it is cached at once.
    batch_size = settings.batch_size
    if settings.concurrency > 1:
        batch_size = max(batch_size, 64 * settings.concurrency)
    counts = {"cached": 0, "sent": 0}

    def answered(bar: tqdm) -> Iterator[dict]:
        """The prediction of every request, in request order, sending what the cache lacks."""
        requests = made({})
        while chunk := list(islice(requests, max(_CHUNK, batch_size))):
            keys = [cache_key(adapter, settings.scoring, r, params) for r in chunk]
            responses = cache.get_many(keys)
            todo = [(k, r) for k, r in zip(keys, chunk, strict=True) if k not in responses]
            counts["cached"] += len(responses)
            counts["sent"] += len(todo)
            bar.update(len(responses))
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                began = time.perf_counter()

                def keep(index: int, answer: Response, batch=batch, began=began, responses=responses) -> None:
                    if not answer.latency_s and not answer.failed:  # adapters that do not time themselves
                        spent = (time.perf_counter() - began) / len(batch)
                        answer = Response(answer.text, answer.probs, None, spent)
                    cache.put_many([(batch[index][0], answer)])
                    responses[batch[index][0]] = answer
                    bar.update(1)

                adapter.run_batch([r for _, r in batch], settings.scoring, keep)
            yield from (_prediction(r, responses[k]) for k, r in zip(keys, chunk, strict=True))

    try:
        with tqdm(total=total, desc=settings.model, unit="req", disable=None) as bar:
            metrics = finish(out, config, answered(bar))
    finally:
        add_usage(out, adapter.usage_report())
        adapter.close()
    return RunResult(out, metrics, counts["cached"], counts["sent"])


def _prediction(request: Request, response: Response) -> dict:
    if response.failed:
        parsed, status = None, "failed"
    elif response.text is None and response.probs:
        parsed = max(sorted(response.probs), key=lambda letter: response.probs[letter])
        status = "ok"
    else:
        parsed = parse_answer(response.text, request.options)
        status = "ok" if parsed else "unparsed"
    return {
        "id": request.id,
        "record_index": request.index,
        "task": request.task,
        "condition": request.condition,
        "category": request.category,
        "label": request.label,
        "options": request.options,
        "answer": request.answer,
        "raw": response.text,
        "parsed": parsed,
        "probs": response.probs,
        "status": status,
        "error": response.error,
        "latency_s": round(response.latency_s, 6),
        **({"notes": request.notes} if request.notes else {}),
    }


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "instructiad": instructiad.__version__}
    for package in ("datasets", "numpy", "scikit-learn", "torch", "transformers", "openai", "anomalib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions
