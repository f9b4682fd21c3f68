"""What every source reader provides."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from instructiad.errors import InstructIADError, OnBadFile
from instructiad.sample import Sample


@dataclass(frozen=True)
class Reader:
    """A source reader: how to recognise a layout on disk and read its samples.

    Attributes:
        name: the source name, used as the dataset config name (e.g. ``"mvtec_ad"``).
        description: one line for the dataset card.
        license: the Hub's licence id of the source's images (``instructiad.card_metadata.LICENSES``),
            for the dataset card.
        homepage: where users obtain the source.
        expected: the layout in a few words, quoted in "matches no reader" errors.
        looks_like: ``looks_like(root) -> bool``, a cheap check of the layout.
        iter_samples: ``iter_samples(root, on_bad) -> Iterator[Sample]`` in a deterministic
            order (category, split, then path).
        defects: category -> every defect name the reader can emit for it (what process
            annotations must cover); empty for layouts whose categories are the user's own.
        options: keyword options ``iter_samples`` takes (``triad build --source-args``),
            name -> what it chooses, for error messages and ``--help``.
        citation: BibTeX of the paper(s) that publish the source, for the dataset card
            (empty for sources nobody published).
    """

    name: str
    description: str
    license: str
    homepage: str
    expected: str
    looks_like: Callable[[Path], bool]
    iter_samples: Callable[[Path, OnBadFile], Iterator[Sample]]
    defects: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    citation: str = ""

    def check_options(self, options: Mapping[str, str]) -> None:
        """Raise naming the first option this reader does not take (and those it does)."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise InstructIADError(f"--source-args {self.name}: unknown option {unknown[0]!r} (known: {known})")
