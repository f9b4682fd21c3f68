"""VisA: 12 categories, in the raw release layout or the prepared "1cls" layout.

Raw release: ``<root>/split_csv/1cls.csv`` (``object,split,label,image,mask``) lists every
image; anomaly masks hold defect class ids as pixel values (the release's ``id2class``
table, :data:`DEFECT_CLASSES`), several per image possible. They are decoded to defect
names here.

Prepared layout (anomalib, MMAD): ``<category>/train/good``, ``test/good``, ``test/bad``,
``ground_truth/bad`` with binary masks; defect types are lost there (``"bad"``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from instructiad.errors import BadFileError, InstructIADError, OnBadFile, raise_bad_file
from instructiad.masks import read_mask
from instructiad.sample import ANOMALY, GOOD, NORMAL, Sample
from instructiad.sources import mvtec_like
from instructiad.sources.files import SPLITS, confined
from instructiad.sources.registry import Reader

SPLIT_FILE = "split_csv/1cls.csv"
CATEGORIES = (
    "candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1",
    "macaroni2", "pcb1", "pcb2", "pcb3", "pcb4", "pipe_fryum",
)  # fmt: skip

_PCB = ("Bent", "Melt", "Scratch", "Missing")
_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "candle": ("Chunk Of Wax Missing", "Damaged Corner of Packaging", "weird candle wick", "Different Colour Spot",
               "Extra Wax in Candle", "Foreign Particals on Candle", "Wax Melded out of the candle", "Other"),
    "capsules": ("Bubble", "Discolor", "Scratch", "Leak", "Misshape"),
    "cashew": ("Burnt", "Corner or Edge Breakage", "Different Colour Spot", "Middle Breakage", "Small Holes",
               "Small Scratches", "Stuck Together", "Same Colour Spot", "Other"),
    "chewinggum": ("Chunk of gum missing", "Corner Missing", "Scratches", "Similar Colour Spot", "Small Cracks",
                   "Other"),
    "fryum": ("Burnt", "Corner or Edge Breakage", "Different Colour Spot", "Fryum Stuck Together", "Middle Breakage",
              "Similar Colour Spot", "Small Scratches", "Other"),
    "macaroni1": ("Chip Around Edge And Corner", "Different Colour Spot", "Middle Breakage", "Similar Colour Spot",
                  "Small Cracks", "Small Scratches", "Other"),
    "macaroni2": ("Breakage down the middle", "Color spot similar to the Object", "Different Color spot",
                  "Small chip around edge", "Small Cracks", "Small Scratches", "Other"),
    "pcb1": _PCB,
    "pcb2": _PCB,
    "pcb3": _PCB,
    "pcb4": ("Burnt", "Scratch", "Missing", "Damage", "Extra", "Wrong Place", "Dirt"),
    "pipe_fryum": ("Burnt", "Corner And Edge Breakage", "Different Colour Spot", "Middle Breakage",
                   "Similar Colour Spot", "Small Scratches", "Stuck Together", "Small Cracks", "Other"),
}  # fmt: skip


def defect_name(class_name: str) -> str:
    """The defect name we use for a VisA class: the release's name in snake case."""
    return re.sub(r"[^a-z0-9]+", "_", class_name.lower()).strip("_")


DEFECT_CLASSES: dict[str, dict[int, str]] = {
    category: {i + 1: defect_name(name) for i, name in enumerate(names)} for category, names in _CLASS_NAMES.items()
}
"""Per category: mask pixel value (class id) -> defect name, from the release's id2class table."""


def is_raw(root: Path) -> bool:
    """The raw release carries its split file."""
    return (root / SPLIT_FILE).is_file()


def is_prepared(root: Path) -> bool:
    """The prepared layout has ``<category>/test/bad`` folders."""
    return any((c / "test" / "bad").is_dir() for c in mvtec_like.category_folders(root))


def looks_like(root: Path) -> bool:
    """Either VisA layout."""
    return is_raw(root) or is_prepared(root)


