"""Every reader on a generated tree that mimics its real layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from instructiad.errors import InstructIADError
from instructiad.masks import read_mask
from instructiad.records import make_record
from instructiad.sources import detect, real_iad, resolve_source, synthetic
from tests import layouts


def read(name: str, root):
    reader, path = resolve_source(name, root)
    return list(reader.iter_samples(path))


def test_mvtec_ad_reads_every_image_with_its_mask_and_keeps_grayscale(tmp_path):
    truth = layouts.make_mvtec_ad(tmp_path)
    samples = read("mvtec_ad", tmp_path)
    assert sorted(s.image_path for s in samples) == sorted(truth)
    for s in samples:
        split, label, folder = truth[s.image_path]
        assert (s.split, s.label) == (split, label)
        assert s.defect_type == folder
        if label == "anomaly":
            assert s.mask_paths == (f"{s.category}/ground_truth/{folder}/{s.image_path[-7:-4]}_mask.png",)
        else:
            assert s.mask_paths == ()
    assert samples[0].id == "mvtec_ad/bottle/train/good/000.png"
    screw = next(s for s in samples if s.category == "screw")
    assert make_record(screw)["metadata"]["mode"] == "L"
    bottle = next(s for s in samples if s.category == "bottle")
    assert make_record(bottle)["metadata"]["mode"] == "RGB"


def test_readers_order_is_deterministic_category_split_path(tmp_path):
    layouts.make_mvtec_ad(tmp_path)
    ids = [s.id for s in read("mvtec_ad", tmp_path)]
    assert ids == [s.id for s in read("mvtec_ad", tmp_path)]
    assert ids[:3] == [
        "mvtec_ad/bottle/train/good/000.png",
        "mvtec_ad/bottle/train/good/001.png",
        "mvtec_ad/bottle/test/broken_large/000.png",
    ]


def test_visa_raw_decodes_class_id_masks_to_defect_names(tmp_path):
    truth = layouts.make_visa_raw(tmp_path)
    samples = read("visa", tmp_path)
    assert sorted(s.image_path for s in samples) == sorted(truth)
    by_path = {s.image_path: s for s in samples}
    two = by_path["candle/Data/Images/Anomaly/000.JPG"]
    assert two.defect_types == ("chunk_of_wax_missing", "weird_candle_wick")
    assert two.defect_type == "combined"
    one = by_path["pcb4/Data/Images/Anomaly/001.JPG"]
    assert one.defect_types == ("scratch",) and one.defect_type == "scratch"
    assert by_path["candle/Data/Images/Normal/000.JPG"].split == "train"
    assert two.id == "visa/candle/test/Data/Images/Anomaly/000.JPG"
    record = make_record(two)
    mask = np.asarray(Image.open(io.BytesIO(record["mask"]["bytes"])))
    assert set(np.unique(mask)) == {0, 255}  # class ids become a 0/255 mask
    assert (mask > 0).sum() == (read_mask(tmp_path / two.mask_paths[0]) > 0).sum()


def test_visa_prepared_layout(tmp_path):
    truth = layouts.make_visa_prepared(tmp_path)
    samples = read("visa", tmp_path)
    assert {s.image_path: (s.split, s.label) for s in samples} == truth
    bad = [s for s in samples if s.label == "anomaly"]
    assert all(s.defect_type == "bad" and s.mask_paths[0].startswith(f"{s.category}/ground_truth/bad/") for s in bad)


def test_mvtec_loco_merges_mask_folders_and_reads_sub_types(tmp_path):
    truth = layouts.make_mvtec_loco(tmp_path)
    samples = read("mvtec_loco", tmp_path)
    assert sorted(s.image_path for s in samples) == sorted(truth)
    assert [s.split for s in samples if s.category == "pushpins"][:6] == ["train"] * 3 + ["validation"] * 2 + ["test"]
    two = next(s for s in samples if s.image_path == "pushpins/test/logical_anomalies/000.png")
    assert len(two.mask_paths) == 2
    assert two.sub_types == ("missing_almonds", "too_many_oranges")
    assert two.defect_type == "logical_anomalies"
    structural = next(s for s in samples if s.defect_type == "structural_anomalies")
    assert structural.sub_types == ("box_damaged",)
    record = make_record(two)
    union = (read_mask(tmp_path / two.mask_paths[0]) > 0) | (read_mask(tmp_path / two.mask_paths[1]) > 0)
    stored = np.asarray(Image.open(io.BytesIO(record["mask"]["bytes"]))) > 0
    assert np.array_equal(stored, union)
    assert [0, 0, 6, 6] in record["boxes"]


def test_mvtec_loco_without_defects_config_has_no_sub_types(tmp_path):
    layouts.make_mvtec_loco(tmp_path, categories=("juice_bottle",))
    (tmp_path / "juice_bottle" / "defects_config.json").unlink()
    samples = read("mvtec_loco", tmp_path)
    assert all(s.sub_types == () for s in samples)


def test_real_iad_maps_codes_and_keeps_view_and_sample(tmp_path):
    truth = layouts.make_real_iad(tmp_path)
    samples = read("real_iad", tmp_path)
    assert sorted(s.image_path for s in samples) == sorted(truth)
    by_path = {s.image_path: s for s in samples}
    for path, (split, code) in truth.items():
        s = by_path[path]
        assert s.split == split
        assert s.label == ("normal" if code == "OK" else "anomaly")
        assert s.defect_type == {"OK": "good", "AK": "pit", "HS": "scratch", "QS": "missing_parts"}[code]
    pit = next(s for s in samples if s.defect_type == "pit")
    extra = dict(pit.extra)
    assert extra["defect_code"] == "AK" and extra["view"] in ("C1", "C3") and extra["sample_id"] == "S0003"
    assert pit.mask_paths[0].endswith("_mask.png")
    assert pit.id.startswith("real_iad/toy_brick/test/NG/AK/S0003/")


def test_real_iad_reads_the_largest_resolution_present(tmp_path):
    layouts.make_real_iad(tmp_path, categories=("toy_brick",), resolution="256")
    layouts.make_real_iad(tmp_path, categories=("toy_brick",), resolution="512")
    samples = read("real_iad", tmp_path)
    assert all(s.image_path.startswith("realiad_512/") for s in samples)
    assert all(s.image_path.startswith("realiad_256/") for s in real_iad.iter_samples(tmp_path, resolution="256"))


def test_folder_source_with_ok_folders_and_optional_masks(tmp_path):
    truth = layouts.make_folder(tmp_path)
    samples = read("folder", tmp_path)
    assert {s.image_path: (s.split, s.label) for s in samples} == truth
    hinge = [s for s in samples if s.category == "hinge" and s.label == "anomaly"]
    assert hinge and all(s.mask_paths == () for s in hinge)
    gasket = [s for s in samples if s.category == "gasket" and s.label == "anomaly"]
    assert all(len(s.mask_paths) == 1 for s in gasket)
    assert all(s.defect_type == "good" for s in samples if s.label == "normal")


def test_folder_source_accepts_a_single_category_root(tmp_path):
    layouts.make_folder(tmp_path)
    samples = read("folder", tmp_path / "hinge")
    assert {s.category for s in samples} == {"hinge"}
    assert samples[0].image_path.startswith("hinge/")


def test_synthetic_tree_is_read_by_its_reader(tmp_path):
    synthetic.generate(tmp_path, n_train=1, n_test_good=1, n_per_defect=1, size=64)
    samples = read("synthetic", tmp_path)
    assert len(samples) == 3 * (1 + 1 + 3)
    assert {s.defect_type for s in samples if s.category == "glazed_tile"} == {"good", "crack", "glaze_drip", "chip"}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (layouts.make_mvtec_ad, "mvtec_ad"),
        (layouts.make_visa_raw, "visa"),
        (layouts.make_visa_prepared, "visa"),
        (layouts.make_mvtec_loco, "mvtec_loco"),
        (layouts.make_real_iad, "real_iad"),
        (layouts.make_folder, "folder"),
        (lambda root: synthetic.generate(root, n_train=1, n_test_good=1, n_per_defect=1, size=32), "synthetic"),
    ],
)
def test_detect_recognises_each_layout(tmp_path, make, expected):
    make(tmp_path)
    assert detect(tmp_path) == expected


def test_named_source_on_another_layout_says_what_it_looks_like(tmp_path):
    layouts.make_mvtec_loco(tmp_path)
    with pytest.raises(InstructIADError, match=r"not a real_iad layout .* it looks like mvtec_loco"):
        resolve_source("real_iad", tmp_path)
