"""Answer parsing: from a model's free text to one option letter, or ``None`` (unparsed).

Handles the forms models actually produce: ``"B"``, ``"B."``, ``"(B)"``, ``"**B**"``,
``"The answer is B"``, ``"answer: b"``, ``"Option B: Yes"``, the option's text instead of
its letter, answers after a ``<think>...</think>`` block, and an answer repeated in a final
line. An answer naming two different options, or none, is unparsed: it is never guessed.
"""

from __future__ import annotations

import re

_THINKING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_UNCLOSED_THINKING = re.compile(r"^.*</(think|thinking|reasoning)>", re.IGNORECASE | re.DOTALL)
_MARKUP = re.compile(r"[*_`#>]+")
_EXPLICIT = re.compile(
    r"(?:final answer|correct answer|the answer|answer|option|choice|my choice|i choose|i pick|i select"
    r"|i'd say|i would say|i'll go with|go with)"
    r"\s*(?:is|would be|:|=|-)?\s*(?:option\s*|choice\s*)?[\(\[]?\s*([A-Z])\s*[\)\]]?(?![A-Za-z])",
    re.IGNORECASE,
)
_LEADING = re.compile(r"^\s*[\(\[]?\s*([A-Z])\s*(?:[\)\]\.:,]|$|\s)", re.IGNORECASE)
_STANDALONE = re.compile(r"(?<![A-Za-z'’])[\(\[]?([A-Z])[\)\]]?(?![A-Za-z'’])")


def strip_thinking(text: str) -> str:
    """The text after any thinking block (``<think>...</think>`` and the like)."""
    text = _THINKING.sub(" ", text)
    return _UNCLOSED_THINKING.sub(" ", text)


def parse_answer(text: str | None, options: dict[str, str]) -> str | None:
    """The option letter ``text`` answers with, or ``None`` when it cannot be told.

    Args:
        text: the model's raw output.
        options: letter -> option text, e.g. ``{"A": "Yes", "B": "No"}``.

    Returns:
        One of ``options``' letters, or ``None`` (unparsed: scored as wrong and counted).

    Raises:
        TypeError: ``text`` is neither a string nor ``None`` (an adapter's bug, not an answer).
    """
    if text is not None and not isinstance(text, str):
        raise TypeError(f"an answer must be a string or None, not {type(text).__name__}")
    if not text:
        return None
    letters = {letter.upper() for letter in options}
    body = _MARKUP.sub("", strip_thinking(text)).strip()
    if not body:
        return None

    found = _letters(_EXPLICIT.findall(body), letters)
    if found:
        return found[-1]  # "A is tempting, but the answer is B" -> B
    first_line = body.splitlines()[0]
    leading = _LEADING.match(first_line)
    if leading and leading.group(1).upper() in letters:
        letter = leading.group(1).upper()
        others = set(_letters(_STANDALONE.findall(first_line), letters, lone_only=True)) - {letter}
        if not others and _consistent(body, letter, letters):  # "A or B" names two options
            return letter
    by_text = _by_option_text(body, options)
    if by_text:
        return by_text
    standalone = set(_letters(_STANDALONE.findall(body), letters, lone_only=True))
    if len(standalone) == 1:
        return standalone.pop()
    return None


def _letters(candidates: list[str], letters: set[str], lone_only: bool = False) -> list[str]:
    found = []
    for candidate in candidates:
        if candidate.upper() not in letters:
            continue
        if lone_only and candidate.islower():  # a lone lower-case "a" is the article, not option A
            continue
        found.append(candidate.upper())
    return found


def _consistent(body: str, letter: str, letters: set[str]) -> bool:
    """A leading letter counts unless the text goes on to name another option explicitly."""
    explicit = _letters(_EXPLICIT.findall(body), letters)
    return not explicit or explicit[-1] == letter


def _by_option_text(body: str, options: dict[str, str]) -> str | None:
    """The one option whose text the answer is (or contains as a phrase)."""
    normalized = _normalize(body)
    exact = [letter for letter, text in options.items() if _normalize(text) == normalized]
    if len(exact) == 1:
        return exact[0].upper()
    contained = [
        letter
        for letter, text in options.items()
        if _normalize(text) and re.search(rf"(?<![a-z0-9]){re.escape(_normalize(text))}(?![a-z0-9])", normalized)
    ]
    # Drop options whose text is part of another matched option's text ("No" inside "No defect").
    longest = [
        a for a in contained if not any(a != b and _normalize(options[a]) in _normalize(options[b]) for b in contained)
    ]
    return longest[0].upper() if len(longest) == 1 else None


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())
