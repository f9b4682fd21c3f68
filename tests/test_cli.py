"""The `triad` command line: demo, build, info, verify, push, and every bad input of the issue."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from instructiad.sources import synthetic
from tests import layouts
from triad_eval.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def small_source(root: Path) -> Path:
    return synthetic.generate(root, categories=("steel_sheet", "glazed_tile"), n_train=2, n_test_good=1, size=64)


def assert_failed_cleanly(code: int, err: str, out_dir: Path, *needles: str) -> None:
    """Exit 1, a single error line naming what is wrong, and nothing left on disk."""
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("triad: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not out_dir.exists()
    assert not list(out_dir.parent.glob(f".{out_dir.name}*")), "a partial folder was left behind"


# --- the happy paths ------------------------------------------------------------------------


def test_demo_builds_and_prints_the_summary_and_can_be_rerun(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo", "--size", 64)
    assert code == 0
    assert "[synthetic]  90 images" in out
    assert "steel_sheet" in out and "inclusion 6, pit 6, scratch 6" in out
    assert (tmp_path / "demo" / "dataset" / "manifest.json").is_file()
    assert run(capsys, "demo", "--out", tmp_path / "demo", "--size", 64)[0] == 0


def test_demo_refuses_to_replace_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "demo", "--out", tmp_path / "mine")
    assert code == 1 and "is not a triad demo folder" in err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_build_info_verify_push_dry_run(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    out = tmp_path / "ds"
    code, stdout, _ = run(
        capsys, "build", "--source", f"synthetic={source}", "--out", out, "--version", "2.0.0", "--repo", "me/iad"
    )
    assert code == 0 and "synthetic: 18 records" in stdout
    assert 'load_dataset("me/iad", revision="v2.0.0")' in (out / "README.md").read_text()

    code, stdout, _ = run(capsys, "info", out)
    assert code == 0
    assert "InstructIAD 2.0.0" in stdout and "configs      all (default), synthetic" in stdout
    assert "glaze_drip 2" in stdout
    code, stdout, _ = run(capsys, "info", out, "--json")
    assert json.loads(stdout)["configs"]["synthetic"]["splits"]["test"]["anomaly"] == 12

    assert run(capsys, "verify", out)[0] == 0

    code, stdout, _ = run(capsys, "push", out, "--repo", "someone/instructiad", "--dry-run")
    assert code == 0
    assert "note: the card's load examples name me/iad; rebuild with --repo someone/instructiad" in stdout
    assert "note:" not in run(capsys, "push", out, "--repo", "me/iad", "--dry-run")[1]
    assert "data/synthetic/test-00000-of-00001.parquet" in stdout
    assert "dry run: would upload 7 files" in stdout and "tag v2.0.0" in stdout


def test_verify_exits_1_on_a_tampered_folder(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    out = tmp_path / "ds"
    assert run(capsys, "build", "--source", f"synthetic={source}", "--out", out)[0] == 0
    (out / "build_report.json").write_text("{}\n")
    code, _, err = run(capsys, "verify", out)
    assert code == 1 and "build_report.json: size" in err
    code, _, err = run(capsys, "push", out, "--repo", "a/b", "--dry-run")
    assert code == 1 and "nothing was uploaded" in err


def test_the_console_script_runs_in_a_real_process(tmp_path):
    triad = shutil.which("triad")
    command = [triad] if triad else [sys.executable, "-m", "triad_eval"]
    result = subprocess.run([*command, "info", tmp_path / "nothing"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == f"triad: error: {tmp_path / 'nothing'}: not a folder"


# --- bad input: one line naming the file, exit 1, nothing written ------------------------------


def test_missing_root(tmp_path, capsys):
    code, _, err = run(capsys, "build", "--source", f"mvtec_ad={tmp_path / 'nope'}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", str(tmp_path / "nope"), "does not exist")


def test_unreadable_root(tmp_path, capsys, monkeypatch):
    (tmp_path / "locked").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p).name == "locked" else real_access(p, mode))
    code, _, err = run(capsys, "build", "--source", f"mvtec_ad={tmp_path / 'locked'}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "locked", "not readable")


def test_layout_that_matches_no_reader(tmp_path, capsys):
    (tmp_path / "photos" / "holiday").mkdir(parents=True)
    (tmp_path / "photos" / "holiday" / "beach.png").write_bytes(b"")
    code, _, err = run(capsys, "build", "--source", tmp_path / "photos", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", str(tmp_path / "photos"), "matches no reader")
    code, _, err = run(capsys, "build", "--source", f"visa={tmp_path / 'photos'}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "not a visa layout", "split_csv/1cls.csv")


def test_usage_errors_are_one_line_and_exit_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["build", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert stop.value.code == 1 and err.count("\n") == 1 and "required: --source" in err
    source = small_source(tmp_path / "src")
    code, _, err = run(capsys, "build", "--source", source, "--out", tmp_path / "out", "--num-proc", 0)
    assert_failed_cleanly(code, err, tmp_path / "out", "--num-proc 0")


def test_unknown_source_name(tmp_path, capsys):
    code, _, err = run(capsys, "build", "--source", f"mvtec={tmp_path}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "unknown source 'mvtec'")


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("garbage.png", lambda data: b"this is not an image at all" * 10),
        ("truncated.png", lambda data: data[: len(data) // 2]),
        ("truncated.jpg", lambda data: data[: len(data) // 2]),
    ],
)
def test_corrupt_or_truncated_image(tmp_path, capsys, name, damage):
    source = small_source(tmp_path / "src")
    good = source / "glazed_tile" / "train" / "good" / "000.png"
    target = good.with_name(name)
    if name.endswith(".jpg"):
        Image.open(good).save(target, format="JPEG")
    else:
        shutil.copy(good, target)
    target.write_bytes(damage(target.read_bytes()))
    code, _, err = run(capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", str(target), "corrupt or truncated image")


def test_mask_whose_size_differs_from_its_image(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    mask = source / "steel_sheet" / "ground_truth" / "pit" / "001_mask.png"
    Image.new("L", (32, 40)).save(mask)
    code, _, err = run(capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", str(mask), "mask is 32x40 but its image is 64x64")


def test_anomalous_image_without_its_mask(tmp_path, capsys):
    layouts.make_mvtec_ad(tmp_path / "mvtec")
    (tmp_path / "mvtec" / "bottle" / "ground_truth" / "contamination" / "001_mask.png").unlink()
    code, _, err = run(capsys, "build", "--source", f"mvtec_ad={tmp_path / 'mvtec'}", "--out", tmp_path / "out")
    image = tmp_path / "mvtec" / "bottle" / "test" / "contamination" / "001.png"
    assert_failed_cleanly(code, err, tmp_path / "out", str(image), "has no mask", "001_mask.png")


def test_loco_anomaly_without_its_mask_folder(tmp_path, capsys):
    layouts.make_mvtec_loco(tmp_path / "loco")
    shutil.rmtree(tmp_path / "loco" / "pushpins" / "ground_truth" / "structural_anomalies" / "000")
    code, _, err = run(capsys, "build", "--source", f"mvtec_loco={tmp_path / 'loco'}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", "structural_anomalies/000.png", "has no masks")


def test_split_file_entry_that_escapes_the_root(tmp_path, capsys):
    layouts.make_visa_raw(tmp_path / "visa")
    (tmp_path / "secret.JPG").write_bytes(b"outside")
    split_file = tmp_path / "visa" / "split_csv" / "1cls.csv"
    with split_file.open("a") as handle:
        handle.write("candle,train,normal,candle/../../secret.JPG,\n")
    code, _, err = run(capsys, "build", "--source", f"visa={tmp_path / 'visa'}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", f"{split_file}:", "escapes the source root")


def test_split_file_symlink_that_escapes_the_root(tmp_path, capsys):
    layouts.make_real_iad(tmp_path / "realiad", categories=("usb",))
    (tmp_path / "outside.jpg").write_bytes(b"outside")
    link = tmp_path / "realiad" / "realiad_256" / "usb" / "OK" / "S0001" / "link.jpg"
    link.symlink_to(tmp_path / "outside.jpg")
    split_file = tmp_path / "realiad" / "realiad_jsons" / "realiad_jsons" / "usb.json"
    splits = json.loads(split_file.read_text())
    splits["train"].append({"anomaly_class": "OK", "image_path": "OK/S0001/link.jpg", "mask_path": None})
    split_file.write_text(json.dumps(splits))
    code, _, err = run(capsys, "build", "--source", f"real_iad={tmp_path / 'realiad'}", "--out", tmp_path / "out")
    where = f"{split_file}:train[{len(splits['train']) - 1}]"
    assert_failed_cleanly(code, err, tmp_path / "out", where, "escapes the source root")


def test_split_file_entry_that_names_a_missing_file(tmp_path, capsys):
    layouts.make_real_iad(tmp_path / "realiad", categories=("usb",))
    split_file = tmp_path / "realiad" / "realiad_jsons" / "realiad_jsons" / "usb.json"
    splits = json.loads(split_file.read_text())
    splits["test"][0]["image_path"] = "OK/S0404/usb_0404_OK_C1_missing.jpg"
    split_file.write_text(json.dumps(splits))
    code, _, err = run(capsys, "build", "--source", f"real_iad={tmp_path / 'realiad'}", "--out", tmp_path / "out")
    assert_failed_cleanly(
        code, err, tmp_path / "out", f"{split_file}:test[0]", "usb_0404_OK_C1_missing.jpg", "does not exist"
    )


def test_empty_category(tmp_path, capsys):
    layouts.make_mvtec_ad(tmp_path / "mvtec")
    (tmp_path / "mvtec" / "cable" / "train" / "good").mkdir(parents=True)
    (tmp_path / "mvtec" / "cable" / "test").mkdir()
    code, _, err = run(capsys, "build", "--source", f"mvtec_ad={tmp_path / 'mvtec'}", "--out", tmp_path / "out")
    assert_failed_cleanly(code, err, tmp_path / "out", str(tmp_path / "mvtec" / "cable"), "empty category")


def test_output_folder_that_exists(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep")
    code, _, err = run(capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out")
    assert code == 1 and err.strip() == f"triad: error: {tmp_path / 'out'}: output folder already exists"
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep"


def test_bad_version_string(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    code, _, err = run(capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out", "--version", "v1")
    assert_failed_cleanly(code, err, tmp_path / "out", "--version v1", "X.Y.Z")


def test_skip_leaves_bad_files_out_counts_and_lists_them(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    (source / "steel_sheet" / "test" / "good" / "000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.new("L", (10, 10)).save(source / "glazed_tile" / "ground_truth" / "crack" / "000_mask.png")
    (source / "glazed_tile" / "ground_truth" / "chip" / "001_mask.png").unlink()
    out = tmp_path / "out"
    code, stdout, _ = run(
        capsys, "build", "--source", f"synthetic={source}", "--out", out, "--on-bad-file", "skip", "--num-proc", 2
    )
    assert code == 0 and "synthetic: 15 records, 3 file(s) skipped" in stdout
    report = json.loads((out / "build_report.json").read_text())
    assert report["sources"]["synthetic"] == {"num_records": 15, "num_skipped": 3}
    skipped = {entry["path"]: entry["problem"] for entry in report["skipped"]}
    assert set(skipped) == {
        "glazed_tile/ground_truth/crack/000_mask.png",
        "glazed_tile/test/chip/001.png",
        "steel_sheet/test/good/000.png",
    }
    assert "corrupt or truncated image" in skipped["steel_sheet/test/good/000.png"]
    card = (out / "README.md").read_text()
    assert "| synthetic | `glazed_tile/test/chip/001.png` | anomalous image has no mask" in card
    code, stdout, _ = run(capsys, "info", out)
    assert "skipped      3 file(s)" in stdout
    assert run(capsys, "verify", out)[0] == 0


def test_build_takes_a_readers_options(tmp_path, capsys):
    """Real-IAD's resolution and split set, chosen on the command line and recorded."""
    from datasets import load_dataset

    root = tmp_path / "real_iad"
    for resolution in ("256", "512"):
        layouts.make_real_iad(root, categories=("toy_brick",), resolution=resolution)
    single_view = root / "realiad_jsons" / "realiad_jsons_sv"
    single_view.mkdir(parents=True)
    splits = json.loads((root / "realiad_jsons" / "realiad_jsons" / "toy_brick.json").read_text())
    for split in ("train", "test"):
        splits[split] = [item for item in splits[split] if "_C1_" in item["image_path"]]
    (single_view / "toy_brick.json").write_text(json.dumps(splits))

    def paths(out):
        rows = load_dataset(str(out), "real_iad", split="test")
        return [row["image_path"] for row in rows["metadata"]]

    assert run(capsys, "build", "--source", f"real_iad={root}", "--out", tmp_path / "default")[0] == 0
    default = paths(tmp_path / "default")
    assert default and all(p.startswith("realiad_512/") for p in default)
    args = ["--source-args", "real_iad:resolution=256,split_set=realiad_jsons_sv"]
    assert run(capsys, "build", "--source", f"real_iad={root}", *args, "--out", tmp_path / "chosen")[0] == 0
    chosen = paths(tmp_path / "chosen")
    assert all(p.startswith("realiad_256/") and "_C1_" in p for p in chosen) and len(chosen) == len(default) // 2
    report = json.loads((tmp_path / "chosen" / "build_report.json").read_text())
    assert report["options"]["source_args"] == {"real_iad": {"resolution": "256", "split_set": "realiad_jsons_sv"}}
    capsys.readouterr()  # load_dataset's progress

    for bad, message in [
        ("real_iad:colour=red", "unknown option 'colour' (known: resolution, split_set)"),
        ("real_iad:resolution=300", "resolution=300: Real-IAD comes in raw, 1024, 512, 256"),
        ("real_iad:split_set=nope", "missing realiad_jsons/nope/<category>.json"),
        ("mvtec_ad:resolution=256", "--source-args mvtec_ad: no such --source in this build"),
        ("real_iad", "expected NAME:key=value"),
        ("real_iad:resolution", "'resolution' is not key=value"),
    ]:
        code, _, err = run(
            capsys, "build", "--source", f"real_iad={root}", "--source-args", bad, "--out", tmp_path / "x"
        )
        assert code == 1 and message in err and err.count("\n") == 1, err
        assert not (tmp_path / "x").exists()
