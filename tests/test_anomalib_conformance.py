"""Our readers and anomalib's own parsers agree on the same generated trees.

For MVTec AD, VisA (prepared), MVTec LOCO and Real-IAD: the same image files, the same
mask files per image, and the same labels. Runs when anomalib is installed (the ``test``
extra installs it).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from instructiad.sources import resolve_source
from tests import layouts

pytest.importorskip("anomalib", reason="the conformance test needs anomalib (pip install -e '.[test]')")
image_datasets = pytest.importorskip("anomalib.data.datasets.image")


def ours(name: str, root: Path) -> dict[str, tuple[frozenset[str], int]]:
    """image path -> (mask paths, label index), all absolute."""
    reader, path = resolve_source(name, root)
    return {
        str(path / s.image_path): (frozenset(str(path / m) for m in s.mask_paths), int(s.label == "anomaly"))
        for s in reader.iter_samples(path)
    }


def theirs(frame) -> dict[str, tuple[frozenset[str], int]]:
    """The same mapping from an anomalib samples DataFrame."""
    result = {}
    for row in frame.to_dict("records"):
        masks = row.get("mask_path")
        if masks is None or (isinstance(masks, float)) or masks == "":
            masks = []
        elif isinstance(masks, str):
            masks = [masks]
        result[str(Path(row["image_path"]).resolve())] = (
            frozenset(str(Path(m).resolve()) for m in masks),
            int(row["label_index"]),
        )
    return result


def test_mvtec_ad_matches_anomalib(tmp_path):
    from anomalib.data.datasets.image.mvtecad import make_mvtec_ad_dataset

    layouts.make_mvtec_ad(tmp_path)
    expected = {}
    for category in layouts.MVTEC_AD:
        expected |= theirs(make_mvtec_ad_dataset(tmp_path / category))
    assert ours("mvtec_ad", tmp_path) == expected


def test_visa_prepared_matches_anomalib(tmp_path):
    from anomalib.data.datasets.image.mvtecad import make_mvtec_ad_dataset
    from anomalib.data.datasets.image.visa import EXTENSIONS

    layouts.make_visa_prepared(tmp_path)
    expected = {}
    for category in ("candle", "pcb1"):
        expected |= theirs(make_mvtec_ad_dataset(tmp_path / category, extensions=EXTENSIONS))
    assert ours("visa", tmp_path) == expected


def test_mvtec_loco_matches_anomalib(tmp_path):
    import pandas as pd
    from anomalib.data.datasets.image.mvtec_loco import make_dataset

    layouts.make_mvtec_loco(tmp_path)
    expected = {}
    for category in ("breakfast_box", "pushpins"):
        # anomalib 2.7's LOCO parser assigns lists into a column that pandas 3 types as str
        # ("Invalid value for dtype 'str'"); pandas' object-string mode lets it run as designed.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the option is deprecated in pandas 3
            with pd.option_context("future.infer_string", False):
                frame = make_dataset(tmp_path / category)
        expected |= theirs(frame)
    assert ours("mvtec_loco", tmp_path) == expected


def test_real_iad_matches_anomalib(tmp_path):
    from anomalib.data.datasets.image.realiad import make_realiad_dataset

    layouts.make_real_iad(tmp_path)
    expected = {}
    for category in ("audiojack", "toy_brick"):
        metadata = json.loads((tmp_path / "realiad_jsons" / "realiad_jsons" / f"{category}.json").read_text())
        expected |= theirs(make_realiad_dataset(tmp_path / "realiad_256" / category, metadata=metadata))
    assert ours("real_iad", tmp_path) == expected
