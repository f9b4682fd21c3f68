"""Runs: from a model spec and a dataset to a run folder, resumable at any point.

A run folder holds ``config.json`` (what was asked), ``cache.sqlite`` (every response, written
as it arrives), ``predictions.jsonl`` (one line per request), ``metrics.json`` and
``summary.txt``. The last three are written at the end, atomically, from the cache, so a run
killed at any moment and resumed ends with the same predictions and metrics as one that ran
straight through.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from tqdm.auto import tqdm

import instructiad
import schemas
from instructiad.errors import InstructIADError
from triad_eval.adapters import load_adapter
from triad_eval.api import Request, Response
from triad_eval.cache import ResponseCache, cache_key
from triad_eval.conditions import parse_condition
from triad_eval.data import describe, open_dataset, read_json
from triad_eval.experts import parse_expert
from triad_eval.metrics import compute_metrics
from triad_eval.parsing import parse_answer
from triad_eval.requests import build_requests, parse_tasks
from triad_eval.summary import format_summary

CONFIG, PREDICTIONS, METRICS, SUMMARY, CACHE, LOCK = (
    "config.json", "predictions.jsonl", "metrics.json", "summary.txt", "cache.sqlite", ".lock",
)  # fmt: skip
_COMPARED = ("model", "model_args", "scoring", "dataset", "tasks", "conditions", "expert", "seed", "limit", "shard")
"""config.json fields that must match for --resume (package versions may differ)."""


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
    _check_folder(out, settings.resume)
    cache = None
    if (out / CONFIG).is_file():  # --resume: lock the folder and open its cache before the slow part
        cache = _claim(out, settings.resume, stack)
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
        "shard": f"{settings.shard[0]}/{settings.shard[1]}" if settings.shard else None,
        "packages": _versions(),
    }
    if (out / CONFIG).is_file():
        _check_resume(out, config)
    adapter.bind(data)
    requests, unavailable = build_requests(
        data, tasks, conditions, settings.seed, settings.limit, expert, shard=settings.shard
    )
    adapter.prepare(requests)
    params = adapter.cache_params()  # once: it can be costly (replay hashes its whole file)
    config["generation"] = params
    config["unavailable"] = unavailable
    if cache is None:  # a new run: its folder is made only now that the input has proved good
        out.mkdir(parents=True, exist_ok=True)
        cache = _claim(out, settings.resume, stack)
    if (out / CONFIG).is_file():  # checked again under the lock: another run may have written it
        _check_resume(out, config)
    else:  # a new run, or --resume of one killed before it wrote config.json
        write_json(out / CONFIG, config)

    try:
        keys = [cache_key(adapter, settings.scoring, r, params) for r in requests]
        responses = cache.get_many(keys)
        from_cache = len(responses)
        todo = [(k, r) for k, r in zip(keys, requests, strict=True) if k not in responses]
        # A batch is what an adapter gets at once; API adapters get many waves of requests per
        # batch (each batch ends with a drain, slots idle while the last answers come back) and
        # report each response as it arrives, so it is cached at once.
        batch_size = (
            max(settings.batch_size, 64 * settings.concurrency) if settings.concurrency > 1 else settings.batch_size
        )
        with tqdm(total=len(requests), initial=from_cache, desc=settings.model, unit="req", disable=None) as bar:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                began = time.perf_counter()

                def keep(index: int, answer: Response, batch=batch, began=began) -> None:
                    if not answer.latency_s and not answer.failed:  # adapters that do not time themselves
                        spent = (time.perf_counter() - began) / len(batch)
                        answer = Response(answer.text, answer.probs, None, spent)
                    cache.put_many([(batch[index][0], answer)])
                    responses[batch[index][0]] = answer
                    bar.update(1)

                adapter.run_batch([r for _, r in batch], settings.scoring, keep)
    finally:
        _add_usage(out, adapter.usage_report())
        adapter.close()

    predictions = [_prediction(r, responses[k]) for k, r in zip(keys, requests, strict=True)]
    metrics = finish(out, config, predictions)
    return RunResult(out, metrics, from_cache, len(todo))


def finish(out: Path, config: dict, predictions: list[dict]) -> dict:
    """Write predictions.jsonl, metrics.json and summary.txt (each atomically); return the metrics."""
    metrics = compute_metrics(predictions, seed=config["seed"])
    problems = schemas.errors(metrics, "metrics")
    if problems:  # a bug, not bad input: say it plainly
        raise RuntimeError(f"metrics do not match schemas/metrics.schema.json: {problems[0]}")
    lines = "".join(json.dumps(p, sort_keys=True, ensure_ascii=False) + "\n" for p in predictions)
    _write_text(out / PREDICTIONS, lines)
    write_json(out / METRICS, metrics)
    _write_text(out / SUMMARY, format_summary(config, metrics))
    return metrics


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


def _add_usage(out: Path, usage: dict[str, int]) -> None:
    """Add this session's usage to usage.json (resumed runs add up)."""
    if not usage:
        return
    path = out / "usage.json"
    total = read_json(path) if path.is_file() else {}
    write_json(path, {k: total.get(k, 0) + usage.get(k, 0) for k in sorted(total.keys() | usage.keys())})


