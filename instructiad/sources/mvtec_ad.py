"""MVTec AD: 15 categories in the MVTec layout; grid, screw and zipper are grayscale.

``<root>/<category>/{train/good, test/good, test/<defect>}/000.png`` and
``<root>/<category>/ground_truth/<defect>/000_mask.png``. Image modes are kept as they are
(original bytes are stored), so grayscale categories stay grayscale.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from instructiad.errors import OnBadFile, raise_bad_file
from instructiad.sample import Sample
from instructiad.sources import mvtec_like
from instructiad.sources.registry import Reader

DEFECTS: dict[str, tuple[str, ...]] = {
    "bottle": ("broken_large", "broken_small", "contamination"),
    "cable": ("bent_wire", "cable_swap", "combined", "cut_inner_insulation", "cut_outer_insulation", "missing_cable",
              "missing_wire", "poke_insulation"),
    "capsule": ("crack", "faulty_imprint", "poke", "scratch", "squeeze"),
    "carpet": ("color", "cut", "hole", "metal_contamination", "thread"),
    "grid": ("bent", "broken", "glue", "metal_contamination", "thread"),
    "hazelnut": ("crack", "cut", "hole", "print"),
    "leather": ("color", "cut", "fold", "glue", "poke"),
    "metal_nut": ("bent", "color", "flip", "scratch"),
    "pill": ("color", "combined", "contamination", "crack", "faulty_imprint", "pill_type", "scratch"),
    "screw": ("manipulated_front", "scratch_head", "scratch_neck", "thread_side", "thread_top"),
    "tile": ("crack", "glue_strip", "gray_stroke", "oil", "rough"),
    "toothbrush": ("defective",),
    "transistor": ("bent_lead", "cut_lead", "damaged_case", "misplaced"),
    "wood": ("color", "combined", "hole", "liquid", "scratch"),
    "zipper": ("broken_teeth", "combined", "fabric_border", "fabric_interior", "rough", "split_teeth",
               "squeezed_teeth"),
}  # fmt: skip
"""Defect folders of each category (``combined``: several defect kinds in one image)."""
CATEGORIES = tuple(DEFECTS)


def looks_like(root: Path) -> bool:
    """At least one category folder with ``train/good`` and ``test``."""
    return any((c / "train" / "good").is_dir() and (c / "test").is_dir() for c in mvtec_like.category_folders(root))


def iter_samples(root: Path, on_bad: OnBadFile = raise_bad_file) -> Iterator[Sample]:
    """Samples of every category folder, in name order; every anomalous image needs its mask."""
    yield from mvtec_like.iter_samples(root, "mvtec_ad", on_bad=on_bad, require_masks=True)


CITATION = """\
@inproceedings{bergmann2019mvtec,
  title     = {{MVTec AD} -- A Comprehensive Real-World Dataset for Unsupervised Anomaly Detection},
  author    = {Bergmann, Paul and Fauser, Michael and Sattlegger, David and Steger, Carsten},
  booktitle = {Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  pages     = {9592--9600},
  year      = {2019}
}
@article{bergmann2021mvtec,
  title   = {The {MVTec} Anomaly Detection Dataset: A Comprehensive Real-World Dataset for Unsupervised Anomaly
             Detection},
  author  = {Bergmann, Paul and Batzner, Kilian and Fauser, Michael and Sattlegger, David and Steger, Carsten},
  journal = {International Journal of Computer Vision},
  volume  = {129},
  number  = {4},
  pages   = {1038--1059},
  year    = {2021}
}"""
"""The papers MVTec asks users of MVTec AD to cite."""

READER = Reader(
    name="mvtec_ad",
    description="MVTec AD: 15 object and texture categories (Bergmann et al., CVPR 2019)",
    license="cc-by-nc-sa-4.0",
    homepage="https://www.mvtec.com/company/research/datasets/mvtec-ad",
    expected="<category>/train/good, <category>/test/<defect>, <category>/ground_truth/<defect>/<stem>_mask.png",
    looks_like=looks_like,
    iter_samples=iter_samples,
    defects=DEFECTS,
    citation=CITATION,
)
