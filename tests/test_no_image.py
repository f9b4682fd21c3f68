"""The no_image condition (the visual-dependency check) and the leaderboard's blind column."""

from __future__ import annotations

import dataclasses
import json

import pytest

import schemas
from triad_eval.adapters import load_adapter
from triad_eval.cache import cache_key
from triad_eval.cli import main
from triad_eval.conditions import NoImage, OneShot, ProcessContext, is_blind, parse_condition, sighted
from triad_eval.data import open_dataset
from triad_eval.experts import parse_expert
from triad_eval.requests import build_requests

TASKS = ["discrimination", "defect_type", "root_cause"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def eval_args(built, out, model="chance", *extra) -> list:
    return ["eval", "--model", model, "--data", built, "--config", "synthetic", "--out", out, *extra]


def texts(request) -> list[dict]:
    return [p for m in request.messages for p in m["content"] if p["type"] != "image"]


def by_key(requests) -> dict:
    return {r.key: r for r in requests}


# --- requests ------------------------------------------------------------------------------------------


def test_no_image_removes_every_image_and_keeps_the_text_word_for_word(built, maps):
    data = open_dataset(str(built), "synthetic")
    expert = parse_expert(f"maps:{maps}", {"crop": "32"})
    pairs = [
        ("zero_shot", "no_image"),
        ("process+one_shot", "process+one_shot+no_image"),
        ("expert", "expert+no_image"),
    ]
    conditions = [c for pair in pairs for c in pair]
    requests, unavailable = build_requests(data, TASKS, conditions, limit=6, expert=expert)
    assert unavailable == {}
    found = by_key(requests)
    blind = [r for r in requests if r.condition in dict(pairs).values()]
    assert len(blind) == len(requests) // 2 and {r.condition for r in blind} == set(dict(pairs).values())
    for request in blind:
        assert request.images == []
        assert all(p["type"] == "text" for m in request.messages for p in m["content"])
        real = found[(request.id, request.task, sighted(request.condition))]
        assert real.images  # the image-bearing twin has its images ...
        assert texts(request) == texts(real)  # ... and the very same text, nothing about a missing image
        assert (request.options, request.answer, request.notes) == (real.options, real.answer, real.notes)
    # zero_shot's text is the question alone; no_image's is exactly that
    zero = next(r for r in requests if r.condition == "zero_shot")
    assert by_key(requests)[(zero.id, zero.task, "no_image")].messages[0]["content"] == [zero.messages[0]["content"][1]]
    anomalous = next(r for r in blind if r.condition == "expert+no_image" and r.notes.get("boxes"))
    assert anomalous.images == [] and any(p.get("roi") for p in anomalous.messages[0]["content"])  # text kept


def test_no_image_combines_in_canonical_order_and_not_with_zero_shot():
    name, parts = parse_condition("no_image+one_shot+process")
    assert name == "process+one_shot+no_image"
    assert [type(p) for p in parts] == [ProcessContext, OneShot, NoImage]
    assert parse_condition("no_image")[0] == "no_image" and parse_condition("no_image+process")[0] == "process+no_image"
    with pytest.raises(Exception, match="zero_shot cannot be combined"):
        parse_condition("zero_shot+no_image")
    assert is_blind("process+no_image") and not is_blind("process+one_shot")
    assert sighted("no_image") == "zero_shot" and sighted("process+one_shot+no_image") == "process+one_shot"
    assert sighted("process") == "process"


def test_cache_keys_of_blind_prompts_differ_from_the_image_bearing_ones(built):
    data = open_dataset(str(built), "synthetic")
    conditions = ["zero_shot", "no_image", "process", "process+no_image", "one_shot", "one_shot+no_image"]
    requests, _ = build_requests(data, TASKS, conditions, limit=4)
    adapter = load_adapter("chance")
    keys = [cache_key(adapter, "generate", r) for r in requests]
    assert len(set(keys)) == len(keys)
    # two records can ask the same question: without images the record id keeps their keys apart
    blind = next(r for r in requests if r.condition == "no_image")
    twin = dataclasses.replace(blind, id="another-record")
    assert twin.prompt_json() == blind.prompt_json()
    assert cache_key(adapter, "generate", twin) != cache_key(adapter, "generate", blind)
    sighted_one = next(r for r in requests if r.condition == "zero_shot")  # keys with images are as before
    assert cache_key(adapter, "generate", dataclasses.replace(sighted_one, id="x")) == keys[requests.index(sighted_one)]
    for request in requests:
        if is_blind(request.condition):
            assert '"image"' not in request.prompt_json()


def test_a_blind_run_goes_through_the_cli_and_replays(built, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, *eval_args(built, out), "--conditions", "no_image+process,zero_shot,no_image")
    assert code == 0, err
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["condition"] for r in rows[:3]] == ["process+no_image", "zero_shot", "no_image"]
    assert all(r["status"] == "ok" for r in rows) and "no_image" in stdout
    replay = tmp_path / "replay"
    argv = eval_args(built, replay, f"replay:{out / 'predictions.jsonl'}")
    code, _, err = run(capsys, *argv, "--conditions", "process+no_image,zero_shot,no_image")
    assert code == 0, err
    replayed = [json.loads(line) for line in (replay / "predictions.jsonl").read_text().splitlines()]
    assert [r["parsed"] for r in replayed] == [r["parsed"] for r in rows]


