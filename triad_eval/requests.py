"""Requests: what a model is asked, one per (record, question type, condition).

The :class:`~triad_eval.api.Request` type itself is a contract and lives in :mod:`triad_eval.api`.
"""

from __future__ import annotations

from collections.abc import Iterator

import cot_m.questions
from instructiad.errors import InstructIADError
from instructiad.sample import LABELS
from instructiad.seeds import seed_for
from triad_eval.api import ExpertSource, ImageRef, Request
from triad_eval.conditions import Unavailable, parse_condition
from triad_eval.data import EvalDataset

INSTRUCTION = "Answer with the option's letter from the given choices directly."
QUERY_LEAD = "Following is the query image:"


def parse_tasks(names: list[str]) -> list[str]:
    """Check task names against :data:`cot_m.questions.QUESTION_TYPES` (read when called);
    raises with the known ones."""
    types = cot_m.questions.QUESTION_TYPES
    unknown = [n for n in names if n not in types]
    if unknown or not names:
        raise InstructIADError(f"unknown task {unknown[0] if unknown else ''!r} (known: {', '.join(types)})")
    return [t for t in types if t in names]


def build_requests(
    data: EvalDataset,
    tasks: list[str],
    conditions: list[str],
    seed: int = 0,
    limit: int | None = None,
    expert: ExpertSource | None = None,
    shard: tuple[int, int] | None = None,
) -> tuple[list[Request], dict[str, int]]:
    """Every request for the first ``limit`` records (all by default), in record, task,
    condition order; and how many a condition could not serve, by reason.

    With ``shard`` ``(i, n)``, only the records of shard ``i`` of ``n`` (see :func:`in_shard`)
    are built, so each shard does its share of the work (expert maps, crops) and no more.
    A run streams the same requests with :func:`iter_requests` instead of holding them all.
    """
    unavailable: dict[str, int] = {}
    return list(iter_requests(data, tasks, conditions, seed, limit, expert, shard, unavailable)), unavailable


def iter_requests(
    data: EvalDataset,
    tasks: list[str],
    conditions: list[str],
    seed: int = 0,
    limit: int | None = None,
    expert: ExpertSource | None = None,
    shard: tuple[int, int] | None = None,
    unavailable: dict[str, int] | None = None,
    categories: list[str] | None = None,
) -> Iterator[Request]:
    """The requests of :func:`build_requests`, made one record at a time as they are consumed;
    requests a condition cannot serve are counted into ``unavailable`` (reason -> count). With
    ``categories``, only those categories' records (``limit`` then counts among them)."""
    unavailable = {} if unavailable is None else unavailable
    parsed = [parse_condition(c, expert) for c in conditions]
    indices = _record_indices(data, limit, shard, categories)
    if expert is not None and any("expert" in name.split("+") for name, _ in parsed):
        ids = data.records.column("id")
        expert.prepare(data, [ids[i] for i in indices])
    for index in indices:
        record = data.records[index]
        query = ImageRef(record["image_sha256"], record["image"]["bytes"])
        questions = {q["type"]: q for q in record["questions"]}
        for task in tasks:
            if task not in questions:
                continue
            question = questions[task]
            options = {o["letter"]: o["text"] for o in question["options"]}
            text = "\n".join([question["question"], *(f"{k}. {v}" for k, v in options.items()), INSTRUCTION])
            for name, combined in parsed:
                try:
                    before = [p for condition in combined for p in condition.before(record, data, seed)]
                    after = [p for condition in combined for p in condition.after(record, data, seed)]
                except Unavailable as reason:
                    unavailable[f"{name}: {reason}"] = unavailable.get(f"{name}: {reason}", 0) + 1
                    continue
                lead = [{"type": "text", "text": QUERY_LEAD}] if any(p["type"] == "image" for p in before) else []
                content = [*before, *lead, {"type": "image", "image": query}, *after, {"type": "text", "text": text}]
                if any(condition.drops_images for condition in combined):  # no_image: the same text, no image
                    content = [p for p in content if p["type"] != "image"]
                notes = {k: v for condition in combined for k, v in condition.note(record).items()}
                label = LABELS[record["label"]]  # the ClassLabel's names, by index
                messages = ({"role": "user", "content": content},)
                yield Request(
                    record["id"], index, task, name, record["category"], label, messages, options,
                    question["answer"], notes,
                )  # fmt: skip


def _record_indices(
    data: EvalDataset, limit: int | None, shard: tuple[int, int] | None, categories: list[str] | None = None
) -> list[int]:
    """Indices of the first ``limit`` records (of ``categories``, where given) that fall in ``shard``.

    Raises:
        InstructIADError: a category the split does not have.
    """
    indices = list(range(len(data.records)))
    if categories is not None:
        of_record = data.records.column("category")
        present = set(of_record)
        unknown = next((c for c in categories if c not in present), None)
        if unknown is not None:
            known = ", ".join(sorted(present))
            raise InstructIADError(
                f"--categories {unknown}: the {data.split} split has no such category (it has: {known})"
            )
        indices = [index for index in indices if of_record[index] in categories]
    ids = data.records.column("id")
    return [i for i in indices[:limit] if shard is None or _record_in_shard(ids[i], *shard)]


def in_shard(request: Request, index: int, count: int) -> bool:
    """Whether ``request`` belongs to shard ``index`` of ``count`` (by a hash of its record id,
    so all questions about one image land in the same shard)."""
    return _record_in_shard(request.id, index, count)


def _record_in_shard(record_id: str, index: int, count: int) -> bool:
    return seed_for(record_id) % count == index
