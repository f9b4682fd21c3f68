"""The contracts between the harness and what plugs into it: requests, responses, model
adapters and the sources of the expert condition's anomaly maps.

This module imports nothing else of the package (and nothing heavier than the standard
library), so a model adapter or an expert written outside the package depends on these types
only. The harness builds :class:`Request` objects (:mod:`triad_eval.requests`), an adapter
answers them with :class:`Response` objects, and the runner caches, parses and scores those.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:  # for annotations only: importing them would pull in numpy and the dataset reader
    from instructiad.roi import Regions
    from triad_eval.data import EvalDataset


@dataclass(frozen=True)
class ImageRef:
    """An image as requests carry it: its sha256 (what prompts and cache keys see) and bytes."""

    sha256: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class Request:
    """One question to one model under one condition.

    Attributes:
        id: the record id; with ``task`` and ``condition`` it names the request.
        index: the record's position in its split (shards merge back into this order).
        task: the question type (one of :data:`cot_m.QUESTION_TYPES`).
        condition: the canonical condition name (``process+one_shot``).
        category: the record's product category.
        label: ``"normal"`` or ``"anomaly"``.
        messages: chat messages; content parts are ``{"type": "text", "text"}`` or
            ``{"type": "image", "image": ImageRef}`` (none under ``no_image``); parts that
            present the expert's regions carry ``"roi": True``.
        options: letter -> option text.
        answer: the correct letter.
        notes: what the conditions recorded about how they served the record.
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


@dataclass(frozen=True, slots=True)
class Response:
    """What a model returned for one request.

    Attributes:
        text: the raw output (``None`` when the request failed or was scored by options).
        probs: letter -> probability, where the model gives them (else ``None``).
        error: why the request failed (error, timeout); a failed request is never scored.
        latency_s: seconds the model took.
    """

    text: str | None = None
    probs: dict[str, float] | None = None
    error: str | None = None
    latency_s: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


class ModelAdapter(ABC):
    """A model the harness can query.

    Subclasses implement :meth:`generate` and, where the model can, :meth:`score_options`
    (then set ``supports_scores = True``). Both take a batch of requests and return one
    :class:`Response` per request, in order; a request that fails gets ``Response(error=...)``
    rather than raising, so one bad request never sinks a run.

    An adapter is registered in :data:`triad_eval.registry.ADAPTERS` under a spec
    prefix (``hf:``); ``--model-args`` reach it through :attr:`ARGS` and :meth:`create`.
    """

    ARGS: ClassVar[dict[str, Callable[[str], Any]]] = {}
    """The ``--model-args`` the adapter takes: name -> converter from the text given."""
    supports_scores: bool = False
    supported_tasks: tuple[str, ...] | None = None
    """Question types the model can answer (``None``: all); others are not asked."""
    needs_image: bool = False
    """The model cannot answer from the text alone (vision experts, Triad): `triad eval` refuses
    conditions that remove the images (``no_image``) rather than score answers it never gave."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @classmethod
    def arguments(cls, value: str) -> dict[str, Callable[[str], Any]]:
        """The ``--model-args`` of the model ``value`` names (``hf:<value>``); :attr:`ARGS` unless
        they depend on it."""
        return cls.ARGS

    @classmethod
    def create(cls, spec: str, value: str, args: dict[str, Any], *, seed: int, concurrency: int) -> ModelAdapter:
        """The adapter for ``spec``: ``value`` is what follows the prefix (``""`` for bare names),
        ``args`` the ``--model-args`` already converted, ``seed`` the run's seed and
        ``concurrency`` the parallel requests allowed. Override where the constructor differs."""
        return cls(spec, value, **args) if value else cls(spec, **args)

    def cache_params(self) -> dict:
        """Everything besides the prompt that changes the output (generation parameters,
        seeds, model revision); it is part of each response's cache key."""
        return {}

    def bind(self, data: EvalDataset) -> None:  # noqa: B027 - optional hook
        """Called once with the evaluated dataset (experts fit on its training images)."""

    def prepare(self, asked: list[tuple[str, str, str]]) -> None:  # noqa: B027 - optional hook
        """Called once, after :meth:`bind` and before any request is made, with the
        ``(record id, task, condition)`` of every request the run may send (:attr:`Request.key`).
        A run makes its requests as it goes, so this is all an adapter learns of them up front."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Response]:
        """Free-text answers, one per request."""

    def score_options(self, requests: list[Request]) -> list[Response]:
        """Option probabilities, one dict per request (only where ``supports_scores``)."""
        raise NotImplementedError(f"{self.spec} cannot score options; use --scoring generate")

    def run_batch(self, requests: list[Request], scoring: str, on_response: Callable[[int, Response], None]) -> None:
        """Answer ``requests`` and hand each response to ``on_response(index, response)``.

        The default calls :meth:`generate` or :meth:`score_options` on the whole batch;
        adapters that answer requests one by one (APIs) override it to report each response
        the moment it arrives, so the cache holds it even if the run is killed right after.
        """
        answers = self.generate(requests) if scoring == "generate" else self.score_options(requests)
        for index, answer in enumerate(answers):
            on_response(index, answer)

    def usage_report(self) -> dict[str, int]:
        """Resources used so far (API tokens, requests, retries); written to the run's usage.json."""
        return dict(getattr(self, "usage", {}))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model (GPU memory, HTTP clients)."""


class ExpertSource(Protocol):
    """Where the expert condition's anomaly maps come from (a folder of maps, a fitted expert).

    Attributes:
        spec: how the user named it (``maps:<folder>``, ``padim``); recorded in each prediction.
    """

    spec: str

    def prepare(self, data: EvalDataset, record_ids: list[str]) -> None:
        """Called once before any request is built, with the records the run evaluates."""

    def regions(self, record_id: str, image_size: tuple[int, int]) -> Regions:
        """The regions of interest of one record's image (``image_size`` = (width, height))."""

    def describe(self) -> dict:
        """The settings a run's config.json records."""
