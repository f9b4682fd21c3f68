"""The response cache: SQLite in WAL mode, one row per successful response, written as it arrives.

A run killed at any moment (even ``kill -9``) keeps every response already written; ``--resume``
reads them back and sends only the rest. Failed requests are not cached, so a resumed run
retries them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from instructiad.errors import InstructIADError
from triad_eval.api import ModelAdapter, Request, Response

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT, probs TEXT, latency_s REAL)"


def cache_key(adapter: ModelAdapter, scoring: str, request: Request, params: dict | None = None) -> str:
    """sha256 over the model spec, its parameters, the scoring mode and the prompt (images by hash).

    ``params`` is ``adapter.cache_params()`` when the caller has it already (a run computes it
    once: for some adapters it is costly).

    A prompt without images (``no_image``) no longer tells its record apart from another with the
    same question, so its key also takes the record id: one response per request, as with images.
    """
    material = {
        "model": adapter.spec,
        "params": adapter.cache_params() if params is None else params,
        "scoring": scoring,
        "prompt": request.prompt_json(),
    }
    if not request.images:
        material["record"] = request.id
    text = json.dumps(material, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class ResponseCache:
    """Responses by cache key, in ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each put is durable
        except sqlite3.Error as error:
            raise self._unusable(error) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as error:
            self._db.close()
            raise self._unusable(error) from None

    def _unusable(self, error: sqlite3.Error) -> InstructIADError:
        """A one-line error for a cache SQLite cannot use: damaged, or out of reach."""
        if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
            return InstructIADError(
                f"{self.path}: the response cache is damaged ({error}); to start over, delete it "
                f"(every request is sent again) or remove the run folder {self.path.parent}"
            )
        return InstructIADError(f"{self.path}: cannot use the response cache ({error})")

    def get_many(self, keys: list[str]) -> dict[str, Response]:
        """The cached responses among ``keys``."""
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            query = f"SELECT key, text, probs, latency_s FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
            try:
                rows = self._db.execute(query, chunk).fetchall()
            except sqlite3.Error as error:
                raise self._unusable(error) from None
            for key, text, probs, latency in rows:
                if text is not None and not isinstance(text, str):
                    continue  # not an answer this code wrote: ask again rather than score it
                found[key] = Response(text=text, probs=json.loads(probs) if probs else None, latency_s=latency)
        return found

    def put_many(self, items: list[tuple[str, Response]]) -> None:
        """Store successful responses (one transaction); failed ones are skipped.

        Raises:
            TypeError: a response's text is neither a string nor ``None`` (nothing is stored).
        """
        for key, response in items:
            if response.text is not None and not isinstance(response.text, str):
                raise TypeError(f"response {key}: text must be a string or None, not {type(response.text).__name__}")
        rows = [
            (key, r.text, json.dumps(r.probs, sort_keys=True) if r.probs is not None else None, r.latency_s)
            for key, r in items
            if not r.failed
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?)", rows)

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
