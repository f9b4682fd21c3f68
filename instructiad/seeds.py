"""Seeds derived from record ids: the same id gives the same choices on every machine."""

from __future__ import annotations

import hashlib
import random


def seed_for(key: str) -> int:
    """A 64-bit seed derived from a string key (a record id, plus a purpose)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")


def rng_for(key: str) -> random.Random:
    """A private random generator seeded from ``key``; never the global random state."""
    return random.Random(seed_for(key))
