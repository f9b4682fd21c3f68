"""Trees that mimic each real dataset layout, quirks included, drawn by the synthetic generator.

Each ``make_*`` function writes a small tree under ``root`` and returns what it wrote, so
tests can compare a reader's output with the truth.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from instructiad.seeds import seed_for
from instructiad.sources.real_iad import CATEGORY_CODES
from instructiad.sources.synthetic import render

SIZE = 64


def _draw(key: str, mode: str, defect: bool, size: int = SIZE) -> tuple[Image.Image, np.ndarray | None]:
    """An image (and a mask when ``defect``) whose look depends on ``key``."""
    category, drawn_defect = ("steel_sheet", "scratch") if mode == "L" else ("glazed_tile", "glaze_drip")
    image, mask = render(category, drawn_defect if defect else None, seed_for(key), size)
    return image, mask


def _save_mask(path: Path, mask: np.ndarray, value: int = 255) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * value, "L").save(path)


MVTEC_AD = {"bottle": ("broken_large", "contamination"), "screw": ("scratch_head", "thread_side")}


def make_mvtec_ad(root: Path, categories: dict[str, tuple[str, ...]] = MVTEC_AD, n: int = 2) -> dict:
    """MVTec AD: ``<cat>/{train/good,test/good,test/<defect>}/000.png``, masks ``000_mask.png``.

    ``screw`` (like grid and zipper) is grayscale; a licence and readme sit at the root.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "license.txt").write_text("CC BY-NC-SA 4.0\n")
    (root / "readme.txt").write_text("MVTec AD\n")
    truth = {}
    for category, defects in categories.items():
        mode = "L" if category in ("grid", "screw", "zipper") else "RGB"
        for split, folder in [("train", "good"), ("test", "good")] + [("test", d) for d in defects]:
            for i in range(n):
                path = root / category / split / folder / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image, mask = _draw(f"{category}/{split}/{folder}/{i}", mode, folder != "good")
                image.save(path)
                if mask is not None:
                    _save_mask(root / category / "ground_truth" / folder / f"{i:03d}_mask.png", mask)
                truth[path.relative_to(root).as_posix()] = (split, "normal" if folder == "good" else "anomaly", folder)
    return truth


VISA_RAW = {"candle": 8, "pcb4": 7}


