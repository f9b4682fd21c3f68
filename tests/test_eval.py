"""triad_eval: runs, conditions, failures, resume after kill -9, shards, metrics, leaderboard."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cot_m
import schemas
from instructiad import processes
from triad_eval.cli import main
from triad_eval.data import open_dataset
from triad_eval.metrics import compute_metrics
from triad_eval.requests import build_requests


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def predictions_of(folder: Path, keep_latency: bool = False) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return rows if keep_latency else [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]


def reference_run(built, tmp_path, capsys) -> Path:
    """A chance run on discrimination, whose predictions other tests replay or tamper with."""
    reference = tmp_path / "reference"
    assert run(capsys, *eval_args(built, reference, "--tasks", "discrimination"))[0] == 0
    return reference


def eval_args(built, out, *extra) -> list:
    return ["eval", "--model", "chance", "--data", built, "--config", "synthetic", "--out", out, *extra]


# --- a run and its files --------------------------------------------------------------------------


def test_a_run_writes_config_predictions_metrics_and_summary(built, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(capsys, *eval_args(built, out, "--conditions", "zero_shot,process"))
    assert code == 0 and "requests" in stdout
    config = json.loads((out / "config.json").read_text())
    manifest = json.loads((built / "manifest.json").read_text())
    assert (
        config["model"] == "chance"
        and config["dataset"]["fingerprint"] == manifest["configs"]["synthetic"]["fingerprint"]
    )
    assert config["dataset"]["template_sets"] == ["default@2.0.0"] and config["seed"] == 0
    assert {"python", "instructiad", "datasets"} <= set(config["packages"])
    rows = predictions_of(out, keep_latency=True)
    required = {"id", "task", "condition", "answer", "raw", "parsed", "probs", "status", "latency_s"}
    assert rows and all(required <= set(r) for r in rows)
    assert {r["condition"] for r in rows} == {"zero_shot", "process"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert schemas.errors(metrics, "metrics") == []
    assert metrics["counts"]["requests"] == len(rows) and metrics["counts"]["failed"] == 0
    assert "process gain" in (out / "summary.txt").read_text()


def test_conditions_build_the_prompts_they_promise(built):
    data = open_dataset(str(built), "synthetic")
    requests, unavailable = build_requests(data, ["discrimination"], ["zero_shot", "process", "one_shot+process"])
    assert unavailable == {}
    first = [r for r in requests if r.id == data.records[0]["id"]]
    zero, process, both = first
    assert [p["type"] for p in zero.messages[0]["content"]] == ["image", "text"]
    annotation = processes.load("synthetic", data.records[0]["category"])
    assert process.messages[0]["content"][0] == {"type": "text", "text": cot_m.process_context(annotation, "short")}
    assert both.condition == "process+one_shot"
    kinds = [p["type"] for p in both.messages[0]["content"]]
    assert kinds == ["text", "text", "image", "text", "image", "text"]
    reference = both.images[0]
    train = open_dataset(str(built), "synthetic", split="train").records
    normals = {r["image_sha256"] for r in train if r["label"] == 0 and r["category"] == data.records[0]["category"]}
    assert reference.sha256 in normals and reference.sha256 != both.images[1].sha256
    again, _ = build_requests(data, ["discrimination"], ["one_shot"])
    assert [r.images[0].sha256 for r in again] == [
        r.images[0].sha256 for r in build_requests(data, ["discrimination"], ["one_shot"])[0]
    ]


def test_scoring_options_gives_probabilities_and_auroc(built, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, *eval_args(built, out, "--scoring", "options", "--tasks", "discrimination"))[0] == 0
    rows = predictions_of(out)
    assert all(r["probs"] and abs(sum(r["probs"].values()) - 1) < 1e-9 and r["raw"] is None for r in rows)
    assert all(r["parsed"] == max(r["probs"], key=r["probs"].get) for r in rows)
    assert json.loads((out / "metrics.json").read_text())["tasks"]["discrimination"]["zero_shot"]["auroc"] is not None


# --- failures and unparsed answers are never scored as answers --------------------------------------


def test_replayed_failures_and_unparsed_answers_are_counted_apart(built, tmp_path, capsys):
    reference = reference_run(built, tmp_path, capsys)
    rows = predictions_of(reference)
    lines = []
    for i, row in enumerate(rows):
        entry = {"id": row["id"], "task": row["task"], "condition": row["condition"], "raw": row["raw"]}
        if i == 0:
            entry = entry | {"raw": None, "error": "timeout after 60 s"}
        if i == 1:
            entry["raw"] = "I am not sure what this image shows."
        lines.append(json.dumps(entry))
    replay = tmp_path / "answers.jsonl"
    replay.write_text("\n".join(lines) + "\n")
    args = [
        "eval",
        "--model",
        f"replay:{replay}",
        "--data",
        built,
        "--config",
        "synthetic",
        "--tasks",
        "discrimination",
    ]
    code, stdout, err = run(capsys, *args, "--out", tmp_path / "replayed")
    assert code == 1 and "1 request(s) failed" in err and "WARNING    1 request(s) failed" in stdout
    replayed = predictions_of(tmp_path / "replayed")
    assert (
        replayed[0]["status"] == "failed"
        and replayed[0]["parsed"] is None
        and replayed[0]["error"].startswith("timeout")
    )
    assert replayed[1]["status"] == "unparsed"
    metrics = json.loads((tmp_path / "replayed" / "metrics.json").read_text())
    group = metrics["tasks"]["discrimination"]["zero_shot"]
    assert (group["n"], group["scored"], group["failed"], group["unparsed"]) == (len(rows), len(rows) - 1, 1, 1)
    code, _, _ = run(capsys, *args, "--out", tmp_path / "allowed", "--allow-failures")
    assert code == 0


# --- metrics against hand-computed values -------------------------------------------------------------


def _prediction(i, label, parsed, status="ok", p_yes=None, condition="zero_shot", category="x"):
    answer = "A" if label == "anomaly" else "B"
    return {
        "id": f"r{i}", "task": "discrimination", "condition": condition, "category": category, "label": label,
        "options": {"A": "Yes", "B": "No"}, "answer": answer, "parsed": parsed, "status": status,
        "probs": None if p_yes is None else {"A": p_yes, "B": 1 - p_yes},
    }  # fmt: skip


def test_metrics_match_hand_computed_values():
    base = [
        _prediction(1, "anomaly", "A", p_yes=0.9),  # TP
        _prediction(2, "anomaly", "B", p_yes=0.4),  # FN
        _prediction(3, "anomaly", None, "unparsed", p_yes=0.6, category="y"),  # unparsed: wrong
        _prediction(4, "normal", "B", p_yes=0.2),  # TN
        _prediction(5, "normal", "A", p_yes=0.7, category="y"),  # FP
        _prediction(6, "normal", None, "failed"),  # never scored
    ]
    process = [
        _prediction(1, "anomaly", "A", condition="process"),
        _prediction(2, "anomaly", "A", condition="process"),
        _prediction(3, "anomaly", "A", condition="process", category="y"),
        _prediction(4, "normal", "B", condition="process"),
        _prediction(5, "normal", "A", condition="process", category="y"),
    ]
    metrics = compute_metrics(base + process)
    m = metrics["tasks"]["discrimination"]["zero_shot"]
    assert (m["n"], m["scored"], m["failed"], m["unparsed"]) == (6, 5, 1, 1)
    assert m["accuracy"] == 0.4 and m["unparsed_rate"] == 0.2
    assert m["recall"] == round(1 / 3, 6) and m["specificity"] == 0.5 and m["precision"] == 0.5
    assert m["balanced_accuracy"] == round((1 / 3 + 1 / 2) / 2, 6) and m["f1"] == 0.4
    assert m["auroc"] == round(4 / 6, 6) and m["ap"] == round((1 + 2 / 3 + 3 / 4) / 3, 6)
    assert m["per_category"] == {"x": {"n": 3, "accuracy": round(2 / 3, 6)}, "y": {"n": 2, "accuracy": 0.0}}
    assert m["macro_accuracy"] == round(1 / 3, 6)
    assert metrics["average"]["zero_shot"] == m["balanced_accuracy"]
    assert metrics["counts"] == {"requests": 11, "ok": 9, "unparsed": 1, "failed": 1}
    gain = metrics["process_gain"]["discrimination"]["process vs zero_shot"]
    assert gain["n_pairs"] == 5 and gain["delta"] == 0.4
    assert (gain["only_base_correct"], gain["only_process_correct"]) == (0, 2) and gain["mcnemar_p"] == 0.5
    assert gain["ci95"][0] <= 0.4 <= gain["ci95"][1]


# --- resume after kill -9, shards --------------------------------------------------------------------


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(built, tmp_path, capsys):
    straight = tmp_path / "straight"
    assert run(capsys, *eval_args(built, straight, "--conditions", "zero_shot,process"))[0] == 0
    total = len(predictions_of(straight))

    killed = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "triad_eval",
        *map(str, eval_args(built, killed, "--conditions", "zero_shot,process")),
    ]
    process = subprocess.Popen(
        [*command, "--model-args", "latency_ms=15", "--batch-size", "1"], stderr=subprocess.DEVNULL
    )
    cache = killed / "cache.sqlite"
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline and process.poll() is None:
        if cache.exists():
            try:
                done = sqlite3.connect(cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            if done >= total // 3:
                break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < done < total and not (killed / "predictions.jsonl").exists()

    resume = eval_args(built, killed, "--conditions", "zero_shot,process", "--model-args", "latency_ms=15", "--resume")
    code, stdout, err = run(capsys, *resume)
    assert code == 0, err
    from_cache = int(stdout.split(" response(s) from the cache, ")[0].split()[-1])
    sent = int(stdout.split(" response(s) from the cache, ")[1].split()[0])
    assert from_cache >= done and from_cache + sent == total
    assert sqlite3.connect(cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0] == total
    assert predictions_of(killed) == predictions_of(straight)
    assert (killed / "metrics.json").read_bytes() == (straight / "metrics.json").read_bytes()


def test_shards_merge_into_the_unsharded_run(built, tmp_path, capsys):
    whole = tmp_path / "whole"
    assert run(capsys, *eval_args(built, whole, "--conditions", "zero_shot,one_shot"))[0] == 0
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i, folder in enumerate(shards):
        assert run(capsys, *eval_args(built, folder, "--conditions", "zero_shot,one_shot", "--shard", f"{i}/3"))[0] == 0
    sizes = [len(predictions_of(f)) for f in shards]
    assert all(sizes) and sum(sizes) == len(predictions_of(whole))
    assert run(capsys, "merge", *shards, "--out", tmp_path / "merged")[0] == 0
    assert predictions_of(tmp_path / "merged") == predictions_of(whole)
    assert (tmp_path / "merged" / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()
    code, _, err = run(capsys, "merge", *shards[:2], "--out", tmp_path / "partial")
    assert code == 1 and "need each of 0/n .. n-1/n exactly once" in err and not (tmp_path / "partial").exists()
    code, _, err = run(capsys, "merge", shards[0], shards[1], shards[1], "--out", tmp_path / "twice")
    assert code == 1 and f"{shards[1]} and {shards[1]} are both shard 1/3 of one evaluation" in err
    assert run(capsys, "leaderboard", *shards, "--out", tmp_path / "board")[0] == 0
    joined = json.loads((tmp_path / "board" / "leaderboard.json").read_text())["entries"]
    assert len(joined) == 1 and len(joined[0]["runs"]) == 3
    assert joined[0]["average"] == json.loads((whole / "metrics.json").read_text())["average"]


# --- the leaderboard ---------------------------------------------------------------------------------


def test_leaderboard_files_rank_runs_and_keep_datasets_apart(built, synthetic_root, tmp_path, capsys):
    from instructiad.export import build_dataset

    other = tmp_path / "other"
    build_dataset([("synthetic", synthetic_root)], other, max_side=48)  # other bytes, other fingerprint
    folders = []
    for model, data in (("chance", built), ("majority", built), ("always:A", other)):
        folder = tmp_path / model.replace(":", "_")
        args = ["eval", "--model", model, "--data", data, "--config", "synthetic", "--out", folder]
        assert run(capsys, *args, "--conditions", "zero_shot,process", "--scoring", "generate")[0] == 0
        folders.append(folder)
    code, _, _ = run(capsys, "leaderboard", *folders, "--out", tmp_path / "board")
    assert code == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert schemas.errors(board, "leaderboard") == []
    fingerprints = [e["dataset"]["fingerprint"] for e in board["entries"]]
    assert len(set(fingerprints)) == 2 and fingerprints == sorted(fingerprints)
    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    assert markdown.count("\n## ") == 2 and "| 1 | majority |" in markdown
    page = (tmp_path / "board" / "leaderboard.html").read_text()
    assert page.count("data:image/png;base64,") >= 4
    assert 'src="http' not in page and "<script" not in page  # self-contained, no network


# --- bad input: a clear error, exit 1, nothing overwritten ---------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "gpt-99"], "unknown model spec 'gpt-99'"),
        (["--tasks", "smell"], "unknown task 'smell'"),
        (["--conditions", "two_shot"], "unknown condition 'two_shot'"),
        (["--conditions", "zero_shot+process"], "zero_shot cannot be combined"),
        (["--config", "mvtec_ad"], "no config 'mvtec_ad'"),
        (["--split", "validation"], "has no split 'validation'"),
        (["--model-args", "temperature=0.2"], "chance takes no setting 'temperature'"),
        (["--shard", "3/3"], "--shard 3/3"),
    ],
)
def test_bad_eval_input(built, tmp_path, capsys, extra, message):
    args = ["--model", "chance", "--data", built, "--config", "synthetic", "--out", tmp_path / "run"]
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    code, _, err = run(capsys, "eval", *args)
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_predictions_file_with_duplicate_or_unknown_ids(built, tmp_path, capsys):
    reference = reference_run(built, tmp_path, capsys)
    lines = (reference / "predictions.jsonl").read_text().splitlines()
    duplicate = tmp_path / "duplicate.jsonl"
    duplicate.write_text("\n".join([*lines, lines[0]]) + "\n")
    args = ["eval", "--data", built, "--config", "synthetic", "--tasks", "discrimination"]
    code, _, err = run(capsys, *args, "--model", f"replay:{duplicate}", "--out", tmp_path / "a")
    assert code == 1 and f"{duplicate}:{len(lines) + 1}: duplicate prediction for" in err
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(
        "\n".join([*lines, json.dumps({"id": "nope", "task": "discrimination", "condition": "zero_shot", "raw": "A"})])
    )
    code, _, err = run(capsys, *args, "--model", f"replay:{unknown}", "--out", tmp_path / "b")
    assert code == 1 and "1 prediction(s) for requests this evaluation does not have (e.g. nope" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_resume_refuses_another_model_dataset_or_settings(built, synthetic_root, tmp_path, capsys):
    from instructiad.export import build_dataset

    out = tmp_path / "run"
    assert run(capsys, *eval_args(built, out, "--tasks", "discrimination"))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    other = tmp_path / "other"
    build_dataset([("synthetic", synthetic_root)], other, max_side=48)
    cases = [
        (
            ["eval", "--model", "majority", "--data", built, "--config", "synthetic", "--tasks", "discrimination"],
            "model",
        ),
        (
            ["eval", "--model", "chance", "--data", other, "--config", "synthetic", "--tasks", "discrimination"],
            "dataset",
        ),
        (["eval", "--model", "chance", "--data", built, "--config", "synthetic", "--tasks", "location"], "tasks"),
        (
            [
                "eval",
                "--model",
                "chance",
                "--data",
                built,
                "--config",
                "synthetic",
                "--tasks",
                "discrimination",
                "--seed",
                "7",
            ],
            "seed",
        ),
    ]
    for argv, field in cases:
        code, _, err = run(capsys, *argv, "--out", out, "--resume")
        assert code == 1 and f"--resume with a different {field}" in err, err
    code, _, err = run(capsys, *eval_args(built, out, "--tasks", "discrimination"))
    assert code == 1 and "already exists and is not empty; pass --resume" in err
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("not a run")
    code, _, err = run(capsys, *eval_args(built, tmp_path / "stray", "--resume"))
    assert code == 1 and "--resume needs an earlier run's config.json" in err
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix != ".sqlite"}
    assert after == before


def test_demo_writes_a_leaderboard(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo", "--size", 64)
    assert code == 0 and "# InstructIAD leaderboard" in out and "| majority |" in out and "| chance |" in out
    assert "audit passed: worst blind strategy vs chance" in out
    for name in ("leaderboard.json", "leaderboard.md", "leaderboard.html"):
        assert (tmp_path / "demo" / "leaderboard" / name).is_file()
    assert {p.name for p in (tmp_path / "demo" / "runs").iterdir()} == {"chance", "majority", "expert_padim"}
    assert "| 3 | expert:padim |" in out  # two question types only: ranked after the five-type entries
    assert "| zero-shot | process gain |" in out and "| blind | visual gain |" in out  # the headline, no_image beside


def test_the_leaderboard_keeps_the_newer_of_two_identical_runs(built, tmp_path, capsys):
    older, newer = tmp_path / "older", tmp_path / "newer"
    for folder in (older, newer):
        assert run(capsys, *eval_args(built, folder, "--tasks", "discrimination"))[0] == 0
    code, _, err = run(capsys, "merge", older, newer, "--out", tmp_path / "merged")
    assert code == 1 and f"{older} and {newer} are both runs of one evaluation" in err
    code, _, err = run(capsys, "leaderboard", older, newer, "--out", tmp_path / "board")
    assert code == 0 and f"{newer} repeats {older}" in err and "kept the newest" in err
    entries = json.loads((tmp_path / "board" / "leaderboard.json").read_text())["entries"]
    assert [e["runs"] for e in entries] == [[str(newer)]]


def test_categories_scores_only_those_records(built, tmp_path, capsys):
    records = open_dataset(str(built), "synthetic").records
    category = records.column("category")[-1]  # the split's last category
    out = tmp_path / "held-out"
    args = eval_args(built, out, "--tasks", "discrimination", "--categories", category, "--limit", 3)
    code, _, _ = run(capsys, *args)
    assert code == 0
    rows = predictions_of(out)
    assert {r["category"] for r in rows} == {category} and len({r["id"] for r in rows}) == 3  # limit counts there
    assert json.loads((out / "config.json").read_text())["categories"] == [category]
    bad = tmp_path / "bad"
    code, _, err = run(capsys, *eval_args(built, bad, "--categories", f"{category},bottle"))
    assert code == 1 and err.strip() == (
        f"triad: error: --categories bottle: the test split has no such category (it has: "
        f"{', '.join(sorted(set(records.column('category'))))})"
    )
    assert not bad.exists()
