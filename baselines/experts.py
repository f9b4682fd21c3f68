"""`expert:<name>`: a vision expert itself as a baseline (no language model).

The experts (:mod:`triad_eval.experts`) are the harness's; this wrapper answers questions with
one, so the leaderboard shows what the expert alone achieves.
"""

from __future__ import annotations

import numpy as np

from instructiad.masks import GRID_CELLS
from triad_eval.api import ModelAdapter, Request, Response
from triad_eval.experts import expert_class


class ExpertModel(ModelAdapter):
    """`expert:<name>`: the vision expert itself as a baseline.

    It answers discrimination by comparing its image score (the map's maximum) with a threshold
    set on held-out normal training images (the highest score among them), with probabilities
    that grow with the score (so AUROC and AP are reported), and location with the 3x3 cell of
    the map's peak. Other question types need language and are not asked.
    """

    supports_scores = True
    supported_tasks = ("discrimination", "location")
    needs_image = True  # it answers from its anomaly map of the query image

    def __init__(self, spec: str, name: str, **settings) -> None:
        super().__init__(spec)
        self.expert = expert_class(name)(settings)
        self.data = None
        self.thresholds: dict[str, tuple[float, float]] = {}

    @classmethod
    def arguments(cls, value: str) -> dict:
        """The expert's own settings: the table ``--expert <name> --expert-args`` reads too."""
        return expert_class(value).setting_types()

    def cache_params(self) -> dict:
        return {"settings": self.expert.settings, "thresholds": dict(sorted(self.thresholds.items()))}

    def bind(self, data) -> None:
        self.data = data

    def prepare(self, asked: list[tuple[str, str, str]]) -> None:
        ids = sorted({record_id for record_id, _, _ in asked})
        self.expert.prepare(self.data, ids)
        for category, references in sorted(self.data.normal_references.items()):
            images = [ref.data for _, ref in references]
            # Half the normal images fit, the other half set the threshold; with fewer than four
            # there is nothing to hold out, and the fitted images set it themselves.
            fit_on, held_out = (images[0::2], images[1::2]) if len(images) >= 4 else (images, images)
            scores = [float(np.nanmax(m)) for m in self.expert.fit_predict(fit_on, held_out)]
            spread = float(np.nanstd(scores)) or 1e-3
            self.thresholds[category] = (float(np.nanmax(scores)), spread)

    def _answer(self, request: Request) -> Response:
        scores = self.expert.maps[request.id].astype(np.float32)
        threshold, spread = self.thresholds[request.category]
        if not np.isfinite(scores).all() or not np.isfinite(threshold):
            return Response(error=f"{self.spec} gave a map with NaN (too few normal images to fit {request.category}?)")
        if request.task == "discrimination":
            p_yes = float(1 / (1 + np.exp(-(float(scores.max()) - threshold) / spread)))
            letters = {text: letter for letter, text in request.options.items()}
            text = letters["Yes"] if p_yes > 0.5 else letters["No"]
            return Response(text=text, probs={letters["Yes"]: p_yes, letters["No"]: 1 - p_yes})
        row, col = np.unravel_index(int(np.argmax(scores)), scores.shape)
        cell = GRID_CELLS[min(2, 3 * row // scores.shape[0])][min(2, 3 * col // scores.shape[1])]
        letter = next((k for k, v in request.options.items() if v == cell), None)
        return Response(text=letter or "none of the options")

    def generate(self, requests: list[Request]) -> list[Response]:
        return [self._answer(r) for r in requests]

    def score_options(self, requests: list[Request]) -> list[Response]:
        return [
            Response(probs=self._answer(r).probs) if r.task == "discrimination" else self._answer(r) for r in requests
        ]
