"""A user's own product line in an MVTec-like layout.

``<root>/<category>/<split>/<good|ok|normal or defect>/<image>``, split one of train,
validation, test; masks, when the category has a ``ground_truth`` folder, in
``ground_truth/<defect>/<stem>_mask.png`` or ``<stem>.png`` (then every anomalous image needs
one). A root that itself holds ``train/`` or ``test/`` is read as one category named after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from instructiad.card_metadata import Licence
from instructiad.errors import InstructIADError, OnBadFile, raise_bad_file
from instructiad.sample import Sample
from instructiad.sources import mvtec_like
from instructiad.sources.files import subfolders
from instructiad.sources.registry import Reader

NORMAL_FOLDERS = ("good", "ok", "normal")


def _categories(root: Path) -> list[Path]:
    if (root / "train").is_dir() or (root / "test").is_dir():
        return [root]
    return mvtec_like.category_folders(root)


def looks_like(root: Path) -> bool:
    """A category folder (or the root itself) with a ``train`` or ``test`` folder."""
    return bool(_categories(root))


def iter_samples(
    root: Path,
    on_bad: OnBadFile = raise_bad_file,
    license: str | None = None,
    license_name: str | None = None,
    license_link: str | None = None,
) -> Iterator[Sample]:
    """Samples of each category; masks are required only where ``ground_truth`` exists.

    Every sub-folder of the root is a category: one without images stops the build. The
    licence options say what the dataset card states for these images (checked before the
    first image is read; the card reads them from the build's options).
    """
    options = {"license": license, "license_name": license_name, "license_link": license_link}
    problems = Licence.of(READER.license, {k: v for k, v in options.items() if v is not None}).problems()
    if problems:
        raise InstructIADError(f"--source-args folder: {problems[0]}")
    single = _categories(root) == [root]
    yield from mvtec_like.iter_samples(
        root.parent if single else root,
        "folder",
        on_bad=on_bad,
        require_masks=None,
        normal_folders=NORMAL_FOLDERS,
        categories=[root] if single else subfolders(root),
        source_root=root,
    )


READER = Reader(
    name="folder",
    description="A user's own product line in an MVTec-like folder layout",
    license="unknown",
    homepage="",
    expected="<category>/{train,test}/{good,<defect>}/<image> with optional <category>/ground_truth/<defect>/",
    looks_like=looks_like,
    iter_samples=iter_samples,
    options={
        "license": "the images' Hub licence id, e.g. cc-by-4.0, or other (default: unknown)",
        "license_name": "with license=other: a slug naming it, e.g. acme-inspection-data-1.0",
        "license_link": "with license=other: a URL to its text",
    },
)