def test_openai_adapter_sends_text_only_under_no_image(built, tmp_path, capsys, monkeypatch):
    from tests.openai_stub import OpenAIStub

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIStub() as stub:
        argv = eval_args(built, tmp_path / "run", "openai:stub-model", "--base-url", stub.url)
        code, _, err = run(capsys, *argv, "--tasks", "discrimination", "--conditions", "no_image", "--limit", "3")
        assert code == 0, err
        assert len(stub.bodies) == 3
        for body in stub.bodies:
            parts = [p for m in body["messages"] for p in m["content"]]
            assert parts and all(p["type"] == "text" for p in parts)


# --- models that need the image refuse the condition ---------------------------------------------------


@pytest.mark.parametrize("conditions", ["no_image", "zero_shot,process+no_image"])
def test_a_vision_expert_refuses_no_image_with_one_line_and_writes_nothing(built, tmp_path, capsys, conditions):
    out = tmp_path / "run"
    args = ["--model-args", "pre_trained=false", "--conditions", conditions]
    code, _, err = run(capsys, *eval_args(built, out, "expert:padim"), *args)
    blind = conditions.split(",")[-1]
    assert code == 1 and err.count("\n") == 1, err
    assert f"expert:padim cannot answer without an image; drop condition {blind}" in err
    assert not out.exists()


def test_triad_needs_the_image_and_the_others_do_not():
    from baselines.experts import ExpertModel
    from baselines.simple import Chance, Majority
    from triad_eval.adapters.huggingface import HuggingFace
    from triad_eval.adapters.openai_api import OpenAICompatible
    from triad_eval.adapters.replay import Replay
    from triad_eval.adapters.triad import Triad

    assert Triad.needs_image and ExpertModel.needs_image
    assert not any(a.needs_image for a in (HuggingFace, OpenAICompatible, Replay, Chance, Majority))


def test_an_hf_model_answers_text_only_batches_and_mixed_ones(built, tmp_path, capsys):
    pytest.importorskip("transformers")
    from tests import tiny_models

    model = tiny_models.qwen2_vl(tmp_path / "qwen2_vl")
    results = {}
    for size in ("1", "4"):
        out = tmp_path / f"run{size}"
        argv = [*eval_args(built, out, f"hf:{model}"), "--conditions", "zero_shot,no_image", "--limit", "3"]
        code, _, err = run(capsys, *argv, "--tasks", "discrimination,root_cause", "--batch-size", size)
        assert code == 0, err
        results[size] = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        assert {r["condition"] for r in results[size]} == {"zero_shot", "no_image"}
        assert all(r["status"] in ("ok", "unparsed") and isinstance(r["raw"], str) for r in results[size])
    assert [r["raw"] for r in results["1"]] == [r["raw"] for r in results["4"]]