def _check_folder(out: Path, resume: bool) -> None:
    has_config = (out / CONFIG).is_file()
    empty = not out.exists() or all(p.name == LOCK for p in out.iterdir())
    if resume and not has_config and not empty:  # --resume of a run killed before it made its folder starts it
        raise InstructIADError(f"{out}: --resume needs an earlier run's {CONFIG} there")
    if not resume and not empty:
        hint = "; pass --resume to continue it" if has_config else ""
        raise InstructIADError(f"{out}: run folder already exists and is not empty{hint}")


def _claim(out: Path, resume: bool, stack: ExitStack) -> ResponseCache:
    """Lock the run folder ``out`` and open its cache, both until ``stack`` closes; check the
    folder again under the lock (another run may have written to it since the first look)."""
    stack.enter_context(_locked(out))
    _check_folder(out, resume)
    return stack.enter_context(closing(ResponseCache(out / CACHE)))


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run folder ``out`` (its ``.lock`` file) until the block ends.

    The lock file stays: removing it would let a third run lock a new file while a second still
    holds the old one. The kernel drops the lock when the process ends, even on ``kill -9``.
    """
    try:
        handle = (out / LOCK).open("a")
    except OSError as error:
        raise InstructIADError(f"{out}: cannot lock the run folder ({error})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstructIADError(f"{out}: another triad eval is writing to this run folder; wait for it") from None
        yield


def _check_resume(out: Path, config: dict) -> None:
    earlier = read_json(out / CONFIG)
    for name in _COMPARED:
        if earlier.get(name) != config[name]:
            raise InstructIADError(
                f"{out / CONFIG}: --resume with a different {name} "
                f"({json.dumps(earlier.get(name))[:80]} before, {json.dumps(config[name])[:80]} now)"
            )


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "instructiad": instructiad.__version__}
    for package in ("datasets", "numpy", "scikit-learn", "torch", "transformers", "openai", "anomalib"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _write_text(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically (a partial file renamed into place)."""
    _write_text(path, json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


def load_run(folder: Path) -> tuple[dict, list[dict], dict]:
    """(config, predictions, metrics) of a finished run folder."""
    folder = Path(folder)
    for name in (CONFIG, PREDICTIONS, METRICS):
        if not (folder / name).is_file():
            raise InstructIADError(f"{folder}: not a finished run (no {name})")
    predictions = [json.loads(line) for line in (folder / PREDICTIONS).read_text().splitlines() if line.strip()]
    return read_json(folder / CONFIG), predictions, read_json(folder / METRICS)


def identity(config: dict) -> str:
    """What makes two run folders parts of one evaluation: everything but shard and environment."""
    return json.dumps({k: v for k, v in config.items() if k not in _NOT_IDENTITY}, sort_keys=True)


_NOT_IDENTITY = ("shard", "packages", "unavailable", "merged_from")


def join_shards(parts: list[tuple[Path, dict, list[dict]]]) -> tuple[dict, list[dict]]:
    """The config and predictions of one evaluation from its shard runs ``(folder, config, predictions)``,
    predictions in the order an unsharded run writes them.

    Raises:
        InstructIADError: the runs are not all shards of one evaluation, or a shard is
            missing or repeated.
    """
    first_folder, first = parts[0][0], parts[0][1]
    for folder, config, _ in parts[1:]:
        if identity(config) != identity(first):
            mine, theirs = json.loads(identity(config)), json.loads(identity(first))
            differing = next(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise InstructIADError(
                f"{folder}: differs from {first_folder} in {differing}; only shards of one run merge"
            )
    shards = [config["shard"] for _, config, _ in parts]
    by_shard: dict[str | None, list[Path]] = defaultdict(list)
    for folder, config, _ in parts:
        by_shard[config["shard"]].append(folder)
    for shard, folders in by_shard.items():
        if len(folders) > 1:
            what = (
                f"shard {shard} of one evaluation" if shard else "runs of one evaluation (same model, data, settings)"
            )
            raise InstructIADError(f"{folders[0]} and {folders[1]} are both {what}: pass one of them")
    counts = {int(s.split("/")[1]) for s in shards if s}
    if None in shards or len(counts) != 1 or sorted(int(s.split("/")[0]) for s in shards) != list(range(counts.pop())):
        raise InstructIADError(f"shards {', '.join(map(str, shards))}: need each of 0/n .. n-1/n exactly once")
    config = first | {"shard": None, "merged_from": [str(Path(f).absolute()) for f, _, _ in parts]}
    config["unavailable"] = _sum_counts(c.get("unavailable", {}) for _, c, _ in parts)
    predictions = sorted((p for _, _, predictions in parts for p in predictions), key=lambda p: canonical(p, config))
    return config, predictions


def merge_runs(folders: list[Path], out: Path) -> dict:
    """Join the shards of one evaluation into one run folder; return its metrics.

    Raises:
        InstructIADError: see :func:`join_shards`, or ``out`` exists.
    """
    out = Path(out).expanduser().absolute()
    if out.exists() and any(out.iterdir()):
        raise InstructIADError(f"{out}: output folder already exists and is not empty")
    config, predictions = join_shards([(Path(f), *load_run(f)[:2]) for f in folders])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / CONFIG, config)
    return finish(out, config, predictions)


def _sum_counts(dicts) -> dict:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return dict(sorted(total.items()))


def canonical(prediction: dict, config: dict) -> tuple:
    """The order of an unsharded run: record order in the split, then task, then condition."""
    return (
        prediction["record_index"],
        config["tasks"].index(prediction["task"]),
        config["conditions"].index(prediction["condition"]),
    )
