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

from triad_eval.adapters.base import ModelAdapter, Response
from triad_eval.requests import Request

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, text TEXT, probs TEXT, latency_s REAL)"


def cache_key(adapter: ModelAdapter, scoring: str, request: Request) -> str:
    """sha256 over the model spec, its parameters, the scoring mode and the prompt (images by hash).

    A prompt without images (``no_image``) no longer tells its record apart from another with the
    same question, so its key also takes the record id: one response per request, as with images.
    """
    material = {
        "model": adapter.spec,
        "params": adapter.cache_params(),
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
        self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each put is durable
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get_many(self, keys: list[str]) -> dict[str, Response]:
        """The cached responses among ``keys``."""
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._db.execute(
                f"SELECT key, text, probs, latency_s FROM responses WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            for key, text, probs, latency in rows:
                found[key] = Response(text=text, probs=json.loads(probs) if probs else None, latency_s=latency)
        return found

    def put_many(self, items: list[tuple[str, Response]]) -> None:
        """Store successful responses (one transaction); failed ones are skipped."""
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