# --- the leaderboard -----------------------------------------------------------------------------------


def test_the_leaderboard_shows_each_models_blind_score_beside_its_real_one(built, tmp_path, capsys):
    chance, majority = tmp_path / "chance", tmp_path / "majority"
    conditions = "zero_shot,process,no_image,process+no_image"
    assert run(capsys, *eval_args(built, chance), "--conditions", conditions, "--scoring", "options")[0] == 0
    assert run(capsys, *eval_args(built, majority, "majority"), "--conditions", "zero_shot,process")[0] == 0
    code, _, err = run(capsys, "leaderboard", chance, majority, "--out", tmp_path / "board")
    assert code == 0, err
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert schemas.errors(board, "leaderboard") == []
    entries = {e["model"]: e for e in board["entries"]}
    mine = entries["chance"]
    for task, by_condition in mine["tasks"].items():
        for real, blind in (("zero_shot", "no_image"), ("process", "process+no_image")):
            pair = mine["blind"]["tasks"][task][real]
            assert pair["real"] == by_condition[real] and pair["blind"] == by_condition[blind]
            assert pair["visual_gain"] == pytest.approx(by_condition[real] - by_condition[blind], abs=1e-6)
        assert set(mine["blind"]["tasks"][task]) == {"zero_shot", "process"}  # blind ones only beside them
    average = mine["blind"]["average"]["zero_shot"]
    assert (average["real"], average["blind"]) == (mine["average"]["zero_shot"], mine["average"]["no_image"])
    other = entries["majority"]["blind"]
    assert other["average"]["zero_shot"] == {"real": entries["majority"]["average"]["zero_shot"], "blind": None,
                                             "visual_gain": None}  # fmt: skip
    assert all(p["blind"] is None for by_condition in other["tasks"].values() for p in by_condition.values())

    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    headline = next(line for line in markdown.splitlines() if line.startswith("| rank |")).split(" | ")
    assert headline[-2:] == ["blind", "visual gain |"]
    table = next(line for line in markdown.splitlines() if line.startswith("| rank |") and "avg" in line).split(" | ")
    assert table.index("avg zero_shot blind") == table.index("avg zero_shot") + 1
    assert table.index("discrimination process blind") == table.index("discrimination process") + 1
    assert "avg no_image" not in table and "discrimination no_image" not in table
    rows = {line.split(" | ")[1]: line.split(" | ") for line in markdown.splitlines() if line.startswith("| 1 |")}
    rows |= {line.split(" | ")[1]: line.split(" | ") for line in markdown.splitlines() if line.startswith("| 2 |")}
    column = table.index("avg zero_shot blind")
    assert rows["chance"][column] == f"{100 * mine['average']['no_image']:.1f}"
    assert rows["majority"][column] == "-"
    assert "Visual gain" in markdown
    gains = [line for line in markdown.splitlines() if line.startswith("| majority | generate | zero_shot |")]
    assert gains and set(gains[0].strip("| ").split(" | ")[3:]) == {"-"}
    page = (tmp_path / "board" / "leaderboard.html").read_text()
    assert "zero_shot<br>blind" in page and "<h3>Visual gain</h3>" in page


def test_a_blind_score_never_ranks_a_model(built, tmp_path, capsys):
    from triad_eval.leaderboard import _score

    row = {"average": {"zero_shot": 0.4, "no_image": 0.9}}
    assert _score(row) == 0.4
    only = tmp_path / "only"
    assert run(capsys, *eval_args(built, only), "--conditions", "no_image", "--tasks", "discrimination")[0] == 0
    assert run(capsys, "leaderboard", only, "--out", tmp_path / "board")[0] == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    pair = board["entries"][0]["blind"]["average"]["zero_shot"]  # shown beside a real score it lacks
    assert pair["real"] is None and pair["blind"] is not None and pair["visual_gain"] is None
