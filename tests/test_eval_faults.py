"""Faults of `triad eval` (issue 12): concurrent runs, damaged caches and datasets, resume, replay and shards."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from triad_eval.adapters import load_adapter
from triad_eval.adapters.replay import Replay
from triad_eval.cache import cache_key
from triad_eval.cli import main
from triad_eval.data import open_dataset
from triad_eval.experts import MapFolder
from triad_eval.requests import build_requests


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def eval_args(built, out, *extra) -> list:
    return ["eval", "--model", "chance", "--data", built, "--config", "synthetic", "--out", out, *extra]


def predictions_of(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]


def one_line_error(code: int, err: str) -> str:
    assert code == 1 and err.startswith("triad: error: ") and err.count("\n") == 1, err
    return err


# --- 5: one run at a time in a run folder ----------------------------------------------------------


def test_a_second_run_on_a_folder_in_use_refuses_and_sends_nothing(built, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [*map(str, eval_args(built, out, "--tasks", "discrimination")), "--model-args", "latency_ms=200"]
    command = [sys.executable, "-m", "triad_eval", *argv, "--batch-size", "1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache, deadline = out / "cache.sqlite", time.time() + 60
    try:
        while time.time() < deadline and first.poll() is None:  # wait until it is sending
            try:
                if sqlite3.connect(cache).execute("SELECT COUNT(*) FROM responses").fetchone()[0]:
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.02)
        second = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=120)
        overlapped = first.poll() is None
    finally:
        stdout, _ = first.communicate(timeout=120)
    err = one_line_error(second.returncode, second.stderr)
    assert str(out) in err and "another triad eval is writing to this run folder" in err
    assert overlapped, "the first run ended before the second started; make it slower"
    total = len(predictions_of(out))
    assert first.returncode == 0 and f"0 response(s) from the cache, {total} sent" in stdout
    # the lock went with the first run: a third one finds everything in the cache
    code, stdout, _ = run(capsys, *argv, "--resume")
    assert code == 0 and f"{total} response(s) from the cache, 0 sent" in stdout


# --- 7: a damaged cache ----------------------------------------------------------------------------


def test_resume_with_a_damaged_cache_says_so_in_one_line(built, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(capsys, *eval_args(built, out, "--tasks", "discrimination"))[0] == 0
    for leftover in out.glob("cache.sqlite-*"):
        leftover.unlink()
    (out / "cache.sqlite").write_bytes(b"this is not an SQLite database\n" * 200)
    err = one_line_error(*run(capsys, *eval_args(built, out, "--tasks", "discrimination", "--resume"))[::2])
    assert f"{out / 'cache.sqlite'}: the response cache is damaged" in err and "start over" in err


# --- 8 and 13e: a damaged dataset folder -----------------------------------------------------------


def _truncate(path: Path, built: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _replace_with_train(path: Path, built: Path) -> None:  # a valid Parquet file, other bytes
    shutil.copyfile(built / "data" / "synthetic" / "train-00000-of-00001.parquet", path)


@pytest.mark.parametrize(
    ("split", "damage", "conditions", "problem"),
    [
        ("test", lambda path, built: path.unlink(), "zero_shot", "missing"),
        ("test", _truncate, "zero_shot", "size"),
        ("test", _replace_with_train, "zero_shot", "size"),
        ("train", lambda path, built: path.unlink(), "one_shot", "missing"),
    ],
    ids=["test-deleted", "test-truncated", "test-other-bytes", "train-deleted"],
)
def test_a_damaged_shard_is_named_in_one_line(built, tmp_path, capsys, split, damage, conditions, problem):
    copy = tmp_path / "dataset"
    shutil.copytree(built, copy)
    shard = copy / "data" / "synthetic" / f"{split}-00000-of-00001.parquet"
    damage(shard, built)
    out = tmp_path / "run"
    err = one_line_error(*run(capsys, *eval_args(copy, out, "--conditions", conditions))[::2])
    assert f"{shard}: {problem}" in err and f"triad verify {copy}" in err
    assert not out.exists()


# --- 12: --resume of a run killed before its folder existed ----------------------------------------


def test_resume_on_a_missing_or_empty_folder_starts_the_run(built, tmp_path, capsys):
    straight = tmp_path / "straight"
    assert run(capsys, *eval_args(built, straight, "--tasks", "discrimination"))[0] == 0
    empty, locked_only = tmp_path / "empty", tmp_path / "killed-after-mkdir"
    empty.mkdir()
    locked_only.mkdir()
    (locked_only / ".lock").touch()
    for out in (tmp_path / "missing", empty, locked_only):
        code, _, err = run(capsys, *eval_args(built, out, "--tasks", "discrimination", "--resume"))
        assert code == 0, err
        assert predictions_of(out) == predictions_of(straight)
        assert json.loads((out / "config.json").read_text())["model"] == "chance"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a run\n")
    err = one_line_error(*run(capsys, *eval_args(built, other, "--resume"))[::2])
    assert "--resume needs an earlier run's config.json" in err


# --- 13d: replay, sharded ----------------------------------------------------------------------------


def test_replay_runs_in_shards_that_merge_into_the_replayed_run(built, tmp_path, capsys):
    reference = tmp_path / "reference"
    assert run(capsys, *eval_args(built, reference, "--tasks", "discrimination"))[0] == 0
    replay = ["--model", f"replay:{reference / 'predictions.jsonl'}", "--tasks", "discrimination"]
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i, folder in enumerate(shards):
        code, _, err = run(capsys, *eval_args(built, folder, *replay, "--shard", f"{i}/3"))
        assert code == 0, err
    assert run(capsys, "merge", *shards, "--out", tmp_path / "merged")[0] == 0
    assert predictions_of(tmp_path / "merged") == predictions_of(reference)

    lines = (reference / "predictions.jsonl").read_text().splitlines()
    stranger = json.dumps({"id": "nope", "task": "discrimination", "condition": "zero_shot", "raw": "A"})
    for extra, message in ((lines[0], "duplicate prediction for"), (stranger, "1 prediction(s) for requests")):
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n".join([*lines, extra]) + "\n")
        argv = eval_args(built, tmp_path / "bad", "--model", f"replay:{bad}", "--tasks", "discrimination")
        err = one_line_error(*run(capsys, *argv, "--shard", "1/3")[::2])
        assert message in err and not (tmp_path / "bad").exists()


# --- scale: adapter parameters once per run; shard before building ---------------------------------


def test_cache_params_are_computed_once_per_run_and_keys_do_not_change(built, tmp_path, capsys, monkeypatch):
    reference = tmp_path / "reference"
    assert run(capsys, *eval_args(built, reference, "--tasks", "discrimination,location"))[0] == 0
    spec = f"replay:{reference / 'predictions.jsonl'}"
    calls = []
    original = Replay.cache_params
    monkeypatch.setattr(Replay, "cache_params", lambda self: calls.append(1) or original(self))
    out = tmp_path / "replayed"
    assert run(capsys, *eval_args(built, out, "--model", spec, "--tasks", "discrimination,location"))[0] == 0
    assert len(calls) == 1
    monkeypatch.undo()

    data = open_dataset(str(built), "synthetic")
    requests, _ = build_requests(data, ["discrimination", "location"], ["zero_shot"])
    adapter = load_adapter(spec)
    assert adapter.cache_params() == {
        "file_sha256": hashlib.sha256((reference / "predictions.jsonl").read_bytes()).hexdigest()
    }
    expected = {cache_key(adapter, "generate", r) for r in requests}
    stored = {key for (key,) in sqlite3.connect(out / "cache.sqlite").execute("SELECT key FROM responses")}
    assert stored == expected and len(expected) == len(requests)


def test_a_shard_builds_only_its_own_records(built, maps, tmp_path, capsys, monkeypatch):
    conditions = ["--conditions", "zero_shot,expert", "--expert", f"maps:{maps}", "--tasks", "discrimination"]
    whole = tmp_path / "whole"
    assert run(capsys, *eval_args(built, whole, *conditions))[0] == 0
    built_for: list[str] = []
    original = MapFolder.regions
    monkeypatch.setattr(MapFolder, "regions", lambda self, i, size: built_for.append(i) or original(self, i, size))
    shards = [tmp_path / f"shard{i}" for i in range(3)]
    for i, folder in enumerate(shards):
        built_for.clear()
        assert run(capsys, *eval_args(built, folder, *conditions, "--shard", f"{i}/3"))[0] == 0
        mine = {p["id"] for p in predictions_of(folder)}
        assert mine and set(built_for) == mine
    assert run(capsys, "merge", *shards, "--out", tmp_path / "merged")[0] == 0
    assert predictions_of(tmp_path / "merged") == predictions_of(whole)
    assert (tmp_path / "merged" / "metrics.json").read_bytes() == (whole / "metrics.json").read_bytes()