def make_visa_raw(root: Path, categories: dict[str, int] = VISA_RAW) -> dict:
    """VisA raw release: ``.JPG`` images, class-id masks, ``split_csv/1cls.csv``.

    The first anomalous image of each category holds two defect classes (ids 1 and 3);
    the others hold class id 2.
    """
    rows = [["object", "split", "label", "image", "mask"]]
    truth = {}
    for category in categories:
        plan = [("train", "Normal", i) for i in range(3)] + [("test", "Normal", 3)]
        plan += [("test", "Anomaly", i) for i in range(3)]
        for split, kind, i in plan:
            image_rel = f"{category}/Data/Images/{kind}/{i:03d}.JPG"
            image, mask = _draw(f"visa/{image_rel}", "RGB", kind == "Anomaly")
            (root / image_rel).parent.mkdir(parents=True, exist_ok=True)
            image.save(root / image_rel, format="JPEG", quality=90)
            mask_rel = ""
            if kind == "Anomaly":
                mask_rel = f"{category}/Data/Masks/Anomaly/{i:03d}.png"
                ids = np.where(mask, 2, 0).astype(np.uint8)
                if i == 0:  # a second defect in the other half of the image
                    ids = np.where(mask, 1, 0).astype(np.uint8)
                    ids[-8:, -8:] = 3
                (root / mask_rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(ids, "L").save(root / mask_rel)
            label = "anomaly" if kind == "Anomaly" else "normal"
            rows.append([category, split, label, image_rel, mask_rel])
            truth[image_rel] = (split, label, mask_rel)
        (root / category / "image_anno.csv").write_text("image,label,mask\n")
    (root / "split_csv").mkdir(parents=True, exist_ok=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return truth


def make_visa_prepared(root: Path, categories: tuple[str, ...] = ("candle", "pcb1")) -> dict:
    """VisA prepared "1cls": ``train/good``, ``test/good``, ``test/bad``, ``ground_truth/bad/<stem>.png``."""
    truth = {}
    for category in categories:
        for split, folder, count in (("train", "good", 3), ("test", "good", 2), ("test", "bad", 2)):
            for i in range(count):
                path = root / category / split / folder / f"{i:04d}.JPG"
                path.parent.mkdir(parents=True, exist_ok=True)
                image, mask = _draw(f"visa_prep/{category}/{split}/{folder}/{i}", "RGB", folder == "bad")
                image.save(path, format="JPEG", quality=90)
                if mask is not None:
                    _save_mask(root / category / "ground_truth" / "bad" / f"{i:04d}.png", mask)
                truth[path.relative_to(root).as_posix()] = (split, "normal" if folder == "good" else "anomaly")
    return truth


LOCO_CONFIG = [
    {"defect_name": "missing_almonds", "pixel_value": 255, "saturation_threshold": 1.0, "relative_saturation": True},
    {"defect_name": "too_many_oranges", "pixel_value": 254, "saturation_threshold": 1.0, "relative_saturation": True},
    {"defect_name": "box_damaged", "pixel_value": 253, "saturation_threshold": 1.0, "relative_saturation": True},
]


def make_mvtec_loco(root: Path, categories: tuple[str, ...] = ("breakfast_box", "pushpins")) -> dict:
    """MVTec LOCO: train/validation/test, one mask folder per anomalous image, defects_config.json.

    Logical anomaly 000 has two masks (two sub-types) that must be merged.
    """
    truth = {}
    for category in categories:
        (root / category).mkdir(parents=True, exist_ok=True)
        (root / category / "defects_config.json").write_text(json.dumps(LOCO_CONFIG, indent=2))
        plan = [("train", "good", 3), ("validation", "good", 2), ("test", "good", 2)]
        plan += [("test", "logical_anomalies", 2), ("test", "structural_anomalies", 1)]
        for split, folder, count in plan:
            for i in range(count):
                path = root / category / split / folder / f"{i:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image, mask = _draw(f"loco/{category}/{split}/{folder}/{i}", "RGB", folder != "good")
                image.save(path)
                masks = []
                if folder == "logical_anomalies":
                    masks = [(mask, 255)]
                    if i == 0:
                        second = np.zeros_like(mask)
                        second[:6, :6] = True
                        masks.append((second, 254))
                elif folder == "structural_anomalies":
                    masks = [(mask, 253)]
                for j, (m, value) in enumerate(masks):
                    _save_mask(root / category / "ground_truth" / folder / f"{i:03d}" / f"{j:03d}.png", m, value)
                truth[path.relative_to(root).as_posix()] = (
                    split,
                    "normal" if folder == "good" else "anomaly",
                    len(masks),
                )
    return truth


def _real_iad_codes(category: str) -> tuple[str, str]:
    """Two defect codes the category really has (``real_iad.CATEGORY_CODES``), AK, HS, QS first."""
    preferred = ("AK", "HS", "QS")
    codes = CATEGORY_CODES.get(category, ("AK", "HS"))
    ranked = sorted(codes, key=lambda c: preferred.index(c) if c in preferred else len(preferred))
    return ranked[0], ranked[1]


def make_real_iad(
    root: Path, categories: tuple[str, ...] = ("audiojack", "toy_brick"), resolution: str = "256"
) -> dict:
    """Real-IAD: ``realiad_<res>/<cat>/{OK,NG/<CODE>}/S0001/<cat>_0001_OK_C1_<ts>.jpg``, JSON splits."""
    truth = {}
    for category in categories:
        splits: dict[str, list] = {"train": [], "test": []}
        first, second = _real_iad_codes(category)
        plan = [("train", "OK", 1), ("test", "OK", 2), ("test", first, 3), ("test", second, 4)]
        for split, code, sample in plan:
            for view in (1, 3):
                kind = "OK" if code == "OK" else f"NG/{code}"
                tag = "OK" if code == "OK" else f"NG_{code}"
                name = f"{category}_{sample:04d}_{tag}_C{view}_20230922{sample:02d}{view:02d}00"
                image_rel = f"{kind}/S{sample:04d}/{name}.jpg"
                base = root / f"realiad_{resolution}" / category
                (base / image_rel).parent.mkdir(parents=True, exist_ok=True)
                image, mask = _draw(f"realiad/{category}/{image_rel}", "RGB", code != "OK")
                image.save(base / image_rel, format="JPEG", quality=90)
                item = {"category": category, "anomaly_class": code, "image_path": image_rel, "mask_path": None}
                if mask is not None:
                    item["mask_path"] = f"{kind}/S{sample:04d}/{name}_mask.png"
                    _save_mask(base / item["mask_path"], mask)
                splits[split].append(item)
                truth[f"realiad_{resolution}/{category}/{image_rel}"] = (split, code)
        json_dir = root / "realiad_jsons" / "realiad_jsons"
        json_dir.mkdir(parents=True, exist_ok=True)
        meta = {"prefix": "", "normal_class": "OK", "pre_transform": {}}
        (json_dir / f"{category}.json").write_text(json.dumps({"meta": meta, **splits}, indent=1))
    return truth


def make_folder(root: Path) -> dict:
    """A user's product line: ``ok/`` as the normal folder, one category without masks."""
    truth = {}
    for category, with_masks in (("gasket", True), ("hinge", False)):
        for split, folder, count in (("train", "ok", 3), ("test", "ok", 1), ("test", "burr", 2)):
            for i in range(count):
                path = root / category / split / folder / f"img_{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image, mask = _draw(f"folder/{category}/{split}/{folder}/{i}", "RGB", folder != "ok")
                image.save(path)
                if mask is not None and with_masks:
                    _save_mask(root / category / "ground_truth" / folder / f"img_{i}_mask.png", mask)
                truth[path.relative_to(root).as_posix()] = (split, "normal" if folder == "ok" else "anomaly")
    return truth


# image (as mmad.json names it) -> its questions: (MMAD question type, options, correct letter)
MMAD_QUESTIONS: dict[str, list[tuple[str, dict[str, str], str]]] = {
    "DS-MVTec/bottle/image/broken_large/000.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "A"),
        ("Defect Classification", {"A": "Scratch.", "B": "Broken rim.", "C": "Contamination.", "D": "None."}, "B"),
        ("Defect Localization", {"A": "Top left.", "B": "Center.", "C": "At the rim.", "D": "Bottom."}, "C"),
        ("Defect Description", {"A": "A chipped piece of glass.", "B": "A dark stain.", "C": "A crack."}, "A"),
        ("Defect Analysis", {"A": "None.", "B": "Cosmetic.", "C": "Leaks.", "D": "It cannot hold a seal."}, "D"),
    ],
    "DS-MVTec/bottle/image/good/000.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "B"),
        ("Object Classification", {"A": "A bottle.", "B": "A cable.", "C": "A screw.", "D": "A nut."}, "A"),
        ("Object Structure", {"A": "Square.", "B": "A round opening.", "C": "A hinge."}, "B"),
        ("Object Details", {"A": "Red.", "B": "Text.", "C": "A smooth rim.", "D": "Teeth."}, "C"),
    ],
    "DS-MVTec/cable/image/cut_inner_insulation/000.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "A"),
        ("Defect Classification", {"A": "Bent wire.", "B": "Swap.", "C": "Cut insulation.", "D": "None."}, "C"),
        ("Defect Localization", {"A": "Outer sheath.", "B": "Inner core.", "C": "Nowhere."}, "B"),
        ("Defect Description", {"A": "Cut.", "B": "Bare wire.", "C": "Stain.", "D": "Dent.", "E": "Fold."}, "B"),
        ("Defect Analysis", {"A": "Short circuit.", "B": "None.", "C": "Cosmetic.", "D": "Taste."}, "A"),
    ],
    "DS-MVTec/cable/image/good/000.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "B"),
        ("Object Classification", {"A": "A bottle.", "B": "A cable.", "C": "A pill."}, "B"),
        ("Object Analysis", {"A": "Three cores.", "B": "One core.", "C": "Six cores."}, "A"),
    ],
    "VisA/candle/test/bad/000.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "A"),
        ("Defect Classification", {"A": "Wax missing.", "B": "Wick bent.", "C": "None.", "D": "Colour."}, "A"),
        ("Defect Localization", {"A": "Top.", "B": "Left.", "C": "Right.", "D": "Second candle."}, "D"),
        ("Defect Description", {"A": "Red.", "B": "Blue.", "C": "A hollow in the wax."}, "C"),
        ("Defect Analysis", {"A": "None.", "B": "Burns unevenly.", "C": "Explodes."}, "B"),
    ],
    "VisA/candle/test/good/000.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "B"),
        ("Object Classification", {"A": "Candles.", "B": "Pipes.", "C": "Chewing gum."}, "A"),
        ("Object Structure", {"A": "Four candles in a grid.", "B": "One candle."}, "A"),
        ("Object Details", {"A": "Blue wax.", "B": "White wax with black wicks."}, "B"),
    ],
    "VisA/candle/test/good/001.png": [
        ("Anomaly Detection", {"A": "Yes.", "B": "No."}, "B"),
        ("Object Classification", {"A": "Candles.", "B": "Capsules."}, "A"),
        ("Object Details", {"A": "Red wicks.", "B": "Green wax.", "C": "Square candles.", "D": "Round candles."}, "D"),
    ],
}
MMAD_TEMPLATES = {
    "bottle": "MVTec-AD/bottle/train/good/000.png",
    "cable": "MVTec-AD/cable/train/good/000.png",
    "candle": "VisA/candle/train/good/000.png",
}


