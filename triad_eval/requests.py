"""Requests: what a model is asked, one per (record, question type, condition)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from instructiad.errors import InstructIADError
from instructiad.seeds import seed_for
from triad_eval.conditions import Unavailable, parse_condition
from triad_eval.data import EvalDataset, ImageRef
from triad_eval.experts import ExpertSource

TASKS = ("discrimination", "defect_type", "location", "appearance", "root_cause")
INSTRUCTION = "Answer with the option's letter from the given choices directly."
QUERY_LEAD = "Following is the query image:"


@dataclass(frozen=True)
class Request:
    """One question to one model under one condition.

    Attributes:
        id: the record id; with ``task`` and ``condition`` it names the request.
        index: the record's position in its split (shards merge back into this order).
        messages: chat messages; content parts are ``{"type": "text", "text"}`` or
            ``{"type": "image", "image": ImageRef}`` (none under ``no_image``).
        options: letter -> option text.
        answer: the correct letter.
    """

    id: str
    index: int
    task: str
    condition: str
    category: str
    label: str
    messages: tuple[dict, ...] = field(repr=False)
    options: dict[str, str]
    answer: str
    notes: dict = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.id, self.task, self.condition)

    @property
    def images(self) -> list[ImageRef]:
        """The images of the prompt, in order."""
        return [p["image"] for m in self.messages for p in m["content"] if p["type"] == "image"]

    def prompt_json(self) -> str:
        """The prompt as canonical JSON, images replaced by their sha256 (for cache keys)."""

        def plain(part: dict) -> dict:
            if part["type"] != "image":
                return part
            return {"type": "image", "sha256": part["image"].sha256, **({"roi": True} if part.get("roi") else {})}

        messages = [{"role": m["role"], "content": [plain(p) for p in m["content"]]} for m in self.messages]
        return json.dumps({"messages": messages, "options": self.options}, sort_keys=True, ensure_ascii=False)


def parse_tasks(names: list[str]) -> list[str]:
    """Check task names; raises with the known ones."""
    unknown = [n for n in names if n not in TASKS]
    if unknown or not names:
        raise InstructIADError(f"unknown task {unknown[0] if unknown else ''!r} (known: {', '.join(TASKS)})")
    return [t for t in TASKS if t in names]


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
    """
    parsed = [parse_condition(c, expert) for c in conditions]
    records = [
        (index, record)
        for index, record in enumerate(data.records[:limit])
        if shard is None or _record_in_shard(record["id"], *shard)
    ]
    if expert is not None and any("expert" in name.split("+") for name, _ in parsed):
        expert.prepare(data, [record["id"] for _, record in records])
    requests, unavailable = [], {}
    for index, record in records:
        query = ImageRef(record["image_sha256"], record["image"]["bytes"])
        questions = {q["type"]: q for q in record["questions"]}
        for task in tasks:
            if task not in questions:
                continue
            question = questions[task]
            options = {o["letter"]: o["text"] for o in question["options"]}
            text = "\n".join([question["question"], *(f"{k}. {v}" for k, v in options.items()), INSTRUCTION])
            for name, parts in parsed:
                try:
                    before = [p for condition in parts for p in condition.parts(record, data, seed)]
                    after = [p for condition in parts for p in condition.after(record, data, seed)]
                except Unavailable as reason:
                    unavailable[f"{name}: {reason}"] = unavailable.get(f"{name}: {reason}", 0) + 1
                    continue
                lead = [{"type": "text", "text": QUERY_LEAD}] if any(p["type"] == "image" for p in before) else []
                content = [*before, *lead, {"type": "image", "image": query}, *after, {"type": "text", "text": text}]
                if any(condition.drops_images for condition in parts):  # no_image: the same text, no image
                    content = [p for p in content if p["type"] != "image"]
                notes = {k: v for condition in parts for k, v in condition.note(record).items()}
                label = "anomaly" if record["label"] == 1 else "normal"
                messages = ({"role": "user", "content": content},)
                requests.append(
                    Request(
                        record["id"],
                        index,
                        task,
                        name,
                        record["category"],
                        label,
                        messages,
                        options,
                        question["answer"],
                        notes,
                    )
                )
    return requests, unavailable


def in_shard(request: Request, index: int, count: int) -> bool:
    """Whether ``request`` belongs to shard ``index`` of ``count`` (by a hash of its record id,
    so all questions about one image land in the same shard)."""
    return _record_in_shard(request.id, index, count)


def _record_in_shard(record_id: str, index: int, count: int) -> bool:
    return seed_for(record_id) % count == index
