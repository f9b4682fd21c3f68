"""`replay:<file>`: answers read from another run or another tool (imports, tests).

The file's format is detected, or named with ``--model-args format=<name>``: ``jsonl`` (the
harness's own ``{"id", "task", "condition", "raw"}`` lines, e.g. a run's ``predictions.jsonl``),
``lmms`` (lmms-eval ``--log_samples`` output), ``vlmevalkit`` (VLMEvalKit's prediction file),
``mmad`` (MMAD's answers file); :data:`triad_eval.interop.FORMATS` holds them. A format whose rows
must be mapped to record ids with the dataset is read when the run binds the dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from instructiad.errors import InstructIADError
from triad_eval.api import ModelAdapter, Request, Response


def _format_name(text: str) -> str:
    from triad_eval.interop import FORMATS

    if text not in FORMATS:
        raise ValueError(f"unknown format {text!r} (known: {', '.join(sorted(FORMATS))})")
    return text


class Replay(ModelAdapter):
    """Replays an answers file. Duplicate predictions, ids the dataset does not have, or
    questions the run does not ask about a record it evaluates are errors; predictions for
    records the run leaves to other shards (``--shard``) are not used."""

    ARGS: ClassVar[dict[str, Callable[[str], Any]]] = {"format": _format_name}
    supports_scores = True

    def __init__(self, spec: str, path: str, format: str | None = None) -> None:
        from triad_eval.interop import answer_format, detect_format

        super().__init__(spec)
        self.path = Path(path).expanduser()
        self._sha256 = _sha256(self.path)  # of what is read, once (keys of every request use it)
        self.format = format or detect_format(self.path)
        self._reader = answer_format(self.format)
        self.answers: dict[tuple[str, str, str], Response] | None = None
        self.record_ids: set[str] | None = None
        if not getattr(self._reader, "NEEDS_DATA", True):
            self._keep(self._reader.read(self.path, None))

    def _keep(self, entries: Iterable[dict]) -> None:
        answers: dict[tuple[str, str, str], Response] = {}
        for entry in entries:
            key = (entry["id"], entry["task"], entry["condition"])
            if key in answers:  # readers name the row (``line`` where they read one line at a time)
                where = f"{self.path}:{entry['line']}" if "line" in entry else str(self.path)
                raise InstructIADError(f"{where}: duplicate prediction for {' / '.join(key)}")
            answers[key] = _response(entry)  # small: a run may replay hundreds of thousands
        self.answers = answers

    def cache_params(self) -> dict:
        return {"file_sha256": self._sha256}

    def bind(self, data) -> None:
        from triad_eval.interop.answers import record_ids

        self.record_ids = record_ids(data)
        if self.answers is None:
            self._keep(self._reader.read(self.path, data))

    def prepare(self, asked: list[tuple[str, str, str]]) -> None:
        if self.answers is None:
            raise InstructIADError(f"{self.path}: a {self.format} file is read with the dataset (bind it first)")
        keys = set(asked)
        evaluated = {record_id for record_id, _, _ in keys}
        known = self.record_ids if self.record_ids is not None else evaluated
        # a record this run does not evaluate (another shard's) is fine if the dataset has it
        unknown = {k for k in self.answers if k not in keys and (k[0] in evaluated or k[0] not in known)}
        if unknown:
            example = " / ".join(sorted(unknown)[0])
            raise InstructIADError(
                f"{self.path}: {len(unknown)} prediction(s) for requests this evaluation does not have (e.g. {example})"
            )

    def _response(self, request: Request) -> Response:
        response = (self.answers or {}).get(request.key)
        return response if response is not None else Response(error="no prediction in the replay file")

    def generate(self, requests: list[Request]) -> list[Response]:
        return [self._response(r) for r in requests]

    def score_options(self, requests: list[Request]) -> list[Response]:
        return [self._response(r) for r in requests]


def _sha256(path: Path) -> str:
    """The sha256 of a file, or of a folder's files (relative names and bytes, in sorted order)."""
    digest = hashlib.sha256()
    try:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(file.relative_to(path).as_posix().encode() + b"\0")
                digest.update(hashlib.sha256(file.read_bytes()).digest())
            return digest.hexdigest()
        digest.update(path.read_bytes())
    except OSError as error:
        raise InstructIADError(f"{path}: cannot read the predictions file ({error})") from None
    return digest.hexdigest()


def _response(entry: dict) -> Response:
    """The response an answer entry records."""
    if entry.get("error") or entry.get("status") == "failed":
        return Response(error=str(entry.get("error") or "failed in the replayed run"))
    return Response(text=entry.get("raw"), probs=entry.get("probs"), latency_s=float(entry.get("latency_s") or 0.0))
