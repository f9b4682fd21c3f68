"""CONTRIBUTING.md, "Extend the benchmark": each how-to done for real, so that it cannot rot.

Every test makes the source edits its how-to lists with ``monkeypatch`` (nothing leaks into
other tests) and then runs the real pipeline: a build with ``build_dataset`` and a
``triad eval`` that reports the addition in metrics.json. A step the how-to forgets, or a
place that stops reading the shared table, makes its test fail.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

import cot_m
import schemas
from cot_m import engine, questions
from instructiad.export import build_dataset
from instructiad.features import FIELD_DOCS
from instructiad.sources import mmad
from triad_eval import conditions, metrics
from triad_eval.audit import audit, dataset_items
from triad_eval.cli import main
from triad_eval.conditions import Condition
from triad_eval.data import EvalDataset, open_dataset
from triad_eval.requests import QUERY_LEAD, build_requests


def triad(capsys, *argv) -> int:
    """Run the `triad` command in this process (so that the test's patches apply)."""
    code = main([str(a) for a in argv])
    capsys.readouterr()
    return code


def eval_run(capsys, data: Path, out: Path, *extra) -> tuple[dict, list[dict]]:
    """A `triad eval` of the chance baseline; its metrics.json and predictions.jsonl."""
    code = triad(capsys, "eval", "--model", "chance", "--data", data, "--config", "synthetic", "--out", out, *extra)
    assert code == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return json.loads((out / "metrics.json").read_text()), rows


def patch_schema(monkeypatch, name: str, change) -> None:
    """``schemas/<name>.schema.json`` as ``change`` edits it, for this test only."""
    schema, original = copy.deepcopy(schemas.load(name)), schemas.load
    change(schema)
    monkeypatch.setattr(schemas, "load", lambda wanted: schema if wanted == name else original(wanted))


def parquet_digests(folder: Path) -> dict[str, str]:
    """sha256 of each Parquet shard of a built dataset folder."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("data/*/*.parquet"))}


# --- the static lists of question types --------------------------------------------------------


def test_static_lists_of_question_types_name_exactly_cot_m_question_types():
    """The schema enum and the Features description cannot import the tuple; this keeps them true."""
    assert cot_m.QUESTION_TYPES is questions.QUESTION_TYPES
    enum = schemas.load("metrics")["properties"]["tasks"]["propertyNames"]["enum"]
    assert tuple(enum) == cot_m.QUESTION_TYPES, "update schemas/metrics.schema.json (tasks.propertyNames.enum)"
    listed = re.search(r"type \(([^)]*)\)", FIELD_DOCS["questions"])
    assert listed, "FIELD_DOCS['questions'] should list the types as 'type (a, b, ...)'"
    described = tuple(t.strip() for t in listed.group(1).split(","))
    assert described == cot_m.QUESTION_TYPES, "update FIELD_DOCS['questions'] in instructiad/features.py"


# --- add a question type ----------------------------------------------------------------------------

COUNT_TEMPLATE = "How many separate defects does {{ product.this }} {{ product.name | lower_first }} show?\n"


def _count(inputs: questions._Inputs) -> questions.Question:
    """The toy type: how many separate defect regions the image shows (one box per region)."""
    record = inputs.record
    if record["label"] != "anomaly":
        raise questions.Skip("the image shows no defect")
    if not record["boxes"]:
        raise questions.Skip("the record has no defect mask")
    regions = len(record["boxes"])
    return questions._ask(inputs, "count", str(regions), ["1", "2", "3", "4", "5"], {"regions": regions})


def test_add_a_question_type(monkeypatch, request, tmp_path, capsys, synthetic_root, built):
    # 1. cot_m/questions.py: the name, its builder, new rules that ask it
    monkeypatch.setattr(questions, "QUESTION_TYPES", (*questions.QUESTION_TYPES, "count"))
    monkeypatch.setitem(questions.BUILDERS, 3, questions.BUILDERS[2] | {"count": _count})
    # 2. cot_m/templates/: the old set kept as default@2.0.0; default becomes 2.1.0, rules 3, with the stem
    root = tmp_path / "templates"
    shutil.copytree(engine.TEMPLATES, root)
    shutil.copytree(root / "default", root / "default@2.0.0")
    manifest = root / "default" / "set.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("version: 2.0.0", "version: 2.1.0").replace("rules: 2", "rules: 3"))
    (root / "default" / "questions" / "count").mkdir()
    (root / "default" / "questions" / "count" / "0.j2").write_text(COUNT_TEMPLATE, encoding="utf-8")
    monkeypatch.setattr(engine, "TEMPLATES", root)
    request.addfinalizer(engine.template_set.cache_clear)  # no set loaded from `root` outlives the test
    # 3. the static lists (the metrics schema's enum; FIELD_DOCS is text only)
    patch_schema(monkeypatch, "metrics", lambda s: s["properties"]["tasks"]["propertyNames"]["enum"].append("count"))

    out = tmp_path / "dataset"
    build_dataset([("synthetic", synthetic_root)], out)
    data = open_dataset(str(out), "synthetic", columns=["id", "label", "boxes", "questions", "skipped"])
    asked = 0
    for record in data.records:
        count = [q for q in record["questions"] if q["type"] == "count"]
        if record["label"] == 0:  # normal
            assert not count and {"type": "count", "reason": "the image shows no defect"} in record["skipped"]
            continue
        (question,) = count
        options = {o["letter"]: o["text"] for o in question["options"]}
        assert options[question["answer"]] == str(len(record["boxes"]))
        assert question["question"].startswith("How many separate defects does th")
        asked += 1
    assert asked > 0

    # `triad eval` asks every type by default (but MMAD's, which only the mmad config has), and
    # metrics.json reports the new one
    run_metrics, rows = eval_run(capsys, out, tmp_path / "run")
    assert list(run_metrics["tasks"]) == [t for t in questions.QUESTION_TYPES if t not in mmad.TASKS]
    assert run_metrics["tasks"]["count"]["zero_shot"]["n"] == asked == sum(r["task"] == "count" for r in rows)
    assert triad(capsys, "eval", "--model", "chance", "--data", out, "--config", "synthetic",
                 "--out", tmp_path / "only", "--tasks", "count") == 0  # fmt: skip

    # `triad audit` checks it too
    full = open_dataset(str(out), "synthetic", columns=["id", "category", "process_id", "questions", "skipped"])
    report = audit(*dataset_items(full.records, full.annotation))
    assert report["types"]["count"]["count"] == asked

    # the set before the new type still builds the same bytes
    again = tmp_path / "again"
    build_dataset([("synthetic", synthetic_root)], again, templates="default@2.0.0")
    assert parquet_digests(again) == parquet_digests(built)


# --- add an evaluation condition --------------------------------------------------------------------


class Grid(Condition):
    """The toy condition: names the 3x3 grid cells right after the query image."""

    name = "grid"
    TEXT = "The image is divided into a 3x3 grid: top left, top center, ..., bottom right."

    def after(self, record: dict, data: EvalDataset, seed: int) -> list[dict]:
        return [{"type": "text", "text": self.TEXT}]

    def note(self, record: dict) -> dict:
        return {"grid": "3x3"}


def test_add_a_condition(monkeypatch, tmp_path, capsys, built):
    # triad_eval/conditions.py: the class, and its place in CONDITIONS (before no_image)
    *others, no_image = conditions.CONDITIONS.values()
    monkeypatch.setattr(conditions, "CONDITIONS", {c.name: c for c in (*others, Grid, no_image)})
    data = open_dataset(str(built), "synthetic")
    requests, unavailable = build_requests(data, ["location"], ["zero_shot", "grid+one_shot", "grid+no_image"])
    assert unavailable == {}
    assert [r.condition for r in requests[:3]] == ["zero_shot", "one_shot+grid", "grid+no_image"]
    zero, both, blind = requests[:3]
    grid = {"type": "text", "text": Grid.TEXT}
    content = both.messages[0]["content"]
    assert [p["type"] for p in content] == ["text", "image", "text", "image", "text", "text"]
    assert content[2]["text"] == QUERY_LEAD and content[3]["image"].sha256 == zero.images[0].sha256
    assert content[4] == grid and both.notes == {"grid": "3x3"}
    assert blind.messages[0]["content"] == [grid, zero.messages[0]["content"][-1]]
    assert conditions.sighted("grid+no_image") == "grid" and conditions.is_blind("grid+no_image")

    run_metrics, rows = eval_run(
        capsys, built, tmp_path / "run", "--tasks", "location", "--conditions", "zero_shot,grid"
    )  # fmt: skip
    assert list(run_metrics["tasks"]["location"]) == ["zero_shot", "grid"]
    on_grid = [r for r in rows if r["condition"] == "grid"]
    assert on_grid and all(r["notes"] == {"grid": "3x3"} for r in on_grid)
    assert run_metrics["tasks"]["location"]["grid"]["n"] == len(on_grid)


# --- add a metric ---------------------------------------------------------------------------------


def option_a_rate(task: str, scored: list[dict]) -> float | None:
    """The toy metric: the share of answers that picked option A (a letter bias)."""
    return round(sum(p["parsed"] == "A" for p in scored) / len(scored), 6) if scored else None


def test_add_a_metric(monkeypatch, tmp_path, capsys, built):
    # triad_eval/metrics.py: one entry in CELL_METRICS
    monkeypatch.setitem(metrics.CELL_METRICS, "option_a_rate", option_a_rate)
    prediction = {"id": "r", "task": "location", "condition": "zero_shot", "category": "c", "label": "anomaly",
                  "options": {"A": "top left", "B": "center"}, "answer": "A", "parsed": "A", "probs": None,
                  "status": "ok"}  # fmt: skip
    cell = metrics.compute_metrics([prediction])["tasks"]["location"]["zero_shot"]
    assert cell["option_a_rate"] == 1.0
    # without its schema property the run would stop: metrics.json must match the schema
    problems = schemas.errors(metrics.compute_metrics([prediction]), "metrics")
    assert any("option_a_rate" in problem for problem in problems)
    # schemas/metrics.schema.json: one property in $defs/group
    patch_schema(monkeypatch, "metrics", lambda s: s["$defs"]["group"]["properties"].update(
        option_a_rate={"$ref": "#/$defs/rate"}))  # fmt: skip

    run_metrics, rows = eval_run(
        capsys, built, tmp_path / "run", "--tasks", "discrimination,location", "--conditions", "zero_shot,process"
    )
    for task, by_condition in run_metrics["tasks"].items():
        for condition, numbers in by_condition.items():
            mine = [r for r in rows if r["task"] == task and r["condition"] == condition and r["status"] != "failed"]
            expected = sum(r["parsed"] == "A" for r in mine) / len(mine)
            assert numbers["option_a_rate"] == pytest.approx(expected, abs=1e-6)
    assert len(run_metrics["tasks"]) == 2 and all(len(c) == 2 for c in run_metrics["tasks"].values())
