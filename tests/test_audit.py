"""`triad audit`: blind strategies against chance, on annotations and on built datasets."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cot_m.balance import CELL_SLACK, Balancer
from cot_m.questions import CELLS, LETTERS
from triad_eval.audit import Item, audit
from triad_eval.cli import main


def item(record_id: str, question_type: str, options: list[str], answer: int, defect: str | None = None) -> Item:
    return Item(record_id, "src", "cat", question_type, tuple(options), answer, None, defect)


def test_strategies_score_what_they_should_on_hand_made_questions():
    # the answer is always the longest option: longest_option is right every time, shortest never
    texts = ["a much longer text", "short", "mid text"]
    items = [
        item(f"src/cat/test/{i}.png", "appearance", texts[i % 3 :] + texts[: i % 3], (3 - i % 3) % 3, f"d{i}")
        for i in range(30)
    ]
    report = audit(items, Counter())
    row = report["types"]["appearance"]
    assert row["strategies"]["longest_option"] == 100.0 and row["strategies"]["shortest_option"] == 0.0
    assert row["chance"] == pytest.approx(33.3) and row["worst_gap"] == pytest.approx(66.7)
    assert report["failures"] and report["failures"][0].startswith("appearance: longest_option 100.0%")


def test_discrimination_is_scored_by_balanced_accuracy():
    # 3 of 4 images are anomalous: always "Yes" is right 75% of the time, but balanced accuracy is 50%
    items = [item(f"src/cat/test/{i}.png", "discrimination", ["Yes", "No"], 0 if i % 4 else 1) for i in range(40)]
    row = audit(items, Counter())["types"]["discrimination"]
    assert row["chance"] == 50.0 and row["strategies"]["longest_option"] == 50.0
    assert row["strategies"]["majority"] == 50.0


def test_ties_count_as_a_random_choice():
    items = [item(f"src/cat/test/{i}.png", "defect_type", ["ab", "cd", "ef", "gh"], i % 4, f"d{i}") for i in range(40)]
    row = audit(items, Counter())["types"]["defect_type"]
    assert row["strategies"]["longest_option"] == 25.0 and row["worst_gap"] <= 5


def test_the_annotations_pass_with_template_set_2_and_fail_with_1(capsys, tmp_path):
    assert main(["audit", "--json", str(tmp_path / "audit.json")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("audit of the annotations with template set default 2.0.0")
    assert "passed: every blind strategy within 5 points of chance" in out
    report = json.loads((tmp_path / "audit.json").read_text())
    assert set(report["types"]) == {"discrimination", "defect_type", "appearance", "root_cause"}  # no masks here
    assert all(row["worst_gap"] <= 5 for row in report["types"].values())
    assert report["types"]["root_cause"]["count"] >= 200

    assert main(["audit", "--templates", "default@1.0.0"]) == 1
    out = capsys.readouterr().out
    assert "FAILED: a blind strategy beats chance by more than 5 points" in out
    assert "root_cause: " in out


def test_a_built_dataset_is_audited_from_its_own_questions(built, capsys, tmp_path):
    from datasets import load_dataset

    code = main(["audit", str(built), "--config", "synthetic", "--max-gap", "100", "--json", str(tmp_path / "a.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"audit of {built} (config synthetic, split test)")
    report = json.loads((tmp_path / "a.json").read_text())
    questions = Counter(q["type"] for r in load_dataset(str(built), "synthetic", split="test") for q in r["questions"])
    assert {t: row["count"] for t, row in report["types"].items()} == dict(questions)
    assert "common_cell" in report["types"]["location"]["strategies"]
    assert report["skipped"]["location"]["the image shows no defect"] == 3 * 1  # one good test image per category


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "/no/such/folder"], "/no/such/folder: no such dataset folder"),
        (["audit", "--max-gap", "-1"], "--max-gap -1: must be zero or more points"),
        (["audit", "--templates", "fancy"], "unknown template set 'fancy'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(capsys, args, message):
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_an_unknown_config_is_named(built, capsys):
    assert main(["audit", str(built), "--config", "visa"]) == 1
    assert "no config 'visa'" in capsys.readouterr().err


def test_location_balance_keeps_every_cell_near_chance():
    """Defects that sit in the centre two times in five: the balancer offers the centre as a
    wrong cell wherever it can and skips what it cannot balance."""
    answers, offered, skipped = Counter(), Counter(), 0
    balance = Balancer()
    for i in range(400):
        cell = "center" if i % 5 < 2 else CELLS[i % 9]
        options = [cell, *[c for c in CELLS if c != cell][:3]]
        question = {
            "type": "location",
            "question": "Where?",
            "options": [{"letter": LETTERS[k], "text": t} for k, t in enumerate(options)],
            "answer": "A",
            "facts": json.dumps({"region": cell}),
        }
        record = balance({"id": f"src/cat/test/{i:03d}.png", "regions": [cell], "questions": [question], "skipped": []})
        if not record["questions"]:
            skipped += 1
            assert record["skipped"][0]["reason"].startswith(f"balance: the {cell} cell")
            continue
        made = record["questions"][0]
        texts = [o["text"] for o in made["options"]]
        assert texts[LETTERS.index(made["answer"])] == cell and len(set(texts)) == 4
        answers[cell] += 1
        offered.update(texts)
    assert 0 < skipped < 200
    assert max(answers[c] / offered[c] for c in answers) <= 0.25 + CELL_SLACK + 0.02
