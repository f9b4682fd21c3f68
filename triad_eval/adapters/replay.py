"""`replay:<file>`: answers read from a predictions file (imports from other harnesses, tests).

The file is JSON lines, one per request: ``{"id", "task", "condition", "raw"}`` with
optional ``"probs"`` (letter -> probability), or ``"error"`` for a request that failed there.
A ``predictions.jsonl`` of an earlier run is such a file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from instructiad.errors import InstructIADError
from triad_eval.api import ModelAdapter, Request, Response


class Replay(ModelAdapter):
    """Replays a predictions file. Duplicate predictions, ids the dataset does not have, or
    questions the run does not ask about a record it evaluates are errors; predictions for
    records the run leaves to other shards (``--shard``) are not used."""

    supports_scores = True

    def __init__(self, spec: str, path: str) -> None:
        super().__init__(spec)
        self.path = Path(path).expanduser()
        self.answers: dict[tuple[str, str, str], dict] = {}
        self.record_ids: set[str] | None = None
        try:
            content = self.path.read_bytes()
            lines = content.decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise InstructIADError(f"{self.path}: cannot read the predictions file ({error})") from None
        self._sha256 = hashlib.sha256(content).hexdigest()  # of what was read, once (keys of every request use it)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = (entry["id"], entry["task"], entry["condition"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InstructIADError(f"{self.path}:{number}: not a JSON object with id, task and condition") from None
            if key in self.answers:
                raise InstructIADError(f"{self.path}:{number}: duplicate prediction for {' / '.join(key)}")
            self.answers[key] = entry

    def cache_params(self) -> dict:
        return {"file_sha256": self._sha256}

    def bind(self, data) -> None:
        self.record_ids = set(data.records.column("id"))

    def prepare(self, asked: list[tuple[str, str, str]]) -> None:
        keys, asked = set(asked), {record_id for record_id, _, _ in asked}
        known = self.record_ids if self.record_ids is not None else asked
        # a record this run does not evaluate (another shard's) is fine if the dataset has it
        unknown = {k for k in self.answers if k not in keys and (k[0] in asked or k[0] not in known)}
        if unknown:
            example = " / ".join(sorted(unknown)[0])
            raise InstructIADError(
                f"{self.path}: {len(unknown)} prediction(s) for requests this evaluation does not have (e.g. {example})"
            )

    def _response(self, request: Request) -> Response:
        entry = self.answers.get(request.key)
        if entry is None:
            return Response(error="no prediction in the replay file")
        if entry.get("error") or entry.get("status") == "failed":
            return Response(error=str(entry.get("error") or "failed in the replayed run"))
        return Response(text=entry.get("raw"), probs=entry.get("probs"), latency_s=float(entry.get("latency_s") or 0.0))

    def generate(self, requests: list[Request]) -> list[Response]:
        return [self._response(r) for r in requests]

    def score_options(self, requests: list[Request]) -> list[Response]:
        return [self._response(r) for r in requests]