def make_mmad(root: Path, questions: dict = MMAD_QUESTIONS) -> dict:
    """MMAD: ``mmad.json`` (MMAD's exact shape: image path -> ``image_path``, ``mask_path``,
    ``similar_templates``, ``random_templates``, ``conversation``) and the images it names, query
    images of two datasets (DS-MVTec, VisA) and one normal template per class under MVTec-AD and
    VisA ``train/good``; returns the parsed ``mmad.json``."""
    entries = {}
    for image, asked in questions.items():
        _, category, *_, folder, name = image.split("/")
        anomalous = folder != "good"
        picture, _ = _draw(f"mmad/{image}", "RGB", anomalous)
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        picture.save(root / image)
        template = MMAD_TEMPLATES[category]
        if not (root / template).exists():
            (root / template).parent.mkdir(parents=True, exist_ok=True)
            _draw(f"mmad/{template}", "RGB", False)[0].save(root / template)
        entries[image] = {
            "image_path": "/".join(image.split("/")[2:]),
            "mask_path": f"rbg_mask/{folder}/{Path(name).stem}_rbg_mask.png" if anomalous else "",
            "similar_templates": [template],
            "random_templates": [template],
            "conversation": [
                {
                    "Question": f"Question about {t.lower()} of this {category}?",
                    "Answer": answer,
                    "Options": options,
                    "type": t,
                    "annotation": True,
                }
                for t, options, answer in asked
            ],
        }
    (root / "mmad.json").write_text(json.dumps(entries, indent=4), encoding="utf-8")
    return entries
