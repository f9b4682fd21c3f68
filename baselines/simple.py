"""Baselines without a model: chance, majority and always-the-same-letter."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from instructiad.errors import InstructIADError
from instructiad.seeds import rng_for
from triad_eval.api import ModelAdapter, Request, Response


class Chance(ModelAdapter):
    """Picks an option uniformly at random, seeded per request: the floor every model must beat.

    ``latency_ms`` simulates a model's latency (for exercising the harness).
    """

    ARGS: ClassVar[dict] = {"seed": int, "latency_ms": float}
    supports_scores = True

    def __init__(self, spec: str, seed: int = 0, latency_ms: float = 0.0) -> None:
        super().__init__(spec)
        self.seed, self.latency_ms = int(seed), float(latency_ms)

    @classmethod
    def create(cls, spec: str, value: str, args: dict, *, seed: int, concurrency: int) -> Chance:
        return cls(spec, **({"seed": seed} | args))  # the run's --seed unless seed= is given

    def cache_params(self) -> dict:
        return {"seed": self.seed}

    def _rng(self, request: Request, purpose: str):
        return rng_for(f"{self.seed}/{request.id}/{request.task}/{request.condition}/{purpose}")

    def _wait(self) -> None:
        if self.latency_ms:
            import time

            time.sleep(self.latency_ms / 1000)

    def generate(self, requests: list[Request]) -> list[Response]:
        responses = []
        for request in requests:
            self._wait()
            letters = sorted(request.options)
            responses.append(Response(text=letters[self._rng(request, "pick").randrange(len(letters))]))
        return responses

    def score_options(self, requests: list[Request]) -> list[Response]:
        responses = []
        for request in requests:
            self._wait()
            rng = self._rng(request, "scores")
            weights = {letter: rng.random() for letter in sorted(request.options)}
            total = sum(weights.values())
            responses.append(Response(probs={k: v / total for k, v in weights.items()}))
        return responses


class Majority(ModelAdapter):
    """Answers, for each task, the option text most often correct among the evaluated items
    (a prior baseline: it knows the answer distribution, not the images)."""

    def bind(self, data) -> None:
        self.data = data

    def prepare(self, asked: list[tuple[str, str, str]]) -> None:
        questions = dict(zip(self.data.records.column("id"), self.data.records.column("questions"), strict=True))
        counts: dict[str, Counter] = {}
        for record_id, task, _ in asked:
            question = next(q for q in questions[record_id] if q["type"] == task)
            text = next(o["text"] for o in question["options"] if o["letter"] == question["answer"])
            counts.setdefault(task, Counter())[text] += 1
        self.majority = {task: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for task, c in counts.items()}

    def cache_params(self) -> dict:
        return {"majority": dict(sorted(self.majority.items()))}

    def generate(self, requests: list[Request]) -> list[Response]:
        responses = []
        for request in requests:
            text = self.majority.get(request.task)
            letter = next((k for k, v in sorted(request.options.items()) if v == text), sorted(request.options)[0])
            responses.append(Response(text=letter))
        return responses


class Always(ModelAdapter):
    """Always answers the same letter (``always:B``)."""

    def __init__(self, spec: str, letter: str) -> None:
        super().__init__(spec)
        if len(letter) != 1 or not letter.isalpha():
            raise InstructIADError(f"model spec {spec!r}: always:<letter> takes one option letter, e.g. always:B")
        self.letter = letter.upper()

    def generate(self, requests: list[Request]) -> list[Response]:
        return [Response(text=self.letter) for _ in requests]
