"""The model adapter interface every model plugs into."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

from triad_eval.requests import Request


@dataclass(frozen=True)
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
    """

    supports_scores: bool = False
    supported_tasks: tuple[str, ...] | None = None
    """Question types the model can answer (``None``: all); others are not asked."""
    needs_image: bool = False
    """The model cannot answer from the text alone (vision experts, Triad): `triad eval` refuses
    conditions that remove the images (``no_image``) rather than score answers it never gave."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def cache_params(self) -> dict:
        """Everything besides the prompt that changes the output (generation parameters,
        seeds, model revision); it is part of each response's cache key."""
        return {}

    def bind(self, data) -> None:  # noqa: B027 - optional hook
        """Called once with the evaluated dataset (experts fit on its training images)."""

    def prepare(self, requests: list[Request]) -> None:  # noqa: B027 - optional hook
        """Called once with every request of the run before any is sent."""

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
