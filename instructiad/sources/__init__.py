"""Source readers: one per on-disk layout, each yielding normalized :class:`Sample` objects.

>>> from instructiad.sources import get_reader
>>> samples = list(get_reader("mvtec_ad").iter_samples(check_root("/data/mvtec_ad")))
"""

from __future__ import annotations

from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.sources import folder, mmad, mvtec_ad, mvtec_loco, real_iad, synthetic, visa
from instructiad.sources.files import check_root
from instructiad.sources.registry import Reader

READERS: dict[str, Reader] = {
    r.name: r
    for r in (
        mvtec_ad.READER,
        visa.READER,
        mvtec_loco.READER,
        real_iad.READER,
        folder.READER,
        synthetic.READER,
        mmad.READER,
    )
}
"""Every reader by name, in the order configs are listed."""

_DETECTION_ORDER = ("mmad", "synthetic", "real_iad", "visa", "mvtec_loco", "mvtec_ad", "folder")
"""Most specific layout first: an MVTec LOCO tree would also pass the generic folder check, and
an MMAD root (its ``mmad.json``) holds MVTec-like folders."""

__all__ = ["READERS", "Reader", "check_root", "detect", "get_reader", "resolve_source"]


def get_reader(name: str) -> Reader:
    """The reader called ``name``; raises with the list of known readers otherwise."""
    if name not in READERS:
        raise InstructIADError(f"unknown source {name!r} (known: {', '.join(READERS)})")
    return READERS[name]


def detect(root: Path) -> str | None:
    """The most specific reader whose layout ``root`` matches, or ``None``."""
    return next((name for name in _DETECTION_ORDER if READERS[name].looks_like(root)), None)


def resolve_source(name: str | None, root: str | Path) -> tuple[Reader, Path]:
    """Check a ``--source NAME=PATH`` pair (``NAME`` may be ``None``: detect it).

    Raises:
        InstructIADError: the root is missing or unreadable, or its layout matches no reader
            (or not the one named).
    """
    path = check_root(root)
    if name is None:
        detected = detect(path)
        if detected is None:
            raise InstructIADError(f"{path}: layout matches no reader ({', '.join(READERS)})")
        return READERS[detected], path
    reader = get_reader(name)
    if not reader.looks_like(path):
        detected = detect(path)
        hint = f"; it looks like {detected}" if detected else ""
        raise InstructIADError(f"{path}: not a {name} layout (expected {reader.expected}){hint}")
    return reader, path
