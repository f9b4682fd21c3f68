"""CoT-M conversations: an inspection request and an answer that reasons from the process.

The answer goes in steps: process recap, expected normal appearance, observation (what and
where), judgement, likely cause (step and mechanism), final answer. For a normal image it
explains why the variation it shows is acceptable. Two forms are produced: LLaVA
(``from``/``value`` turns with ``<image>``) and chat messages (``role``/``content`` parts).
"""

from __future__ import annotations

from cot_m.context import category_context, defect_context, observation, observed_defects
from cot_m.engine import TemplateSet
from instructiad.processes import ProcessAnnotation
from instructiad.seeds import rng_for

IMAGE_TOKEN = "<image>"


class NoConversation(Exception):
    """The record cannot get a grounded conversation, and why."""


def make_conversation(record: dict, annotation: ProcessAnnotation | None, templates: TemplateSet) -> tuple[str, str]:
    """The (instruction, answer) texts of a record's CoT-M conversation.

    Raises:
        NoConversation: without an annotation, or with a defect it does not describe, the
            reasoning cannot be grounded in the process.
    """
    if annotation is None:
        raise NoConversation("the category has no process annotation")
    context = category_context(annotation, record["source"], record["category"])
    instruction = templates.render("instruction", context, rng_for(f"{record['id']}/instruction"))
    if record["label"] == "normal":
        return instruction, templates.render("cot/normal", context)
    defects, problem = observed_defects(record, annotation)
    if problem:
        raise NoConversation(problem)
    if templates.rules >= 2 and any(d.catch_all for d in defects):
        raise NoConversation("a catch-all defect class has no single appearance or cause to reason from")
    context |= {
        "defects": [defect_context(d, annotation) for d in defects],
        "location": record["location"],
        "observation": observation(record),
    }
    return instruction, templates.render("cot/anomaly", context)


def llava_turns(instruction: str, answer: str) -> list[dict]:
    """``[{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}]``."""
    return [{"from": "human", "value": f"{IMAGE_TOKEN}\n{instruction}"}, {"from": "gpt", "value": answer}]


def chat_messages(instruction: str, answer: str) -> list[dict]:
    """The same turns as chat messages, the image as a content part (``text`` None)."""
    return [
        {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": instruction}]},
        {"role": "assistant", "content": [{"type": "text", "text": answer}]},
    ]
