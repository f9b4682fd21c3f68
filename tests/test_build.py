"""The built folder: Hub layout, load_dataset round trip, determinism, builder, info, verify."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import load_dataset
from PIL import Image

import schemas
from instructiad.builder import InstructIAD
from instructiad.export import build_dataset
from instructiad.info import summarize
from instructiad.manifest import verify
from instructiad.sources import synthetic
from tests import layouts


def card_yaml(folder):
    text = (folder / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


def files_of(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_folder_has_hub_layout_card_manifest_and_report(built):
    names = sorted(files_of(built))
    assert names == [
        "README.md",
        "build_report.json",
        "data/synthetic/test-00000-of-00001.parquet",
        "data/synthetic/train-00000-of-00001.parquet",
        "manifest.json",
        "processes/synthetic/glazed_tile.yaml",
        "processes/synthetic/steel_sheet.yaml",
        "processes/synthetic/woven_fabric.yaml",
    ]
    card = card_yaml(built)
    configs = {c["config_name"]: c for c in card["configs"]}
    assert configs["all"]["default"] is True
    assert configs["synthetic"]["data_files"] == [
        {"split": "train", "path": "data/synthetic/train-*.parquet"},
        {"split": "test", "path": "data/synthetic/test-*.parquet"},
    ]
    assert card["license"] == ["cc-by-4.0"]
    info = {i["config_name"]: i for i in card["dataset_info"]}
    assert {s["name"]: s["num_examples"] for s in info["synthetic"]["splits"]} == {"train": 6, "test": 21}
    manifest = json.loads((built / "manifest.json").read_text())
    assert schemas.errors(manifest, "manifest") == []
    assert manifest["version"] == "0.1.0"
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((built / name).read_bytes()).hexdigest() == entry["sha256"]
    report = json.loads((built / "build_report.json").read_text())
    assert schemas.errors(report, "build_report") == []
    assert report["skipped"] == [] and report["sources"]["synthetic"] == {"num_records": 27, "num_skipped": 0}
    body = (built / "README.md").read_text()
    assert "| synthetic | glazed_tile | test | 1 | 6 |" in body
    assert "| synthetic | steel_sheet | pit | 2 |" in body
    assert manifest["fingerprint"] in body


def test_load_dataset_from_the_folder_by_config_by_default_and_streaming(built, synthetic_root):
    ds = load_dataset(str(built), "synthetic")
    assert ds["train"].num_rows == 6 and ds["test"].num_rows == 21
    default = load_dataset(str(built))  # no config name: the default "all"
    assert list(default["test"]["id"]) == list(ds["test"]["id"])
    streamed = load_dataset(str(built), streaming=True)
    assert [r["id"] for r in streamed["test"]] == list(ds["test"]["id"])

    row = next(r for r in ds["test"] if r["id"] == "synthetic/steel_sheet/test/pit/000.png")
    assert row["label"] == 1 and row["defect_type"] == "pit" and row["defect_types"] == ["pit"]
    assert row["image"].mode == "L" and row["image"].size == (96, 96)
    mask = np.asarray(row["mask"]) > 0
    truth = np.asarray(Image.open(synthetic_root / "steel_sheet/ground_truth/pit/000_mask.png")) > 0
    assert np.array_equal(mask, truth)
    assert row["boxes"] and all(0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96 for x0, y0, x1, y1 in row["boxes"])
    assert row["location"] in row["regions"]
    normal = next(r for r in ds["train"])
    assert normal["label"] == 0 and normal["mask"] is None and normal["boxes"] == [] and normal["location"] is None


def test_original_image_bytes_are_stored_untouched(built, synthetic_root):
    table = pq.read_table(built / "data/synthetic/test-00000-of-00001.parquet", columns=["id", "image"])
    for record_id, image in zip(table.column("id").to_pylist(), table.column("image").to_pylist(), strict=True):
        relative = record_id.split("/", 1)[1]
        category, split, rest = relative.split("/", 2)
        assert image["bytes"] == (synthetic_root / category / split / rest).read_bytes()


def test_same_input_gives_byte_identical_folders_whatever_num_proc(synthetic_root, built, tmp_path):
    again = tmp_path / "again"
    build_dataset([("synthetic", synthetic_root)], again, num_proc=2)
    assert files_of(again) == files_of(built)


def test_builder_class_yields_the_records_the_export_wrote(synthetic_root, built, tmp_path):
    builder = InstructIAD(config_name="synthetic", data_dir=str(synthetic_root), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    prepared = builder.as_dataset(split="test")
    exported = load_dataset(str(built), "synthetic", split="test")
    assert prepared.features == exported.features
    assert list(prepared["id"]) == list(exported["id"])
    assert list(prepared["image_sha256"]) == list(exported["image_sha256"])
    assert list(prepared["boxes"]) == list(exported["boxes"])


def test_several_sources_share_the_all_config(tmp_path):
    layouts.make_mvtec_loco(tmp_path / "loco")
    layouts.make_real_iad(tmp_path / "realiad")
    out = tmp_path / "out"
    build_dataset([("real_iad", tmp_path / "realiad"), (None, tmp_path / "loco")], out)
    everything = load_dataset(str(out))
    assert set(everything) == {"train", "validation", "test"}
    loco = load_dataset(str(out), "mvtec_loco")
    realiad = load_dataset(str(out), "real_iad")
    assert list(everything["test"]["id"]) == list(loco["test"]["id"]) + list(
        realiad["test"]["id"]
    )  # configs in reader order
    assert everything["validation"].num_rows == loco["validation"].num_rows == 4
    card = card_yaml(out)
    assert card["license"] == ["cc-by-nc-sa-4.0"]
    view = json.loads(realiad["test"][0]["metadata"]["extra"])
    assert set(view) == {"defect_code", "sample_id", "view"}


def test_shards_roll_over_and_keep_record_order(synthetic_root, built, tmp_path):
    out = tmp_path / "sharded"
    build_dataset([("synthetic", synthetic_root)], out, max_shard_bytes=50_000)
    shards = sorted((out / "data" / "synthetic").glob("test-*.parquet"))
    assert len(shards) > 1 and shards[-1].name.endswith(f"-of-{len(shards):05d}.parquet")
    ids = list(load_dataset(str(out), "synthetic", split="test")["id"])
    assert ids == list(load_dataset(str(built), "synthetic", split="test")["id"])
    assert verify(out) == []


def test_max_side_resizes_images_and_masks_together(synthetic_root, tmp_path):
    out = tmp_path / "small"
    build_dataset([("synthetic", synthetic_root)], out, max_side=48)
    ds = load_dataset(str(out), "synthetic", split="test")
    row = next(r for r in ds if r["label"] == 1)
    assert row["image"].size == (48, 48) and row["mask"].size == (48, 48)
    assert (row["width"], row["height"]) == (48, 48) and row["metadata"]["original_size"] == [96, 96]
    assert row["image"].mode == Image.open(synthetic_root / row["metadata"]["image_path"]).mode
    assert json.loads((out / "build_report.json").read_text())["options"]["max_side"] == 48


def test_info_counts_match_the_source(built):
    summary = summarize(built)
    config = summary["configs"]["synthetic"]
    assert config["splits"] == {
        "train": {"num_examples": 6, "normal": 6, "anomaly": 0},
        "test": {"num_examples": 21, "normal": 3, "anomaly": 18},
    }
    assert config["categories"]["woven_fabric"] == {
        "train": {"normal": 2, "anomaly": 0},
        "test": {"normal": 1, "anomaly": 6},
    }
    assert config["defects"]["glazed_tile"] == {"chip": 2, "crack": 2, "glaze_drip": 2}
    assert summary["fingerprint"] == json.loads((built / "manifest.json").read_text())["fingerprint"]


def test_verify_passes_then_catches_a_changed_shard(built, tmp_path):
    assert verify(built) == []
    copy = tmp_path / "copy"
    copy.mkdir()
    for name, data in files_of(built).items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    shard = copy / "data/synthetic/train-00000-of-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    (copy / "data/synthetic/extra-00000-of-00001.parquet").write_bytes(b"x")
    problems = verify(copy)
    assert any("train-00000-of-00001.parquet: sha256 differs" in p for p in problems)
    assert any("extra-00000-of-00001.parquet: data file not listed" in p for p in problems)


def test_fingerprint_depends_on_ids_and_image_content(tmp_path):
    a = synthetic.generate(
        tmp_path / "a", categories=("steel_sheet",), n_train=1, n_test_good=1, n_per_defect=1, size=48
    )
    build_dataset([("synthetic", a)], tmp_path / "out_a")
    Image.fromarray(np.zeros((48, 48), np.uint8), "L").save(a / "steel_sheet/train/good/000.png")
    build_dataset([("synthetic", a)], tmp_path / "out_b")
    fingerprints = [json.loads((tmp_path / o / "manifest.json").read_text())["fingerprint"] for o in ("out_a", "out_b")]
    assert fingerprints[0] != fingerprints[1]


@pytest.mark.parametrize("version", ["1.2.3", "0.0.1"])
def test_version_is_written_to_card_and_manifest(synthetic_root, tmp_path, version):
    out = tmp_path / version
    build_dataset([("synthetic", synthetic_root)], out, version=version)
    assert json.loads((out / "manifest.json").read_text())["version"] == version
    assert f'revision="v{version}"' in (out / "README.md").read_text()
