"""The run folder: what a run writes, how the folder is locked and resumed, and how the
shards of one evaluation merge into one folder.

A run folder (``triad eval --out``) holds:

- ``config.json``: what was asked (model and its arguments, scoring, the dataset with its
  fingerprint, tasks, conditions, expert, seed, limit, shard), the package versions, the
  adapter's generation parameters (``generation``) and the requests that could not be built
  (``unavailable``); written before the first request is sent.
- ``cache.sqlite``: every response, written as it arrives (:mod:`triad_eval.cache`).
- ``predictions.jsonl``: one line per request, in request order: the request, the raw answer,
  the parsed letter, its status and latency.
- ``metrics.json``: the metrics (``schemas/metrics.schema.json``).
- ``summary.txt``: the metrics as a readable table.
- ``usage.json``: resources an adapter reports (API tokens, requests, retries), added up over
  resumed sessions; only where the adapter reports any.
- ``.lock``: held (``flock``) while a run writes to the folder; the file stays.

Predictions, metrics and summary are written at the end, atomically, from the cache, so a run
killed at any moment and resumed ends with the same predictions and metrics as one that ran
straight through. A merged folder (:func:`merge_runs`) holds ``config.json`` (``shard`` null,
``merged_from`` naming the shard folders), predictions, metrics and summary, and no cache.
"""

from __future__ import annotations

import fcntl
import heapq
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import schemas
from instructiad.errors import InstructIADError
from instructiad.jsonio import read_json, write_json
from triad_eval.cache import ResponseCache
from triad_eval.metrics import PredictionTable, compute_metrics
from triad_eval.summary import format_summary

CONFIG, PREDICTIONS, METRICS, SUMMARY, CACHE, LOCK = (
    "config.json", "predictions.jsonl", "metrics.json", "summary.txt", "cache.sqlite", ".lock",
)  # fmt: skip
_COMPARED = (
    "model", "model_args", "scoring", "dataset", "tasks", "conditions", "expert", "seed", "limit", "categories",
    "shard",
)  # fmt: skip
"""config.json fields that must match for --resume (package versions may differ)."""


def finish(out: Path, config: dict, predictions: Iterable[dict]) -> dict:
    """Write predictions.jsonl line by line as ``predictions`` yields them, then metrics.json
    and summary.txt; return the metrics. Each file appears only complete (written beside it, then renamed), and of each
    prediction only what the metrics read stays in memory (a :class:`~triad_eval.metrics.PredictionTable`).
    """
    partial = out / f".{PREDICTIONS}.partial"
    scored = PredictionTable()
    try:
        with partial.open("w", encoding="utf-8") as lines:
            for prediction in predictions:
                lines.write(json.dumps(prediction, sort_keys=True, ensure_ascii=False) + "\n")
                scored.add(prediction)
        metrics = compute_metrics(scored, seed=config["seed"])
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    problems = schemas.errors(metrics, "metrics")
    if problems:  # a bug, not bad input: say it plainly
        raise RuntimeError(f"metrics do not match schemas/metrics.schema.json: {problems[0]}")
    os.replace(partial, out / PREDICTIONS)
    write_json(out / METRICS, metrics)
    _write_text(out / SUMMARY, format_summary(config, metrics))
    return metrics


def add_usage(out: Path, usage: dict[str, int]) -> None:
    """Add this session's usage to usage.json (resumed runs add up)."""
    if not usage:
        return
    path = out / "usage.json"
    total = read_json(path) if path.is_file() else {}
    write_json(path, {k: total.get(k, 0) + usage.get(k, 0) for k in sorted(total.keys() | usage.keys())})


def check_folder(out: Path, resume: bool) -> None:
    """Refuse a run folder ``out`` that this run may not use: one with files in it, unless
    ``resume`` and it holds an earlier run's config.json."""
    has_config = (out / CONFIG).is_file()
    empty = not out.exists() or all(p.name == LOCK for p in out.iterdir())
    if resume and not has_config and not empty:  # --resume of a run killed before it made its folder starts it
        raise InstructIADError(f"{out}: --resume needs an earlier run's {CONFIG} there")
    if not resume and not empty:
        hint = "; pass --resume to continue it" if has_config else ""
        raise InstructIADError(f"{out}: run folder already exists and is not empty{hint}")


def claim(out: Path, resume: bool, stack: ExitStack) -> ResponseCache:
    """Lock the run folder ``out`` and open its cache, both until ``stack`` closes; check the
    folder again under the lock (another run may have written to it since the first look)."""
    stack.enter_context(_locked(out))
    check_folder(out, resume)
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


