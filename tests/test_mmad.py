"""MMAD in triad_eval: its mmad.json built as the `mmad` config, its answers files replayed, its table.

The fixture is MMAD's exact format (tests/layouts.py: ``make_mmad``): query images of two
datasets (DS-MVTec: bottle, cable; VisA: candle) with every MMAD question type, Object
Structure and Details among them, and one normal template per class. The expected table is
worked out by hand below from MMAD's rules.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from instructiad.card_metadata import metadata_problems
from instructiad.export import build_dataset
from instructiad.sources import mmad, resolve_source
from tests.layouts import MMAD_QUESTIONS, MMAD_TEMPLATES, make_mmad
from triad_eval.cli import main
from triad_eval.data import open_dataset
from triad_eval.interop import detect_format
from triad_eval.mmad import parse_letter

# What the model answered (gpt_answer), per image, in the order of its questions in mmad.json.
# "" is a request that failed in MMAD's run, "The crack." an answer in which MMAD read no letter:
# MMAD's scorer leaves both out.
GIVEN = {
    "DS-MVTec/bottle/image/broken_large/000.png": ["A", "B", "A", "A", "D"],  # AD ok, DC ok, DL wrong, DD ok, DA ok
    "DS-MVTec/bottle/image/good/000.png": ["A", "A", "B", ""],  # AD wrong, OC ok, OS ok, OD left out
    "DS-MVTec/cable/image/cut_inner_insulation/000.png": ["A", "C", "B", "The crack.", "B"],  # ok ok ok out wrong
    "DS-MVTec/cable/image/good/000.png": ["B", "B", "B"],  # AD ok, OC ok, OA wrong
    "VisA/candle/test/bad/000.png": ["B", "A", "D", "A", "B"],  # AD wrong, DC ok, DL ok, DD wrong, DA ok
    "VisA/candle/test/good/000.png": ["B", "A", "A", "A"],  # AD ok, OC ok, OS ok, OD wrong
    "VisA/candle/test/good/001.png": ["B", "B", "D"],  # AD ok, OC wrong, OD ok
}

# MMAD's table of GIVEN, by hand (Object Structure/Details/Analysis are one column):
# DS-MVTec: AD = (normal 1/2 + anomalous 2/2) / 2 = 0.75; DC 2/2; DL 1/2; DD 1/1 (cable's left
#   out); DA 1/2; OC 2/2; OA = bottle OS ok, bottle OD out, cable OA wrong = 1/2.
#   Average = (0.75 + 1 + 0.5 + 1 + 0.5 + 1 + 0.5) / 7 = 0.75; overkill 1 - 1/2, miss 1 - 1.
# VisA: AD = (normal 2/2 + anomalous 0/1) / 2 = 0.5; DC 1; DL 1; DD 0; DA 1; OC 1/2;
#   OA = OS ok, OD wrong, OD ok = 2/3. Average = (0.5 + 1 + 1 + 0 + 1 + 0.5 + 2/3) / 7 = 2/3;
#   overkill 0, miss 1.
# Average row: the mean of the two datasets, column by column; MMAD's headline (0.75 + 2/3) / 2.
EXPECTED = {
    "DS-MVTec": ([0.75, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5], 0.75, 0.5, 0.0),
    "VisA": ([0.5, 1.0, 1.0, 0.0, 1.0, 0.5, 2 / 3], 2 / 3, 0.0, 1.0),
    "Average": ([0.625, 1.0, 0.75, 0.5, 0.75, 0.75, (0.5 + 2 / 3) / 2], (0.75 + 2 / 3) / 2, 0.25, 0.5),
}
# MMAD's summary.py would differ in one cell: removing a dropped row while iterating also hides
# the row after it, so cable's Defect Analysis (after its Defect Description, left out) would not
# count and DS-MVTec's Defect Analysis would read 1/1. triad_eval/mmad.py says why we do not copy that.


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def answers_file(path: Path, given: dict[str, list[str]] = GIVEN, questions: dict = MMAD_QUESTIONS) -> Path:
    """An answers file as MMAD's query scripts write it (their question object included)."""
    rows = []
    for image, asked in questions.items():
        for number, ((mmad_type, options, correct), answer) in enumerate(zip(asked, given[image], strict=True), 1):
            text = "".join(f"{letter}. {option}\n" for letter, option in options.items())
            rows.append(
                {
                    "image": image,
                    "question": {"type": "text", "text": f"Question {number}: ... \n{text}", "options": options},
                    "question_type": mmad_type,
                    "correct_answer": correct,
                    "gpt_answer": answer,
                }
            )
    path.write_text(json.dumps(rows, indent=4), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mmad_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mmad") / "MMAD"
    make_mmad(root)
    return root


@pytest.fixture(scope="module")
def mmad_built(mmad_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mmad_built") / "dataset"
    build_dataset([("mmad", mmad_root)], out)
    return out


# --- MMAD as a source -----------------------------------------------------------------------------


def test_build_keeps_mmad_questions_and_tasks_verbatim(mmad_root, mmad_built):
    assert resolve_source(None, mmad_root)[0].name == "mmad"  # detected by its mmad.json
    test = open_dataset(str(mmad_built), "mmad", "test").records
    assert [r["id"] for r in test] == [f"mmad/{i.split('/')[1]}/test/{i}" for i in MMAD_QUESTIONS]  # mmad.json order
    entries = json.loads((mmad_root / "mmad.json").read_text())
    for record in test:
        image = mmad.mmad_image(record["id"])
        assert record["image"]["path"] == image and record["category"] == image.split("/")[1]
        assert record["label"] == (0 if "/good/" in image else 1)
        assert record["template_set"] == "mmad" and record["template_version"].startswith("sha256:")
        made = [
            (
                mmad.TASKS[q["type"]],
                q["question"],
                {o["letter"]: o["text"] for o in q["options"]},
                q["answer"],
                json.loads(q["facts"])["mmad_type"],
            )
            for q in record["questions"]
        ]
        source = [
            (c["type"], c["Question"], c["Options"], c["Answer"], c["type"]) for c in entries[image]["conversation"]
        ]
        assert made == source  # MMAD's types, questions, options in their order and answers, as they are
        assert [list(q["options"][0]) for q in record["questions"]] == [["letter", "text"]] * len(made)
    train = open_dataset(str(mmad_built), "mmad", "train").records
    assert sorted(r["id"] for r in train) == sorted(f"mmad/{c}/train/{p}" for c, p in MMAD_TEMPLATES.items())
    assert all(r["label"] == 0 and r["questions"] == [] for r in train)  # references for one_shot, no questions
    card = DatasetCard.load(mmad_built / "README.md")
    assert metadata_problems(card.data.to_dict()) == [] and mmad.CITATION in card.text
    assert card.data.to_dict()["source_datasets"] == ["extended|mmad"]


def test_replayed_answers_file_gives_mmads_table(mmad_built, tmp_path, capsys):
    answers = answers_file(tmp_path / "answers_1_shot_fixture-model.json")
    assert detect_format(answers) == "mmad"
    args = ["eval", "--data", mmad_built, "--config", "mmad", "--conditions", "one_shot"]
    code, _, err = run(capsys, *args, "--model", f"replay:{answers}", "--out", tmp_path / "strict")
    assert code == 1 and "2 request(s) failed" in err  # MMAD's left-out answers are not scored here either
    code, out, _ = run(capsys, *args, "--model", f"replay:{answers}", "--out", tmp_path / "run", "--allow-failures")
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    table = metrics["mmad"]["one_shot"]
    assert table["types"] == list(mmad.TABLE_TYPES) and table["dropped"] == 2
    for name, (columns, average, overkill, miss) in EXPECTED.items():
        row = table["average"] if name == "Average" else table["datasets"][name]
        assert list(row["accuracy"].values()) == pytest.approx(columns, abs=1e-6), name
        assert (row["average"], row["overkill"], row["miss"]) == pytest.approx((average, overkill, miss), abs=1e-6)
    assert (
        table["datasets"]["DS-MVTec"]["n"]["Object Analysis"] == 2
        and table["datasets"]["VisA"]["n"]["Anomaly Detection"] == 3
    )
    assert metrics["average"]["one_shot"] == pytest.approx((0.75 + 2 / 3) / 2, abs=1e-6)  # ranks by MMAD's Average
    assert metrics["tasks"]["object_details"]["one_shot"]["failed"] == 1
    assert "MMAD's table, one_shot" in out and "Average                  62.5" in out

    # the format named explicitly reads the same; the leaderboard shows MMAD's columns
    run(capsys, *args, "--model", f"replay:{answers}", "--model-args", "format=mmad", "--out", tmp_path / "named",
        "--allow-failures")  # fmt: skip
    assert json.loads((tmp_path / "named" / "metrics.json").read_text())["mmad"] == metrics["mmad"]
    assert run(capsys, "leaderboard", tmp_path / "run", "--out", tmp_path / "board")[0] == 0
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    assert board["entries"][0]["mmad"]["one_shot"]["average"] == pytest.approx(0.708333, abs=1e-6)
    assert (
        "| one_shot | 62.5 | 100.0 | 75.0 | 50.0 | 75.0 | 75.0 | 58.3 | 70.8 |"
        in (tmp_path / "board" / "leaderboard.md").read_text()
    )


def test_a_live_run_on_mmad_is_scored_by_mmads_parser(mmad_built, tmp_path, capsys):
    # always:B answers "B": every normal image's Anomaly Detection (No) and no anomalous one's
    code, _, _ = run(capsys, "eval", "--model", "always:B", "--data", mmad_built, "--config", "mmad",
                     "--out", tmp_path / "run")  # fmt: skip
    assert code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["tasks"] == list(mmad.TASKS) and set(metrics["tasks"]) == set(mmad.TASKS)  # MMAD's by default
    table = metrics["mmad"]["zero_shot"]
    assert table["datasets"]["VisA"]["accuracy"]["Anomaly Detection"] == 0.5  # (2/2 + 0/1) / 2
    assert table["datasets"]["DS-MVTec"]["accuracy"]["Defect Localization"] == 0.5  # B right for cable only
    code, _, err = run(capsys, "eval", "--model", "chance", "--data", mmad_built, "--config", "mmad",
                       "--tasks", "discrimination", "--out", tmp_path / "cot")  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "config mmad has no such questions" in err


def test_mmads_answer_parsing():
    options = {"A": "A scratch on the rim.", "B": "No defect.", "C": "A broken cap."}
    assert parse_letter("B", options) == "B"
    assert parse_letter("Answer: B. A is wrong", options) == "A"  # the last stand-alone A-E, as MMAD reads it
    assert parse_letter("the answer is (C)", options) == "C"
    assert parse_letter("I see a broken cap", options) == "C"  # no letter: the closest option's text
    assert parse_letter("Bottle", options) in options  # no cutoff: some option always wins


# --- bad input ------------------------------------------------------------------------------------


def _tampered(root: Path, change) -> Path:
    entries = json.loads((root / "mmad.json").read_text())
    change(entries)
    (root / "mmad.json").write_text(json.dumps(entries), encoding="utf-8")
    return root


def _escape(entries: dict) -> None:
    entries["DS-MVTec/bottle/image/broken_large/../../../../../outside.png"] = entries.popitem()[1]


def _no_conversation(entries: dict) -> None:
    del entries["VisA/candle/test/good/000.png"]["conversation"]


def _unknown_type(entries: dict) -> None:
    entries["VisA/candle/test/good/000.png"]["conversation"][1]["type"] = "Object Colour"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (None, "not a mmad layout (expected mmad.json at the root"),
        (_escape, "image path 'DS-MVTec/bottle/image/broken_large/../../../../../outside.png' escapes the source root"),
        (_no_conversation, "VisA/candle/test/good/000.png: entry has no conversation"),
        (_unknown_type, "VisA/candle/test/good/000.png: question 2 has unknown type 'Object Colour'"),
    ],
)
def test_bad_mmad_sources(tmp_path, capsys, change, message):
    root = tmp_path / "MMAD"
    make_mmad(root, {image: MMAD_QUESTIONS[image] for image in list(MMAD_QUESTIONS)[4:6]})
    (tmp_path / "outside.png").write_bytes((root / "VisA/candle/test/good/000.png").read_bytes())
    if change is None:
        (root / "mmad.json").unlink()
    else:
        _tampered(root, change)
    code, _, err = run(capsys, "build", "--source", f"mmad={root}", "--out", tmp_path / "out")
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_bad_answers_files_name_the_first_row_they_cannot_map(mmad_built, tmp_path, capsys):
    good = json.loads(answers_file(tmp_path / "answers_0_shot_m.json").read_text())
    cases = {
        "unknown image": ({**good[3], "image": "GoodsAD/drink_can/test/good/000.png"}, "row 4: image 'GoodsAD/"),
        "malformed": ({k: v for k, v in good[3].items() if k != "gpt_answer"}, "row 4: not an MMAD answer (needs"),
        "other answer": ({**good[3], "correct_answer": "C"}, "row 4: correct_answer 'C', but the dataset's is 'A'"),
        "repeated": (good[0], "row 4: repeats row 1"),
    }
    for name, (row, message) in cases.items():
        path = tmp_path / name.replace(" ", "_") / "answers_0_shot_m.json"
        path.parent.mkdir()
        path.write_text(json.dumps([*good[:3], row, *good[4:]]), encoding="utf-8")
        code, _, err = run(capsys, "eval", "--model", f"replay:{path}", "--data", mmad_built, "--config", "mmad",
                           "--out", tmp_path / name / "run")  # fmt: skip
        assert code == 1 and err.count("\n") == 1 and message in err, (name, err)
        assert not (tmp_path / name / "run").exists()
    unnamed = tmp_path / "answers.json"
    unnamed.write_text(json.dumps(good), encoding="utf-8")
    code, _, err = run(capsys, "eval", "--model", f"replay:{unnamed}", "--model-args", "format=mmad",
                       "--data", mmad_built, "--config", "mmad", "--out", tmp_path / "unnamed")  # fmt: skip
    assert code == 1 and "cannot tell the shots from the name" in err
