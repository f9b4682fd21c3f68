"""Training examples: a prompt exactly as `triad eval` sends it, and the completion to learn.

Every prompt comes from :func:`triad_eval.requests.iter_requests`, so the conditions
(``process`` context, ``one_shot`` reference, ``expert`` crops, ``no_image``) shape it byte for
byte as they do in evaluation:

- ``answer``: each multiple-choice question of the record; the completion is its letter.
- ``cot``: the record's CoT-M conversation (``conversation_messages``); the prompt is the
  evaluation prompt of the same record and condition with the question, options and answer
  instruction replaced by the conversation's inspection request; the completion is its
  reasoning. Records without a conversation (no process annotation, several defects, ...)
  give no ``cot`` example.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass

from cot_m.questions import QUESTION_TYPES
from instructiad.errors import InstructIADError
from triad_eval.api import ExpertSource, Request
from triad_eval.data import open_dataset
from triad_eval.requests import INSTRUCTION, iter_requests
from triad_train.options import TrainSettings
from triad_train.selection import Selection

CONVERSATION_TASK = "conversation"
"""The ``task`` of a ``cot`` example's request."""


@dataclass(frozen=True)
class Example:
    """One training example: ``request.messages`` is the prompt, ``completion`` the answer."""

    request: Request
    completion: str
    target: str


@dataclass
class Examples:
    """The examples of a run, in a fixed order (record, then task, then condition), with counts."""

    items: list[Example]
    counts: dict[str, int]
    skipped: dict[str, int]
    unavailable: dict[str, int]


def build_examples(
    selection: Selection, settings: TrainSettings, tasks: list[str], expert: ExpertSource | None = None
) -> Examples:
    """The examples of ``selection`` for ``settings.target`` under ``settings.conditions``.

    Raises:
        InstructIADError: the ``cot`` target on a dataset without CoT-M conversations (built
            before they existed, or with a template set or source that writes none), or no
            example at all.
    """
    data = selection.data
    targets = {"cot", "answer"} if settings.target == "both" else {settings.target}
    conversations = None
    if "cot" in targets:
        conversations = open_dataset(
            data.source, data.config, data.split, data.revision, columns=["id", "conversation_messages"]
        ).records
        if not any(conversations[index]["conversation_messages"] for index in selection.indices):
            raise InstructIADError(
                f"{data.source}: config {data.config} split {data.split} has no CoT-M conversations "
                "(conversation_messages is empty: built with a template set or source that writes none); "
                "rebuild it with the default template set, or train on the questions with --target answer"
            )
    wanted = set(selection.indices)
    # cot examples borrow the prompt of any question of the record: every type is asked for
    asked = list(QUESTION_TYPES) if "cot" in targets else tasks
    items: list[Example] = []
    skipped: Counter[str] = Counter()
    unavailable: dict[str, int] = {}
    conversation_done: set[tuple[int, str]] = set()
    requests = iter_requests(data, asked, settings.conditions, settings.seed, expert=expert, unavailable=unavailable)
    for request in requests:
        if request.index not in wanted:
            continue
        if "answer" in targets and request.task in tasks:
            items.append(Example(request, request.answer, "answer"))
        if conversations is None or (request.index, request.condition) in conversation_done:
            continue
        conversation_done.add((request.index, request.condition))
        turns = conversations[request.index]["conversation_messages"]
        if not turns:
            skipped["cot: the record has no CoT-M conversation"] += 1
            continue
        prompt, reasoning = conversation_request(request, turns)
        items.append(Example(prompt, reasoning, "cot"))
    if not items:
        raise InstructIADError(
            f"{data.source}: no training example for target {settings.target} and tasks {', '.join(tasks)} "
            f"under {', '.join(settings.conditions)}"
        )
    counts = Counter(example.target for example in items)
    return Examples(items, dict(sorted(counts.items())), dict(sorted(skipped.items())), unavailable)


def conversation_request(request: Request, turns: list[dict]) -> tuple[Request, str]:
    """The ``cot`` prompt made from an evaluation ``request`` of the same record and condition,
    and the reasoning to learn: the request's last part (question, options, instruction) gives
    way to the conversation's inspection request; every part before it stays as it is."""
    (message,) = request.messages
    *parts, question = message["content"]
    if question["type"] != "text" or not question["text"].endswith(INSTRUCTION):
        raise InstructIADError(f"{request.id}: the evaluation prompt does not end with the question (internal)")
    user = next(turn for turn in turns if turn["role"] == "user")
    assistant = next(turn for turn in turns if turn["role"] == "assistant")
    instruction = "\n".join(p["text"] for p in user["content"] if p["type"] == "text")
    reasoning = "\n".join(p["text"] for p in assistant["content"] if p["type"] == "text")
    content = (*parts, {"type": "text", "text": instruction})
    prompt = dataclasses.replace(
        request, task=CONVERSATION_TASK, messages=({"role": message["role"], "content": list(content)},),
        options={}, answer="",
    )  # fmt: skip
    return prompt, reasoning