def iter_samples(root: Path, on_bad: OnBadFile = raise_bad_file) -> Iterator[Sample]:
    """Samples of either layout: category, then split (train, test), then path order."""
    if is_raw(root):
        yield from _iter_raw(root, on_bad)
    else:
        yield from mvtec_like.iter_samples(root, "visa", on_bad=on_bad, require_masks=True)


def _iter_raw(root: Path, on_bad: OnBadFile) -> Iterator[Sample]:
    split_file = root / SPLIT_FILE
    try:
        with split_file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InstructIADError(f"{split_file}: cannot read split file ({error})") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if header[:5] != ["object", "split", "label", "image", "mask"]:
        raise InstructIADError(f"{split_file}: header must be object,split,label,image,mask (found {','.join(header)})")
    entries = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{split_file}:{line}"
        try:
            category, split, label, image, mask = (row + [""] * 5)[:5]
            entries.append(_raw_sample(root, where, category.strip(), split.strip(), label.strip(), image, mask))
        except BadFileError as error:
            on_bad(error)
    if not entries:
        raise InstructIADError(f"{split_file}: no images listed")
    order = {split: i for i, split in enumerate(SPLITS)}
    entries.sort(key=lambda s: (s.category, order[s.split], s.image_path))
    yield from entries


def _raw_sample(root: Path, where: str, category: str, split: str, label: str, image: str, mask: str) -> Sample:
    if category not in DEFECT_CLASSES:
        raise BadFileError(where, f"unknown VisA category {category!r}")
    if split not in ("train", "test"):
        raise BadFileError(where, f"split must be train or test, not {split!r}")
    if label not in (NORMAL, ANOMALY):
        raise BadFileError(where, f"label must be normal or anomaly, not {label!r}")
    image_path = confined(root, image.strip(), where, "image")
    prefix = f"{category}/"
    key = image_path[len(prefix) :] if image_path.startswith(prefix) else image_path
    if label == NORMAL:
        return Sample("visa", category, split, root, image_path, key, NORMAL, GOOD)
    if not mask.strip():
        raise BadFileError(where, f"anomalous image {image_path} has no mask in the split file")
    mask_path = confined(root, mask.strip(), where, "mask")
    names = _decode_defects(root / mask_path, category)
    return Sample(
        "visa", category, split, root, image_path, key, ANOMALY,
        defect_type=names[0] if len(names) == 1 else "combined",
        defect_types=names,
        mask_paths=(mask_path,),
    )  # fmt: skip


def _decode_defects(mask_file: Path, category: str) -> tuple[str, ...]:
    """Defect names of the class ids a VisA mask holds, in class-id order."""
    table = DEFECT_CLASSES[category]
    ids = [int(v) for v in np.unique(read_mask(mask_file)) if v != 0]
    if not ids:
        raise BadFileError(mask_file, "anomaly mask is empty (no defect pixels)")
    unknown = [i for i in ids if i not in table]
    if unknown:
        raise BadFileError(mask_file, f"pixel value {unknown[0]} is not a {category} defect class (1-{len(table)})")
    return tuple(table[i] for i in ids)


CITATION = """\
@inproceedings{zou2022spot,
  title     = {{SPot-the-Difference} Self-Supervised Pre-training for Anomaly Detection and Segmentation},
  author    = {Zou, Yang and Jeong, Jongheon and Pemula, Latha and Zhang, Dongqing and Dabeer, Onkar},
  booktitle = {European Conference on Computer Vision (ECCV)},
  pages     = {392--408},
  year      = {2022},
  eprint    = {2207.14315},
  archivePrefix = {arXiv}
}"""
"""The paper that publishes VisA."""

READER = Reader(
    name="visa",
    description="VisA: 12 categories of complex objects, multiple instances and PCBs (Zou et al., ECCV 2022)",
    license="cc-by-4.0",
    homepage="https://github.com/amazon-science/spot-diff",
    expected=f"{SPLIT_FILE} (raw release) or <category>/test/bad with <category>/ground_truth/bad (prepared 1cls)",
    looks_like=looks_like,
    iter_samples=iter_samples,
    defects={category: tuple(names.values()) for category, names in DEFECT_CLASSES.items()},
    citation=CITATION,
)
