"""The registry of what plugs into the harness: model adapters (``--model``) and fitted
vision experts (``--expert``, ``--model expert:<name>``).

An entry names its class as ``"module:object"``, imported only when a run asks for it (the way
lm-evaluation-harness and lmms-eval register models), so listing them loads neither torch nor
an HTTP client, and the baselines package plugs in without the harness importing it.
`triad eval --help`, `triad baselines` and the unknown-spec errors are generated from
:data:`ADAPTERS` and :data:`EXPERTS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from instructiad.errors import InstructIADError
from triad_eval.api import ModelAdapter
from triad_eval.settings import convert


@dataclass(frozen=True)
class AdapterEntry:
    """One kind of model spec.

    Attributes:
        prefix: the spec (``chance``) or what comes before the colon (``hf`` of ``hf:<id>``).
        target: the adapter class as ``"module:object"``.
        value: what follows the colon, as shown in help (``<model id or folder>``); ``None``
            for a spec that takes no value.
        summary: one line for help texts.
    """

    prefix: str
    target: str
    value: str | None
    summary: str

    @property
    def pattern(self) -> str:
        return self.prefix if self.value is None else f"{self.prefix}:{self.value}"

    def load(self) -> type[ModelAdapter]:
        """The adapter class (imported now)."""
        return load_object(self.target)


EXPERTS: dict[str, str] = {
    "padim": "triad_eval.experts.anomalib_models:Padim",
    "patchcore": "triad_eval.experts.anomalib_models:Patchcore",
    "efficient_ad": "triad_eval.experts.anomalib_models:EfficientAd",
}
"""The fitted experts by name (:class:`triad_eval.experts.fitted.FittedExpert` subclasses)."""

ADAPTERS: tuple[AdapterEntry, ...] = (
    AdapterEntry("chance", "baselines.simple:Chance", None, "an option uniformly at random, seeded per request"),
    AdapterEntry("majority", "baselines.simple:Majority", None, "each task's most frequent correct option"),
    AdapterEntry("always", "baselines.simple:Always", "<letter>", "always the same option letter"),
    AdapterEntry("replay", "triad_eval.adapters.replay:Replay", "<answers file>",
                 "answers read from a file: predictions.jsonl, lmms-eval logs, VLMEvalKit, MMAD"),
    AdapterEntry("hf", "triad_eval.adapters.huggingface:HuggingFace", "<model id or folder>",
                 "an image-text-to-text model through transformers"),
    AdapterEntry("openai", "triad_eval.adapters.openai_api:OpenAICompatible", "<model>",
                 "an OpenAI-compatible chat API (OpenAI, vLLM, ...)"),
    AdapterEntry("triad", "triad_eval.adapters.triad:Triad", "<converted checkpoint folder>",
                 "Triad, region crops as region tokens"),
    AdapterEntry("expert", "baselines.experts:ExpertModel", f"<{'|'.join(EXPERTS)}>",
                 "a vision expert alone (discrimination, location)"),
)  # fmt: skip
ROSTER = "baselines.roster:ROSTER"
"""The named baselines ``baseline:<name>`` resolves (a spec and its arguments each)."""


def load_object(target: str) -> Any:
    """The object ``"module:object"`` names."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def known_specs() -> str:
    """The spec patterns, comma-separated (for help texts and errors)."""
    return ", ".join([*(entry.pattern for entry in ADAPTERS), "baseline:<name>"])


def find_entry(spec: str) -> tuple[AdapterEntry, str]:
    """The entry that handles ``spec`` and the value after its prefix.

    Raises:
        InstructIADError: no entry handles it (the message lists the known specs).
    """
    prefix, colon, value = spec.partition(":")
    for entry in ADAPTERS:
        if entry.prefix == prefix and (bool(value) if entry.value is not None else not colon):
            return entry, value
    raise InstructIADError(f"unknown model spec {spec!r} (known: {known_specs()})")


def load_adapter(
    spec: str, model_args: dict[str, str] | None = None, seed: int = 0, concurrency: int = 1
) -> ModelAdapter:
    """The adapter for ``spec`` with ``model_args`` (as text, converted by the adapter's own
    table); ``seed`` is the run's seed, ``concurrency`` bounds parallel requests of API adapters.

    Raises:
        InstructIADError: an unknown spec, or arguments it does not take.
    """
    args = dict(model_args or {})
    if spec.startswith("baseline:"):
        roster = load_object(ROSTER)
        name = spec.removeprefix("baseline:")
        if name not in roster:
            raise InstructIADError(f"unknown baseline {name!r} (known: {', '.join(roster)}; see `triad baselines`)")
        return load_adapter(roster[name].spec, roster[name].model_args | args, seed, concurrency)
    entry, value = find_entry(spec)
    adapter_class = entry.load()
    typed = convert(args, adapter_class.arguments(value), f"--model-args: {spec}")
    return adapter_class.create(spec, value, typed, seed=seed, concurrency=concurrency)