def check_resume(out: Path, config: dict) -> None:
    """Refuse to resume the run in ``out`` with a ``config`` that differs from its config.json
    in a field that changes the results (:data:`_COMPARED`)."""
    earlier = read_json(out / CONFIG)
    for name in _COMPARED:
        if earlier.get(name) != config[name]:
            raise InstructIADError(
                f"{out / CONFIG}: --resume with a different {name} "
                f"({json.dumps(earlier.get(name))[:80]} before, {json.dumps(config[name])[:80]} now)"
            )


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (a partial sibling file renamed into place)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def load_run(folder: Path, fields: tuple[str, ...] | None = None) -> tuple[dict, list[dict], dict]:
    """(config, predictions, metrics) of a finished run folder.

    With ``fields``, each prediction keeps only those, and equal option dicts are one object:
    for readers of many large runs (the leaderboard), a fraction of the memory.
    """
    config = read_config(folder)
    predictions = list(_read_predictions(Path(folder) / PREDICTIONS, fields))
    return config, predictions, read_json(Path(folder) / METRICS)


def read_config(folder: Path) -> dict:
    """config.json of a finished run folder; raises naming the first file it lacks."""
    folder = Path(folder)
    for name in (CONFIG, PREDICTIONS, METRICS):
        if not (folder / name).is_file():
            raise InstructIADError(f"{folder}: not a finished run (no {name})")
    return read_json(folder / CONFIG)


def _read_predictions(path: Path, fields: tuple[str, ...] | None = None) -> Iterator[dict]:
    """The predictions of a predictions.jsonl, one at a time (see :func:`load_run` for ``fields``)."""
    options: dict[tuple, dict] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            prediction = json.loads(line)
            if fields is not None:
                prediction = {k: prediction[k] for k in fields if k in prediction}
                if isinstance(prediction.get("options"), dict):
                    shared = prediction["options"]
                    prediction["options"] = options.setdefault(tuple(shared.items()), shared)
            yield prediction


def identity(config: dict) -> str:
    """What makes two run folders parts of one evaluation: everything but shard and environment."""
    return json.dumps({k: v for k, v in config.items() if k not in _NOT_IDENTITY}, sort_keys=True)


_NOT_IDENTITY = ("shard", "packages", "unavailable", "merged_from")


def join_shards(parts: list[tuple[Path, dict, list[dict]]]) -> tuple[dict, list[dict]]:
    """The config and predictions of one evaluation from its shard runs ``(folder, config, predictions)``,
    predictions in the order an unsharded run writes them.

    Raises:
        InstructIADError: see :func:`join_configs`.
    """
    config = join_configs([(folder, config) for folder, config, _ in parts])
    predictions = sorted((p for _, _, predictions in parts for p in predictions), key=lambda p: canonical(p, config))
    return config, predictions


def join_configs(parts: list[tuple[Path, dict]]) -> dict:
    """The config of one evaluation from the configs of its shard runs ``(folder, config)``.

    Raises:
        InstructIADError: the runs are not all shards of one evaluation, or a shard is
            missing or repeated.
    """
    first_folder, first = parts[0]
    for folder, config in parts[1:]:
        if identity(config) != identity(first):
            mine, theirs = json.loads(identity(config)), json.loads(identity(first))
            differing = next(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise InstructIADError(
                f"{folder}: differs from {first_folder} in {differing}; only shards of one run merge"
            )
    shards = [config["shard"] for _, config in parts]
    by_shard: dict[str | None, list[Path]] = defaultdict(list)
    for folder, config in parts:
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
    config = first | {"shard": None, "merged_from": [str(Path(f).absolute()) for f, _ in parts]}
    config["unavailable"] = _sum_counts(c.get("unavailable", {}) for _, c in parts)
    return config


def merge_runs(folders: list[Path], out: Path) -> dict:
    """Join the shards of one evaluation into one run folder; return its metrics.

    Raises:
        InstructIADError: see :func:`join_shards`, or ``out`` exists.
    """
    out = Path(out).expanduser().absolute()
    if out.exists() and any(out.iterdir()):
        raise InstructIADError(f"{out}: output folder already exists and is not empty")
    folders = [Path(f) for f in folders]
    config = join_configs([(folder, read_config(folder)) for folder in folders])
    # each shard's predictions are in the canonical order already: merge them as they are read
    streams = [_read_predictions(folder / PREDICTIONS) for folder in folders]
    predictions = heapq.merge(*streams, key=lambda p: canonical(p, config))
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
