"""The expert condition with precomputed anomaly maps (`--expert maps:<folder>`)."""

from __future__ import annotations

import base64
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.conftest import load_dataset_mask
from triad_eval.cli import main
from triad_eval.conditions import Expert
from triad_eval.data import open_dataset
from triad_eval.experts import parse_expert
from triad_eval.leaderboard import SAMPLES
from triad_eval.requests import build_requests


def test_expert_requests_show_crops_of_the_flagged_regions_after_the_query(built, maps):
    data = open_dataset(str(built), "synthetic")
    expert = parse_expert(f"maps:{maps}", {"crop": "32"})
    requests, _ = build_requests(data, ["discrimination"], ["expert", "process+expert"], expert=expert)
    anomalous = next(r for r in requests if r.label == "anomaly" and r.condition == "expert")
    kinds = [p["type"] for p in anomalous.messages[0]["content"]]
    assert kinds[0] == "image" and kinds[1] == "text" and set(kinds[2:-1]) == {"image"} and kinds[-1] == "text"
    assert anomalous.messages[0]["content"][1]["text"] == Expert.LEAD
    boxes = anomalous.notes["boxes"]
    assert anomalous.notes["fallback"] is None and len(boxes) == len(kinds) - 3
    mask = load_dataset_mask(built, anomalous.id) > 0
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = boxes[0]
    assert x0 <= xs.mean() < x1 and y0 <= ys.mean() < y1
    crop = Image.open(io.BytesIO(anomalous.images[1].data))
    assert crop.size == (x1 - x0, y1 - y0) == (32, 32)
    normal = next(r for r in requests if r.label == "normal" and r.condition == "process+expert")
    assert normal.notes == {"expert": f"maps:{maps}", "boxes": [], "fallback": "the anomaly map is constant"}
    assert normal.messages[0]["content"][2]["text"] == Expert.NONE


def test_an_expert_run_records_the_expert_and_each_requests_regions(built, maps, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["eval", "--model", "chance", "--data", str(built), "--config", "synthetic", "--out", str(out)]
    args += ["--conditions", "zero_shot,expert", "--expert", f"maps:{maps}", "--expert-args", "crop=48,max_regions=2"]
    assert main(args) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["expert"] == {"spec": f"maps:{maps}", "settings": {"crop": 48, "max_regions": 2}}
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    expert_rows = [r for r in rows if r["condition"] == "expert"]
    assert expert_rows and all(len(r["notes"]["boxes"]) <= 2 for r in expert_rows)
    assert "notes" not in next(r for r in rows if r["condition"] == "zero_shot")
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["tasks"]["discrimination"]) == {"zero_shot", "expert"}
    capsys.readouterr()

    # the leaderboard page shows samples: the image with the expert's boxes and each answer
    assert main(["leaderboard", str(out), "--out", str(tmp_path / "board")]) == 0
    page = (tmp_path / "board" / "leaderboard.html").read_text()
    samples = page.split('<div class="sample">')[1:]
    assert len(samples) == min(SAMPLES, len({r["id"] for r in rows}))
    with_boxes = next(s for s in samples if any(r["id"] in s and r.get("notes", {}).get("boxes") for r in expert_rows))
    picture = Image.open(io.BytesIO(base64.b64decode(with_boxes.split("base64,")[1].split('"')[0]))).convert("RGB")
    pixels = np.asarray(picture).reshape(-1, 3)
    assert ((pixels[:, 0] == 220) & (pixels[:, 1] == 0) & (pixels[:, 2] == 0)).any()  # a red box
    assert "<th>condition</th>" in with_boxes and ("✓" in with_boxes or "✗" in with_boxes)
    assert f"expert: maps:{maps}" in with_boxes
    shutil.move(built, tmp_path / "moved")  # a dataset folder that is gone: said, not crashed
    try:
        assert main(["leaderboard", str(out), "--out", str(tmp_path / "board2")]) == 0
    finally:
        shutil.move(tmp_path / "moved", built)
    assert "Images not shown" in (tmp_path / "board2" / "leaderboard.html").read_text()
    capsys.readouterr()


