"""MVTec LOCO AD: 5 categories with logical and structural anomalies.

``<root>/<category>/{train,validation}/good/000.png``,
``<root>/<category>/test/{good,logical_anomalies,structural_anomalies}/000.png``, and one
folder of one or more masks per anomalous image:
``<root>/<category>/ground_truth/<type>/000/{000,001,...}.png`` (merged as a union by the
builder). ``<category>/defects_config.json`` maps mask pixel values to defect sub-types
(``[{"defect_name": ..., "pixel_value": ...}, ...]``); when present, sub-types are decoded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from instructiad.errors import BadFileError, InstructIADError, OnBadFile, raise_bad_file
from instructiad.masks import read_mask
from instructiad.sample import ANOMALY, GOOD, NORMAL, Sample
from instructiad.sources import mvtec_like
from instructiad.sources.files import SPLITS, images_in, inside, relative, subfolders
from instructiad.sources.registry import Reader

_LOGICAL, _STRUCTURAL = "logical", "structural"
SUB_TYPES: dict[str, dict[str, str]] = {
    "breakfast_box": {
        **dict.fromkeys((
            "missing_almonds", "missing_bananas", "missing_toppings", "missing_cereals", "missing_cereals_and_toppings",
            "nectarines_2_tangerine_1", "nectarine_1_tangerine_1", "nectarines_0_tangerines_2",
            "nectarines_0_tangerines_3", "nectarines_3_tangerines_0", "nectarines_0_tangerine_1",
            "nectarines_0_tangerines_0", "nectarines_0_tangerines_4", "compartments_swapped", "overflow", "underflow",
            "wrong_ratio",
        ), _LOGICAL),
        **dict.fromkeys(
            ("mixed_cereals", "fruit_damaged", "box_damaged", "toppings_crushed", "contamination"), _STRUCTURAL
        ),
    },
    "juice_bottle": {
        **dict.fromkeys((
            "missing_top_label", "missing_bottom_label", "swapped_labels", "misplaced_label_top",
            "misplaced_label_bottom", "empty_bottle", "wrong_fill_level_too_much", "wrong_fill_level_not_enough",
            "misplaced_fruit_icon", "missing_fruit_icon", "wrong_juice_type",
        ), _LOGICAL),
        **dict.fromkeys((
            "damaged_label", "rotated_label", "label_text_incomplete", "unknown_fruit_icon", "incomplete_fruit_icon",
            "juice_color", "contamination",
        ), _STRUCTURAL),
    },
    "pushpins": {
        **dict.fromkeys(
            ("additional_1_pushpin", "additional_2_pushpins", "missing_pushpin", "missing_separator"), _LOGICAL
        ),
        **dict.fromkeys(("front_bent", "broken", "color", "contamination"), _STRUCTURAL),
    },
    "screw_bag": {
        **dict.fromkeys((
            "screw_too_long", "screw_too_short", "screws_1_very_short", "screws_2_very_short",
            "additional_1_long_screw", "additional_1_short_screw", "additional_1_nut", "additional_2_nuts",
            "additional_1_washer", "additional_2_washers", "missing_1_long_screw", "missing_1_short_screw",
            "missing_1_nut", "missing_2_nuts", "missing_1_washer", "missing_2_washers",
        ), _LOGICAL),
        **dict.fromkeys(("bag_broken", "color", "contamination", "part_broken"), _STRUCTURAL),
    },
    "splicing_connectors": {
        **dict.fromkeys((
            "wrong_connector_type_5_2", "wrong_connector_type_5_3", "wrong_connector_type_3_2", "cable_too_short_t2",
            "cable_too_short_t3", "cable_too_short_t5", "missing_connector", "missing_connector_and_cable",
            "missing_cable", "extra_cable", "cable_color", "cable_cut", "wrong_cable_location",
        ), _LOGICAL),
        **dict.fromkeys((
            "broken_cable", "cable_not_plugged", "unknown_cable_color", "flipped_connector", "broken_connector",
            "open_lever", "color", "contamination",
        ), _STRUCTURAL),
    },
}  # fmt: skip
"""The 89 defect sub-types of the release's defects_config.json files, logical or structural.

