"""Batches for the trainer: prompt tokens exactly as evaluation makes them, loss on the answer only.

The prompt side of a batch is :func:`triad_eval.adapters.huggingface.prompt_inputs`, the call
the ``hf:`` and ``triad:`` adapters make before they generate (chat template with the
generation prompt, images, Triad's region crops), so a model trains on the very token ids it
will be asked with. The completion is what the chat template adds after that prompt when the
answer is appended as the assistant's turn (the answer and the end-of-turn tokens); its tokens
follow each prompt's own tokens, and only they carry labels: the prompt is masked (-100).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from instructiad.errors import InstructIADError
from triad_eval.adapters.huggingface import prompt_inputs
from triad_eval.api import Request
from triad_train.examples import Example

IGNORE = -100
"""The label of a token that carries no loss (prompt and padding)."""

PromptFn = Callable[[Request], tuple]
_MARK = "\x00answer\x00"


def completion_text(processor, messages: list[dict], answer: str) -> str:
    """What follows the evaluation prompt when the model answers ``answer``: the answer and the
    end of the turn as the chat template renders them (``"B<|im_end|>\\n"`` for Qwen's template).

    Usually the prompt with its generation prompt is a prefix of the conversation with the
    answer, and the completion is the rest. Some templates open the assistant's turn
    differently in a full conversation than in the generation prompt (LLaVA-OneVision's:
    ``"<|im_start|>assistant \\n"`` against ``"<|im_start|>assistant\\n"``); the completion is then
    the answer and what the template puts after it, so that training continues exactly the
    prompt evaluation sends.

    Raises:
        InstructIADError: a template whose rendering of the earlier turns changes once the
            answer follows, or that does not render the answer as given.
    """
    turns = processor.apply_chat_template(messages, tokenize=False)
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    turn = {"role": "assistant", "content": [{"type": "text", "text": answer}]}
    full = processor.apply_chat_template([*messages, turn], tokenize=False)
    if not (prompt.startswith(turns) and full.startswith(turns)):
        raise InstructIADError(
            "the model's chat template renders the prompt differently when an answer follows it; "
            "the prompt cannot be masked exactly"
        )
    opening, answered = prompt[len(turns) :], full[len(turns) :]
    if answered.startswith(opening):
        return answered[len(opening) :]
    # what the template writes after the answer, found after a marker that cannot occur in it
    marked = processor.apply_chat_template([*messages, {**turn, "content": [{"type": "text", "text": _MARK}]}],
                                           tokenize=False)  # fmt: skip
    if marked.replace(_MARK, answer) != full:
        raise InstructIADError("the model's chat template does not render the answer as given")
    return answer + marked[marked.index(_MARK) + len(_MARK) :]


class Collator:
    """Turns rows ``{"example": i}`` into model inputs with ``labels``.

    Args:
        processor: the model's processor (its tokenizer pads on the left for the prompt, as in
            evaluation).
        examples: the run's examples; rows name them by index.
        prompt: the adapter's prompt function (``chat_prompt`` for ``hf:``, ``triad_prompt``
            for ``triad:``).
    """

    def __init__(self, processor, examples: Sequence[Example], prompt: PromptFn) -> None:
        self.processor, self.examples, self.prompt = processor, examples, prompt
        tokenizer = processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = tokenizer.pad_token_id

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        examples = [self.examples[row["example"]] for row in rows]
        prompts = [self.prompt(example.request) for example in examples]
        inputs = prompt_inputs(self.processor, prompts)
        pairs = zip(prompts, examples, strict=True)
        completions = [completion_text(self.processor, prompt[0], example.completion) for prompt, example in pairs]
        completion_ids = self.processor.tokenizer(completions, add_special_tokens=False)["input_ids"]
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        per_token = [k for k, v in inputs.items() if hasattr(v, "shape") and tuple(v.shape) == tuple(ids.shape)]
        rows_out: dict[str, list[list[int]]] = {key: [] for key in [*per_token, "labels"]}
        for row, completion in enumerate(completion_ids):
            kept = mask[row].bool()  # the prompt's own tokens, left padding dropped
            for key in per_token:
                values = inputs[key][row][kept].tolist()
                fill = completion if key == "input_ids" else [1 if key == "attention_mask" else 0] * len(completion)
                rows_out[key].append(values + list(fill))
            rows_out["labels"].append([IGNORE] * int(kept.sum()) + list(completion))
        width = max(len(values) for values in rows_out["labels"])
        pads = {"input_ids": self.pad_id, "labels": IGNORE}
        batch = {key: value for key, value in inputs.items() if key not in per_token}
        for key, values in rows_out.items():
            pad = pads.get(key, 0)
            dtype = inputs[key].dtype if key in inputs else torch.long
            batch[key] = torch.tensor([v + [pad] * (width - len(v)) for v in values], dtype=dtype)
        return batch

    def check(self) -> None:
        """Build the first batch of one example (the template, the processor and the model's
        inputs are checked before anything is written)."""
        self([{"example": 0}])
