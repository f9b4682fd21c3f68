"""Real-IAD: 30 categories, five camera views per sample, split files in JSON.

``<root>/realiad_{256,512,1024,raw}/<category>/{OK,NG/<CODE>}/S0001/<image>.jpg`` (a
``*_mask.png`` beside each NG image) and ``<root>/realiad_jsons/realiad_jsons/<category>.json``
(or ``realiad_jsons/<category>.json``): ``{"train": [...], "test": [...]}`` of items with
``image_path``, ``mask_path`` (relative to the category folder of the chosen resolution) and
``anomaly_class`` (``"OK"`` or a defect code). The largest resolution present is read unless
``resolution`` says otherwise; the multi-view split set ``realiad_jsons`` unless ``split_set``
names another (``realiad_jsons_sv``, ``realiad_jsons_fuiad_0.4``, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from instructiad.errors import BadFileError, InstructIADError, OnBadFile, raise_bad_file
from instructiad.sample import ANOMALY, GOOD, NORMAL, Sample
from instructiad.sources.files import confined, relative
from instructiad.sources.registry import Reader

CATEGORIES = (
    "audiojack", "bottle_cap", "button_battery", "end_cap", "eraser", "fire_hood", "mint", "mounts", "pcb",
    "phone_battery", "plastic_nut", "plastic_plug", "porcelain_doll", "regulator", "rolled_strip_base",
    "sim_card_set", "switch", "tape", "terminalblock", "toothbrush", "toy", "toy_brick", "transistor1", "u_block",
    "usb", "usb_adaptor", "vcpill", "wooden_beads", "woodstick", "zipper",
)  # fmt: skip
RESOLUTIONS = ("raw", "1024", "512", "256")
"""Image folder resolutions, largest first."""
DEFECT_CODES = {
    "AK": "pit",
    "BX": "deformation",
    "CH": "abrasion",
    "HS": "scratch",
    "PS": "damage",
    "QS": "missing_parts",
    "YW": "foreign_objects",
    "ZW": "contamination",
}
CATEGORY_CODES = {
    "audiojack": ("BX", "HS", "QS", "ZW"),
    "bottle_cap": ("AK", "HS", "QS", "ZW"),
    "button_battery": ("AK", "CH", "HS", "ZW"),
    "end_cap": ("HS", "PS", "QS", "ZW"),
    "eraser": ("AK", "HS", "QS", "ZW"),
    "fire_hood": ("AK", "HS", "QS", "ZW"),
    "mint": ("QS", "YW", "ZW"),
    "mounts": ("AK", "QS", "ZW"),
    "pcb": ("HS", "QS", "YW", "ZW"),
    "phone_battery": ("AK", "HS", "PS", "ZW"),
    "plastic_nut": ("AK", "HS", "QS", "ZW"),
    "plastic_plug": ("AK", "HS", "QS", "ZW"),
    "porcelain_doll": ("CH", "HS", "ZW"),
    "regulator": ("HS", "QS"),
    "rolled_strip_base": ("AK", "QS", "ZW"),
    "sim_card_set": ("CH", "HS", "ZW"),
    "switch": ("HS", "QS", "ZW"),
    "tape": ("PS", "QS", "ZW"),
    "terminalblock": ("AK", "QS", "ZW"),
    "toothbrush": ("CH", "QS", "ZW"),
    "toy": ("AK", "HS", "QS", "ZW"),
    "toy_brick": ("AK", "HS", "QS", "ZW"),
    "transistor1": ("BX", "QS", "ZW"),
    "u_block": ("CH", "HS", "QS", "ZW"),
    "usb": ("BX", "HS", "QS", "ZW"),
    "usb_adaptor": ("AK", "CH", "HS", "ZW"),
    "vcpill": ("AK", "HS", "QS", "ZW"),
    "wooden_beads": ("AK", "HS", "QS", "ZW"),
    "woodstick": ("AK", "HS", "QS", "ZW"),
    "zipper": ("BX", "PS", "QS", "ZW"),
}
"""Defect codes each category's NG folders hold, from a public per-category table of the release
(checked against file names quoted in public code; Wang et al., CVPR 2024, arXiv 2403.12580, name the
codes). A code the split files use that is not listed here is still read, via ``DEFECT_CODES``."""
NORMAL_CODE = "OK"
DEFAULT_SPLIT_SET = "realiad_jsons"


def split_folder(root: Path, split_set: str = DEFAULT_SPLIT_SET) -> Path | None:
    """The folder of ``<category>.json`` split files for ``split_set``, nested or flat."""
    for candidate in (root / "realiad_jsons" / split_set, root / split_set):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


def image_folder(root: Path, resolution: str | None = None) -> Path | None:
    """``realiad_<resolution>`` (default: the largest present)."""
    for res in (resolution,) if resolution else RESOLUTIONS:
        if (root / f"realiad_{res}").is_dir():
            return root / f"realiad_{res}"
    return None


def looks_like(root: Path) -> bool:
    """Split files and at least one image folder."""
    return split_folder(root) is not None and image_folder(root) is not None


def iter_samples(
    root: Path,
    on_bad: OnBadFile = raise_bad_file,
    *,
    resolution: str | None = None,
    split_set: str = DEFAULT_SPLIT_SET,
) -> Iterator[Sample]:
    """Samples of every category with a split file: train then test, in path order."""
    if resolution is not None and resolution not in RESOLUTIONS:
        raise InstructIADError(f"resolution={resolution}: Real-IAD comes in {', '.join(RESOLUTIONS)}")
    splits = split_folder(root, split_set)
    images = image_folder(root, resolution)
    if splits is None or images is None:
        folder = f"realiad_{resolution or '<resolution>'}/"
        missing = f"realiad_jsons/{split_set}/<category>.json" if splits is None else folder
        raise InstructIADError(f"{root}: not a Real-IAD layout (missing {missing})")
    for split_file in sorted(splits.glob("*.json"), key=lambda p: p.name):
        yield from _iter_category(root, images / split_file.stem, split_file, on_bad)


def _iter_category(root: Path, category_dir: Path, split_file: Path, on_bad: OnBadFile) -> Iterator[Sample]:
    category = split_file.stem
    try:
        split_lists = json.loads(split_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InstructIADError(f"{split_file}: cannot read split file ({error})") from None
    if not isinstance(split_lists, dict) or not any(isinstance(split_lists.get(s), list) for s in ("train", "test")):
        raise InstructIADError(f"{split_file}: expected an object with 'train' and 'test' lists")
    if not category_dir.is_dir():
        raise InstructIADError(f"{category_dir}: image folder of category {category!r} is missing")
    samples = []
    for split in ("train", "test"):
        for index, item in enumerate(split_lists.get(split) or []):
            where = f"{split_file}:{split}[{index}]"
            try:
                samples.append(_sample(root, category_dir, category, split, item, where))
            except BadFileError as error:
                on_bad(error)
    if not samples and not split_lists.get("train") and not split_lists.get("test"):
        raise InstructIADError(f"{split_file}: empty category (no items in train or test)")
    samples.sort(key=lambda s: (s.split != "train", s.image_path))
    yield from samples


def _sample(root: Path, category_dir: Path, category: str, split: str, item: object, where: str) -> Sample:
    if not isinstance(item, dict) or "image_path" not in item or "anomaly_class" not in item:
        raise BadFileError(where, "item needs image_path and anomaly_class")
    category_root = relative(root, category_dir)
    check = partial(confined, category_dir.resolve(), where=where)
    image_in_category = check(str(item["image_path"]), what="image")
    code = str(item["anomaly_class"])
    extra = _extra(image_in_category, code)
    image_path = f"{category_root}/{image_in_category}"
    if code == NORMAL_CODE:
        return Sample("real_iad", category, split, root, image_path, image_in_category, NORMAL, GOOD, extra=extra)
    if code not in DEFECT_CODES:
        raise BadFileError(where, f"unknown defect code {code!r} (known: OK, {', '.join(DEFECT_CODES)})")
    if not item.get("mask_path"):
        raise BadFileError(where, f"anomalous image {image_path} has no mask_path")
    mask_path = f"{category_root}/{check(str(item['mask_path']), what='mask')}"
    name = DEFECT_CODES[code]
    return Sample(
        "real_iad", category, split, root, image_path, image_in_category, ANOMALY, name, (name,),
        mask_paths=(mask_path,), extra=extra,
    )  # fmt: skip


def _extra(image_path: str, code: str) -> tuple[tuple[str, str], ...]:
    """Camera view, sample id and defect code, read from the file name and the split item."""
    view = re.search(r"_(C\d+)_", Path(image_path).name)
    sample = re.search(r"(?:^|/)(S\d+)/", image_path)
    extra = {"defect_code": code, "sample_id": sample.group(1) if sample else "", "view": view.group(1) if view else ""}
    return tuple(sorted(extra.items()))


CITATION = """\
@inproceedings{wang2024realiad,
  title     = {Real-IAD: A Real-World Multi-View Dataset for Benchmarking Versatile Industrial Anomaly Detection},
  author    = {Wang, Chengjie and Zhu, Wenbing and Gao, Bin-Bin and Gan, Zhenye and Zhang, Jiangning and Gu, Zhihao
               and Qian, Shuguang and Chen, Mingang and Ma, Lizhuang},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {22883--22892},
  year      = {2024},
  eprint    = {2403.12580},
  archivePrefix = {arXiv}
}"""
"""The paper that publishes Real-IAD."""

READER = Reader(
    name="real_iad",
    description="Real-IAD: 30 categories, 5 camera views per sample (Wang et al., CVPR 2024)",
    license="cc-by-nc-sa-4.0",
    homepage="https://realiad4ad.github.io/Real-IAD/",
    expected="realiad_jsons/realiad_jsons/<category>.json and realiad_<resolution>/<category>/{OK,NG}/",
    looks_like=looks_like,
    iter_samples=iter_samples,
    defects={category: tuple(DEFECT_CODES[code] for code in CATEGORY_CODES[category]) for category in CATEGORIES},
    citation=CITATION,
    options={
        "resolution": f"image folder realiad_<resolution>: {', '.join(RESOLUTIONS)} (default: largest present)",
        "split_set": f"split files, e.g. realiad_jsons_sv or realiad_jsons_fuiad_0.4 (default: {DEFAULT_SPLIT_SET})",
    },
)