Some copies spell a few of them differently (``screw_too_shor``, ``additional_1_nut_``,
``cable_too_short_T2``); process annotations list those spellings as aliases."""
CATEGORIES = tuple(SUB_TYPES)
ANOMALY_FOLDERS = ("logical_anomalies", "structural_anomalies")
DEFECTS_CONFIG = "defects_config.json"


def looks_like(root: Path) -> bool:
    """A category folder with a ``test/logical_anomalies`` or ``test/structural_anomalies`` folder."""
    return any(
        any((c / "test" / folder).is_dir() for folder in ANOMALY_FOLDERS) for c in mvtec_like.category_folders(root)
    )


def read_defects_config(category_dir: Path) -> dict[int, str] | None:
    """Mask pixel value -> defect sub-type, from ``defects_config.json`` (``None`` if absent)."""
    path = category_dir / DEFECTS_CONFIG
    if not path.is_file():
        return None
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return {int(e["pixel_value"]): str(e["defect_name"]) for e in entries}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError, ValueError) as error:
        raise InstructIADError(
            f"{path}: not a list of {{defect_name, pixel_value}} entries ({type(error).__name__}: {error})"
        ) from None


def iter_samples(root: Path, on_bad: OnBadFile = raise_bad_file) -> Iterator[Sample]:
    """Samples of each category (every sub-folder of ``root``): train, validation, then test,
    in path order; images and masks must not lead out of ``root`` through a symlink."""
    for category_dir in subfolders(root):
        yield from _iter_category(root, category_dir, on_bad)


def _iter_category(root: Path, category_dir: Path, on_bad: OnBadFile) -> Iterator[Sample]:
    sub_type_names = read_defects_config(category_dir)
    found = 0
    for split in SPLITS:
        if not (category_dir / split).is_dir():
            continue
        for folder in subfolders(category_dir / split):
            normal = folder.name == GOOD
            for image in images_in(folder):
                found += 1
                try:
                    inside(root, image, "image")
                except BadFileError as error:
                    on_bad(error)
                    continue
                sample = Sample(
                    "mvtec_loco", category_dir.name, split, root, relative(root, image), f"{folder.name}/{image.name}",
                    NORMAL if normal else ANOMALY, GOOD if normal else folder.name,
                    defect_types=() if normal else (folder.name,),
                )  # fmt: skip
                if normal:
                    yield sample
                    continue
                try:
                    yield _with_masks(sample, category_dir / "ground_truth" / folder.name / image.stem, sub_type_names)
                except BadFileError as error:
                    on_bad(error)
    if found == 0:
        raise InstructIADError(f"{category_dir}: empty category (no images under {'/, '.join(SPLITS)}/)")


def _with_masks(sample: Sample, mask_dir: Path, sub_type_names: dict[int, str] | None) -> Sample:
    masks = images_in(mask_dir) if mask_dir.is_dir() else []
    if not masks:
        raise BadFileError(
            sample.root / sample.image_path,
            f"anomalous image has no masks (expected {relative(sample.root, mask_dir)}/000.png)",
        )
    sub_types: tuple[str, ...] = ()
    if sub_type_names is not None:
        values = sorted({int(v) for m in masks for v in np.unique(read_mask(m)) if v != 0})
        unknown = [v for v in values if v not in sub_type_names]
        if unknown:
            raise BadFileError(mask_dir, f"mask pixel value {unknown[0]} is not in {DEFECTS_CONFIG}")
        sub_types = tuple(sorted({sub_type_names[v] for v in values}))
    return Sample(
        sample.source, sample.category, sample.split, sample.root, sample.image_path, sample.key,
        sample.label, sample.defect_type, sample.defect_types, sub_types,
        mask_paths=tuple(relative(sample.root, inside(sample.root, m, "mask")) for m in masks),
    )  # fmt: skip


CITATION = """\
@article{bergmann2022beyond,
  title   = {Beyond Dents and Scratches: Logical Constraints in Unsupervised Anomaly Detection and Localization},
  author  = {Bergmann, Paul and Batzner, Kilian and Fauser, Michael and Sattlegger, David and Steger, Carsten},
  journal = {International Journal of Computer Vision},
  volume  = {130},
  number  = {4},
  pages   = {947--969},
  year    = {2022},
  doi     = {10.1007/s11263-022-01578-9}
}"""
"""The paper that publishes MVTec LOCO AD."""

READER = Reader(
    name="mvtec_loco",
    description="MVTec LOCO AD: 5 categories with logical and structural anomalies (Bergmann et al., IJCV 2022)",
    license="cc-by-nc-sa-4.0",
    homepage="https://www.mvtec.com/company/research/datasets/mvtec-loco",
    expected="<category>/{train,validation}/good, <category>/test/{logical,structural}_anomalies, "
    "<category>/ground_truth/<type>/<stem>/000.png",
    looks_like=looks_like,
    iter_samples=iter_samples,
    defects={category: tuple(names) for category, names in SUB_TYPES.items()},
    citation=CITATION,
)
