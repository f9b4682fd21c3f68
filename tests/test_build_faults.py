"""Faults of `triad build` (issue 12): concurrent builds, --num-proc, non-UTF-8 names, worker
shutdown, empty categories, `..` in split files, symlinks in folder layouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from instructiad.pipeline import _ordered_thread_map
from instructiad.sources import synthetic
from tests import layouts
from triad_eval.cli import main

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def small_source(root: Path, **sizes) -> Path:
    sizes = {"n_train": 2, "n_test_good": 1, "size": 64} | sizes
    return synthetic.generate(root, categories=("steel_sheet", "glazed_tile"), **sizes)


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("triad: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "a partial folder or lock was left behind"


def report(out: Path) -> dict:
    return json.loads((out / "build_report.json").read_text(encoding="utf-8"))


# --- 1: two builds into the same folder at once ---------------------------------------------

_AT_THE_SIGNAL = """
import sys, time
from pathlib import Path
from triad_eval.cli import main
go = Path(sys.argv[1])
while not go.exists():
    time.sleep(0.005)
sys.exit(main(sys.argv[2:]))
"""


def test_two_concurrent_builds_one_wins_the_other_fails_in_one_line(tmp_path, capsys):
    source = small_source(tmp_path / "src", n_per_defect=4, size=128)
    out, go = tmp_path / "out", tmp_path / "go"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    argv = ["build", "--source", f"synthetic={source}", "--out", str(out)]
    builds = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_THE_SIGNAL, str(go), *argv],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(3)  # both have imported everything and wait for the signal
    go.touch()
    results = [(b.wait(timeout=120), b.stderr.read()) for b in builds]
    assert sorted(code for code, _ in results) == [0, 1], results
    loser = next(err for code, err in results if code == 1)
    assert_one_line_error(1, loser, str(out))
    assert run(capsys, "verify", out)[0] == 0
    assert not list(tmp_path.glob(".out*")), "a partial folder or lock was left behind"


# --- 3: --num-proc above the cores ----------------------------------------------------------


def test_num_proc_above_the_cores_is_refused(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    cores = os.cpu_count()
    wanted = cores + 1  # the original forks them all; a huge value would exhaust the machine
    code, _, err = run(
        capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out", "--num-proc", wanted
    )
    assert_one_line_error(code, err, f"--num-proc {wanted}", f"{cores} CPU core")
    assert_nothing_left(tmp_path / "out")
    code, _, err = run(
        capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out", "--num-proc", 100000
    )
    assert_one_line_error(code, err, "--num-proc 100000", f"{cores} CPU core")


# --- 6: a file name that is not UTF-8 -------------------------------------------------------


def _non_utf8_image(source: Path) -> None:
    good = source / "steel_sheet" / "train" / "good"
    try:
        shutil.copyfile(good / "000.png", os.fsencode(good) + b"/bad\xff.png")
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")


def test_non_utf8_file_name_stops_the_build_in_one_line(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    _non_utf8_image(source)
    code, _, err = run(capsys, "build", "--source", f"synthetic={source}", "--out", tmp_path / "out")
    assert_one_line_error(code, err, "bad\\xff.png", "not valid UTF-8")
    assert_nothing_left(tmp_path / "out")


def test_non_utf8_file_name_is_skipped_and_reported(tmp_path, capsys):
    source = small_source(tmp_path / "src")
    _non_utf8_image(source)
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "build", "--source", f"synthetic={source}", "--out", out, "--on-bad-file", "skip")
    assert code == 0, err
    assert "1 file(s) skipped" in stdout
    (skipped,) = report(out)["skipped"]
    assert skipped["path"] == "steel_sheet/train/good/bad\\xff.png"
    assert "not valid UTF-8" in skipped["problem"]
    assert run(capsys, "verify", out)[0] == 0


# --- 9: an error in a build worker ----------------------------------------------------------


def test_a_worker_error_gives_exactly_one_stderr_line(tmp_path):
    source = small_source(tmp_path / "src", n_per_defect=12, size=256)
    Image.new("L", (10, 10)).save(source / "glazed_tile" / "ground_truth" / "chip" / "000_mask.png")
    env = os.environ | {"PYTHONPATH": str(REPO)}
    for attempt in range(3):  # the stray "Exception ignored" came about half the time
        out = tmp_path / f"out{attempt}"
        argv = ["build", "--source", f"synthetic={source}", "--out", str(out)]
        done = subprocess.run(
            [sys.executable, "-m", "triad_eval", *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert_one_line_error(done.returncode, done.stderr, "000_mask.png", "mask is 10x10")
        assert_nothing_left(out)


def test_thread_map_closed_from_one_of_its_own_threads_does_not_join_it():
    """The garbage collector may finalise the generator in a worker thread: closing it there
    must not try to join that thread."""
    started, closed = threading.Event(), threading.Event()
    problems = []

    def work(item):
        if item == 5:
            started.wait(10)
            try:
                results.close()
            except Exception as error:
                problems.append(error)
            closed.set()
        return item

    results = _ordered_thread_map(work, range(10), workers=3)
    assert next(results) == 0
    started.set()
    assert closed.wait(10)
    assert problems == []


# --- 10: an empty category folder -----------------------------------------------------------


def test_empty_category_folder_stops_the_build(tmp_path, capsys):
    layouts.make_mvtec_ad(tmp_path / "mvtec")
    (tmp_path / "mvtec" / "cable").mkdir()
    code, _, err = run(capsys, "build", "--source", f"mvtec_ad={tmp_path / 'mvtec'}", "--out", tmp_path / "out")
    assert_one_line_error(code, err, str(tmp_path / "mvtec" / "cable"), "empty category")
    assert_nothing_left(tmp_path / "out")


# --- 13a: `..` in a split-file path that stays inside the root ------------------------------


def test_split_file_path_with_dotdot_inside_the_root_is_read(tmp_path, capsys):
    layouts.make_real_iad(tmp_path / "realiad", categories=("usb",))
    split_file = tmp_path / "realiad" / "realiad_jsons" / "realiad_jsons" / "usb.json"
    splits = json.loads(split_file.read_text())
    item = next(i for i in splits["test"] if i["image_path"].startswith("OK/S0002/"))
    plain = item["image_path"]
    item["image_path"] = plain.replace("OK/S0002/", "OK/S0001/../S0002/")
    split_file.write_text(json.dumps(splits))
    out = tmp_path / "out"
    code, _, err = run(capsys, "build", "--source", f"real_iad={tmp_path / 'realiad'}", "--out", out)
    assert code == 0, err
    from datasets import load_dataset

    paths = [m["image_path"] for m in load_dataset(str(out), "real_iad", split="test")["metadata"]]
    assert f"realiad_256/usb/{plain}" in paths
    assert not any(".." in p for p in paths)


# --- 13c: symlinks in folder layouts --------------------------------------------------------


def _link_out_of(root: Path, tmp_path: Path) -> Path:
    outside = tmp_path / "outside.png"
    shutil.copyfile(root / "bottle" / "train" / "good" / "000.png", outside)
    link = root / "bottle" / "train" / "good" / "009.png"
    link.symlink_to(outside)
    return link


def test_symlink_out_of_a_folder_layout_stops_the_build(tmp_path, capsys):
    layouts.make_mvtec_ad(tmp_path / "mvtec")
    link = _link_out_of(tmp_path / "mvtec", tmp_path)
    code, _, err = run(capsys, "build", "--source", f"mvtec_ad={tmp_path / 'mvtec'}", "--out", tmp_path / "out")
    assert_one_line_error(code, err, str(link), "leads out of the source root")
    assert_nothing_left(tmp_path / "out")


def test_symlink_out_of_a_folder_layout_is_skipped(tmp_path, capsys):
    layouts.make_mvtec_ad(tmp_path / "mine")
    _link_out_of(tmp_path / "mine", tmp_path)
    out = tmp_path / "out"
    argv = ["build", "--source", f"folder={tmp_path / 'mine'}", "--out", out, "--on-bad-file", "skip"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    (skipped,) = report(out)["skipped"]
    assert skipped["path"] == "bottle/train/good/009.png"
    assert "leads out of the source root" in skipped["problem"]