def run_error(capsys, argv) -> str:
    assert main([str(a) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_bad_expert_input(built, maps, tmp_path, capsys):
    base = ["eval", "--model", "chance", "--data", built, "--config", "synthetic", "--out", tmp_path / "r"]
    assert "condition expert needs --expert" in run_error(capsys, [*base, "--conditions", "expert"])
    assert "unknown expert 'padim9'" in run_error(capsys, [*base, "--conditions", "expert", "--expert", "padim9"])
    partial = tmp_path / "partial"
    partial.mkdir()
    first = next(p for p in maps.rglob("*.npy"))
    target = partial / first.relative_to(maps)
    target.parent.mkdir(parents=True)
    target.write_bytes(first.read_bytes())
    err = run_error(capsys, [*base, "--conditions", "expert", "--expert", f"maps:{partial}"])
    assert "no anomaly map for" in err and "records (e.g." in err
    stretched = tmp_path / "stretched"
    for path in maps.rglob("*"):
        if path.is_file():
            copy = stretched / path.relative_to(maps)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(path.read_bytes())
    np.save(next(stretched.rglob("*.npy")), np.arange(24 * 12, dtype=np.float32).reshape(12, 24))
    err = run_error(capsys, [*base, "--conditions", "expert", "--expert", f"maps:{stretched}"])
    assert "map is 24x12 but its image is 96x96 (another aspect ratio)" in err
    assert "takes no setting 'size' (known: threshold, crop, max_regions, order)" in run_error(
        capsys, [*base, "--conditions", "expert", "--expert", f"maps:{maps}", "--expert-args", "size=3"]
    )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("padim", "image_size=64"),
        ("patchcore", "image_size=64"),
        # 2.5 s a step on a 2-core CPU: one category; penalty images from the synthetic source's PNGs
        ("efficient_ad", "image_size=256,steps=2,penalty_images={images}"),
    ],
)
def test_a_fitted_expert_drives_the_condition_and_its_maps_are_cached(
    built, synthetic_root, tmp_path, capsys, monkeypatch, name, settings
):
    pytest.importorskip("anomalib")
    from triad_eval.experts.fitted import FittedExpert

    monkeypatch.setenv("TRIAD_EXPERT_CACHE", str(tmp_path / "cache"))
    args = ["eval", "--model", "chance", "--data", str(built), "--config", "synthetic", "--conditions", "expert"]
    settings = settings.format(images=synthetic_root)
    args += ["--expert", name, "--expert-args", f"pre_trained=false,k_shot=2,{settings}", "--limit", "3"]
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    cached = list((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 1
    rows = [json.loads(line) for line in (tmp_path / "first" / "predictions.jsonl").read_text().splitlines()]
    assert rows and all(r["notes"]["expert"] == name for r in rows)
    assert any(r["notes"]["boxes"] for r in rows)
    config = json.loads((tmp_path / "first" / "config.json").read_text())
    assert config["expert"]["settings"]["pre_trained"] is False and config["expert"]["settings"]["k_shot"] == "2"

    def refit(*_):
        raise AssertionError("the cached maps should have been used")

    monkeypatch.setattr(FittedExpert, "fit_predict", refit)
    assert main([*args, "--out", str(tmp_path / "second")]) == 0
    again = [json.loads(line) for line in (tmp_path / "second" / "predictions.jsonl").read_text().splitlines()]
    assert [r["notes"] for r in again] == [r["notes"] for r in rows]
    capsys.readouterr()


def test_a_pre_trained_backbone_without_network_says_what_to_do(built, tmp_path, capsys, monkeypatch):
    pytest.importorskip("anomalib")
    monkeypatch.setenv("TRIAD_EXPERT_CACHE", str(tmp_path / "cache"))
    args = ["eval", "--model", "chance", "--data", built, "--config", "synthetic", "--conditions", "expert"]
    err = run_error(capsys, [*args, "--expert", "padim", "--out", tmp_path / "run"])
    assert "cannot get the pre-trained resnet18 weights" in err and "use --expert-args pre_trained=false" in err
    assert not (tmp_path / "run").exists()
    assert main([str(a) for a in [*args, "--expert", "efficient_ad", "--out", tmp_path / "run"]]) == 1
    err = capsys.readouterr().err.splitlines()[-1]  # after anomalib's download progress bar
    assert "cannot get the pre-trained teacher weights" in err and "pre_trained=false" in err
    err = run_error(capsys, [*args, "--expert", "efficient_ad", "--expert-args", "pre_trained=false,image_size=128",
                             "--out", tmp_path / "run"])  # fmt: skip
    assert "image_size=128: EfficientAD needs >= 256" in err
    no_images = f"pre_trained=false,steps=1,penalty_images={tmp_path / 'none'}"
    err = run_error(capsys, [*args, "--expert", "efficient_ad", "--expert-args", no_images, "--out", tmp_path / "run"])
    assert "penalty_images=" in err and "no .jpg or .png images there" in err
    err = run_error(capsys, [*args, "--expert", "padim", "--expert-args", "steps=3", "--out", tmp_path / "run"])
    assert "expert padim takes no setting 'steps'" in err
    assert not (tmp_path / "run").exists()


def test_the_expert_as_a_baseline_answers_discrimination_and_location(built, tmp_path, capsys, monkeypatch):
    pytest.importorskip("anomalib")
    monkeypatch.setenv("TRIAD_EXPERT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["eval", "--model", "expert:padim", "--model-args", "pre_trained=false,image_size=64"]
    assert main([*args, "--data", str(built), "--config", "synthetic", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["tasks"] == ["discrimination", "location"]
    metrics = json.loads((out / "metrics.json").read_text())
    discrimination = metrics["tasks"]["discrimination"]["zero_shot"]
    assert discrimination["auroc"] is not None and discrimination["failed"] == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(r["probs"] for r in rows if r["task"] == "discrimination")
    capsys.readouterr()
