"""``key=value`` settings from the command line: ``--model-args``, ``--expert-args`` and
``--source-args`` are all read by these two functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from instructiad.errors import InstructIADError


def parse_key_values(text: str | None, flag: str = "--model-args") -> dict[str, str]:
    """``"seed=3,latency_ms=5"`` -> ``{"seed": "3", "latency_ms": "5"}``; ``flag`` names the
    option in errors."""
    values = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InstructIADError(f"{flag}: {item!r} is not key=value")
        values[key.strip()] = value.strip()
    return values


def convert(values: dict[str, str], types: dict[str, Callable[[str], Any]], where: str) -> dict[str, Any]:
    """``values`` converted by ``types`` (name -> converter), in the order given.

    Args:
        values: settings as text, from :func:`parse_key_values`.
        types: the settings the receiver takes.
        where: the option and its receiver for errors, e.g. ``"--model-args: chance"``.

    Raises:
        InstructIADError: a setting the receiver does not take, or a value its converter refuses.
    """
    unknown = [name for name in values if name not in types]
    if unknown:
        known = ", ".join(types) or "none"
        raise InstructIADError(f"{where} takes no setting {unknown[0]!r} (known: {known})")
    try:
        return {name: types[name](value) for name, value in values.items()}
    except ValueError as error:
        raise InstructIADError(f"{where}: {error}") from None


def boolean(text: str) -> bool:
    """``true``/``yes``/``1`` or ``false``/``no``/``0`` (any case)."""
    word = text.strip().lower()
    if word not in ("1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"{text!r} is not true or false")
    return word in ("1", "true", "yes")
