"""CoT-M: questions that match the ground truth, conversations, the sandbox, and skips."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
from datasets import load_dataset

import cot_m
from cot_m.engine import TemplateError, TemplateSet, template_set
from instructiad import processes
from instructiad.export import build_dataset
from instructiad.masks import GRID_CELLS
from triad_eval.cli import main

QUESTION_TYPES = ("discrimination", "defect_type", "location", "appearance", "root_cause")


@pytest.fixture(scope="module")
def records(built):
    return list(load_dataset(str(built), "synthetic", split="test")) + list(
        load_dataset(str(built), "synthetic", split="train")
    )


V1_COT_M_SHA256 = "fc7091de17a9345e7295fdbc2b665a3418523f92633b4b48e73accf7418960ab"
"""The CoT-M fields of the fixture's synthetic build with template set default@1.0.0: what
release 0.1.0 built (eff58dbf...), except the root-cause options of the two steel-sheet
inclusion records, which changed when cold rolling joined that defect's causes."""


def test_every_applicable_question_type_is_made_or_skipped_with_a_reason(records):
    for record in records:
        made = [q["type"] for q in record["questions"]]
        skipped = {s["type"]: s["reason"] for s in record["skipped"]}
        assert sorted(made + [t for t in skipped if t != "conversation"]) == sorted(QUESTION_TYPES), record["id"]
        if record["label"] == 0:
            assert made == ["discrimination"]
            assert skipped["location"] == "the image shows no defect"
        else:
            assert {"discrimination", "defect_type", "appearance"} <= set(made), record["id"]
            if "location" in skipped:
                assert skipped["location"].startswith(("the defect spreads over several regions", "balance: the"))
            if "root_cause" in skipped:
                assert skipped["root_cause"].startswith(("no choice of wrong options", "fewer than 2 honest"))
    anomalous = [r for r in records if r["label"] == 1]
    assert sum("location" in [q["type"] for q in r["questions"]] for r in anomalous) >= len(anomalous) // 3
    assert sum("root_cause" in [q["type"] for q in r["questions"]] for r in anomalous) >= len(anomalous) // 2


def test_every_answer_matches_the_ground_truth(records):
    for record in records:
        annotation = processes.load("synthetic", record["category"])
        for question in record["questions"]:
            texts = {o["letter"]: o["text"] for o in question["options"]}
            assert len(set(texts.values())) == len(texts) >= 2
            answer = texts[question["answer"]]
            facts = json.loads(question["facts"])
            kind = question["type"]
            if kind == "discrimination":
                assert answer == ("Yes" if record["label"] == 1 else "No")
            elif kind in ("defect_type", "appearance"):
                defect = annotation.defects[record["defect_type"]]
                assert facts["defect"] == record["defect_type"]
                assert answer == (defect.name if kind == "defect_type" else defect.appearance)
            elif kind == "location":
                assert answer == record["location"] == facts["region"]
                assert not set(texts.values()) - {answer} & set(record["regions"])  # no other touched cell
            elif kind == "root_cause":
                defect = annotation.defects[record["defect_type"]]
                assert facts["step"] in defect.caused_by and answer == annotation.step(facts["step"]).name
                wrong = set(texts.values()) - {answer}
                named = {annotation.step(s).name for s in annotation.steps_named(defect.mechanism)}
                assert not wrong & ({annotation.step(s).name for s in defect.caused_by} | named)


def test_answer_letters_are_balanced_per_split_and_type(records):
    for split in ("train", "test"):
        of_split = [r for r in records if f"/{split}/" in r["id"]]
        for kind in QUESTION_TYPES:
            questions = [q for r in of_split for q in r["questions"] if q["type"] == kind]
            for size in {len(q["options"]) for q in questions}:
                letters = Counter(q["answer"] for q in questions if len(q["options"]) == size)
                counts = [letters[letter] for letter in "ABCD"[:size]]
                assert max(counts) - min(counts) <= 1, (split, kind, size, counts)


def test_options_are_shuffled_per_record_deterministically(records, built):
    again = load_dataset(str(built), "synthetic", split="test")
    assert [r["questions"] for r in again] == [r["questions"] for r in records[: again.num_rows]]


def test_template_set_1_0_0_still_builds_what_it_built(tmp_path, synthetic_root):
    import hashlib

    build_dataset([("synthetic", synthetic_root)], tmp_path / "v1", templates="default@1.0.0")
    digest = hashlib.sha256()
    for split in ("train", "test"):
        for r in load_dataset(str(tmp_path / "v1"), "synthetic", split=split):
            fields = ("id", "questions", "skipped", "conversation_llava", "conversation_messages")
            digest.update(
                json.dumps({k: r[k] for k in (*fields, "template_set", "template_version")}, sort_keys=True).encode()
            )
    assert digest.hexdigest() == V1_COT_M_SHA256


def test_conversations_state_only_the_records_facts(records):
    annotations = {c: processes.load("synthetic", c) for c in ("steel_sheet", "glazed_tile", "woven_fabric")}
    for record in records:
        human, gpt = record["conversation_llava"]
        assert human["from"] == "human" and human["value"].startswith("<image>\n") and gpt["from"] == "gpt"
        lines = dict(line.split(": ", 1) for line in gpt["value"].splitlines())
        annotation = annotations[record["category"]]
        if record["label"] == 0:
            assert list(lines) == ["Process", "Expected appearance", "Observation", "Judgement", "Answer"]
            assert lines["Judgement"].startswith("differences like these would be acceptable variation")
            assert lines["Answer"].startswith("no")
            continue
        assert list(lines) == [
            "Process", "Expected appearance", "Observation", "Defect", "Judgement", "Likely cause", "Answer"
        ]  # fmt: skip
        regions = len(record["boxes"])
        observed = lines["Observation"]
        assert observed.startswith(
            "the image shows " + ("one anomalous region" if regions == 1 else f"{regions} separate")
        )
        assert (
            f"in the {record['location']} of the image" in observed
            and f"in the {record['location']} of" in lines["Answer"]
        )
        for cell in (c for row in GRID_CELLS for c in row if c != record["location"]):
            assert f"the {cell} of the image" not in gpt["value"]
        defect = annotation.defects[record["defect_type"]]
        assert lines["Defect"].startswith(defect.name.lower()) and "Expected appearance" in lines["Defect"]
        others = [d.name.lower() for d in annotation.defects.values() if d.key != defect.key]
        stated = " ".join(lines[k] for k in ("Observation", "Judgement", "Answer")).lower()
        assert not [name for name in others if name in stated]
        cause = annotation.step(defect.caused_by[0])
        assert lines["Likely cause"].startswith(f"{cause.name} is the most likely origin")
        # the cause sentence explains the chosen step only
        explained = lines["Likely cause"].split("Other steps")[0]
        assert set(annotation.steps_named(explained)) <= {cause.id}
        user, assistant = record["conversation_messages"]
        assert user["content"][1]["text"] == human["value"].removeprefix("<image>\n")
        assert assistant["content"][0]["text"] == gpt["value"]
    assert {r["template_set"] for r in records} == {"default"} and {r["template_version"] for r in records} == {"2.0.0"}


def test_process_context_short_and_full():
    bottle = processes.load("mvtec_ad", "bottle")
    short, full = cot_m.process_context(bottle, "short"), cot_m.process_context(bottle, "full")
    assert "1. Batch mixing and melting; 2. Gob forming" in short and "Not defects:" in short
    assert bottle.process[2].description in full and bottle.product_description in full
    assert len(short) < len(full)
    with pytest.raises(TemplateError, match="short or full"):
        cot_m.process_context(bottle, "medium")


# --- skips: never invent a question -----------------------------------------------------------


def bottle_record(**overrides) -> dict:
    record = {
        "id": "mvtec_ad/bottle/test/broken_small/000.png",
        "source": "mvtec_ad",
        "category": "bottle",
        "label": "anomaly",
        "defect_types": ["broken_small"],
        "sub_types": [],
        "location": "top",
        "regions": ["top"],
        "location_share": 1.0,
    }
    return record | overrides


def skipped(fields: dict) -> dict[str, str]:
    return {s["type"]: s["reason"] for s in fields["skipped"]}


def test_a_category_with_one_defect_type_skips_defect_type_and_appearance():
    bottle = processes.load("mvtec_ad", "bottle")
    thin = dataclasses.replace(bottle, defects={"broken_small": bottle.defects["broken_small"]})
    reasons = skipped(cot_m.annotate(bottle_record(), thin))
    assert reasons["defect_type"] == reasons["appearance"] == "the category has fewer than two defect types"


def test_a_defect_every_step_can_cause_skips_root_cause():
    bottle = processes.load("mvtec_ad", "bottle")
    every_step = tuple(s.id for s in bottle.process)
    everywhere = dataclasses.replace(bottle.defects["broken_small"], caused_by=every_step, mechanisms={})
    annotation = dataclasses.replace(bottle, defects={**bottle.defects, "broken_small": everywhere})
    assert skipped(cot_m.annotate(bottle_record(), annotation, template_set("default", "1.0.0")))["root_cause"] == (
        "every process step can cause this defect"
    )
    reason = skipped(cot_m.annotate(bottle_record(), annotation))["root_cause"]
    assert reason == "fewer than 2 honest wrong options (steps that cannot cause it)"


def test_several_defects_in_one_image_have_no_single_answer():
    bottle = processes.load("mvtec_ad", "bottle")
    fields = cot_m.annotate(bottle_record(defect_types=["broken_small", "contamination"]), bottle)
    reasons = skipped(fields)
    for kind in ("defect_type", "appearance", "root_cause"):
        assert reasons[kind] == "several defects in one image: no single answer"
    defect_line = next(
        line for line in fields["conversation_llava"][1]["value"].splitlines() if line.startswith("Defect:")
    )
    assert defect_line.startswith("Defect: chipped rim and foreign matter inside.")  # the conversation covers both


def test_a_spread_out_defect_skips_location_and_an_unknown_defect_skips_the_rest():
    bottle = processes.load("mvtec_ad", "bottle")
    reasons = skipped(cot_m.annotate(bottle_record(location_share=0.3, regions=["top", "center"]), bottle))
    assert reasons["location"] == "the defect spreads over several regions (largest holds 30%)"
    reasons = skipped(cot_m.annotate(bottle_record(defect_types=["bad"]), bottle))
    assert reasons["defect_type"] == reasons["conversation"] == "defect 'bad' is not in the process annotation"
    reasons = skipped(cot_m.annotate(bottle_record(), None))
    assert reasons["conversation"] == "the category has no process annotation"


# --- the sandbox and template sets ---------------------------------------------------------------


def template_set_with(tmp_path, text: str) -> TemplateSet:
    root = tmp_path / "sets"
    folder = root / "mine"
    (folder / "questions" / "discrimination").mkdir(parents=True)
    (folder / "set.yaml").write_text("name: mine\nversion: 0.1.0\n")
    (folder / "questions" / "discrimination" / "0.j2").write_text(text)
    return TemplateSet("mine", root=root)


def test_a_template_that_reads_a_missing_field_fails_loudly(tmp_path):
    templates = template_set_with(tmp_path, "Is the {{ product.nickname }} defective?")
    with pytest.raises(TemplateError, match=r"discrimination/0\.j2: reads a missing field .*nickname"):
        cot_m.annotate(bottle_record(), processes.load("mvtec_ad", "bottle"), templates)


@pytest.mark.parametrize(
    "text",
    ["{{ product.__class__.__mro__ }}", "{{ ''.__class__.__subclasses__() }}", "{{ cycler.__init__.__globals__ }}"],
)
def test_a_template_that_reaches_outside_the_sandbox_is_blocked(tmp_path, text):
    templates = template_set_with(tmp_path, text)
    with pytest.raises(TemplateError, match=r"discrimination/0\.j2: (blocked by the sandbox|reads a missing field)"):
        cot_m.annotate(bottle_record(), processes.load("mvtec_ad", "bottle"), templates)


def test_unknown_template_set_or_version(tmp_path, capsys, synthetic_root):
    with pytest.raises(TemplateError, match=r"unknown template set 'fancy' .*known: default"):
        TemplateSet("fancy")
    with pytest.raises(TemplateError, match=r"template set 'default' is version 2\.0\.0, not 3\.0\.0"):
        TemplateSet("default", "3.0.0")
    assert TemplateSet("default", "1.0.0").rules == 1 and TemplateSet("default").rules == 2
    out = tmp_path / "out"
    code = main(["build", "--source", f"synthetic={synthetic_root}", "--out", str(out), "--templates", "default@3.0.0"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "not 3.0.0" in err and not out.exists()
    assert main(["render", "--source", "mvtec_ad", "--category", "bottle", "--templates", "fancy"]) == 1


def test_build_records_the_template_set(built):
    report = json.loads((built / "build_report.json").read_text())
    assert report["options"]["template_set"] == "default" and report["options"]["template_version"] == "2.0.0"
    assert "template set `default` version `2.0.0`" in (built / "README.md").read_text()


def test_render_prints_every_template_for_a_category(capsys):
    assert main(["render", "--source", "visa", "--category", "pcb4", "--defect", "wrong_place"]) == 0
    out = capsys.readouterr().out
    for kind in QUESTION_TYPES:
        assert f"[{kind}]" in out
    assert "## process context (short)" in out and "<gpt>" in out and "Likely cause:" in out
    assert main(["render", "--source", "visa", "--category", "pcb4", "--defect", "sparkles"]) == 1
    assert "no defect 'sparkles'" in capsys.readouterr().err


def test_same_input_same_bytes_for_a_multi_source_build(tmp_path, synthetic_root):
    a, b = tmp_path / "a", tmp_path / "b"
    build_dataset([("synthetic", synthetic_root)], a)
    build_dataset([("synthetic", synthetic_root)], b, num_proc=2)
    shard = "data/synthetic/test-00000-of-00001.parquet"
    assert (a / shard).read_bytes() == (b / shard).read_bytes()


def candle_record(defect: str) -> dict:
    return {
        "id": f"visa/candle/test/{defect}/000.JPG",
        "source": "visa",
        "category": "candle",
        "label": "anomaly",
        "defect_types": [defect],
        "sub_types": [],
        "location": "top",
        "regions": ["top"],
        "location_share": 1.0,
        "boxes": [[10, 5, 40, 30]],
        "width": 300,
        "height": 300,
    }


def test_plural_products_get_plural_words():
    candles = processes.load("visa", "candle")
    assert candles.product_plural and candles.product_name == "Tealight candles"
    fields = cot_m.annotate(candle_record("chunk_of_wax_missing"), candles)
    text = " ".join([q["question"] for q in fields["questions"]] + [t["value"] for t in fields["conversation_llava"]])
    assert "this tealight candles" not in text and "tealight candles is" not in text
    assert "the tealight candles are defective" in fields["conversation_llava"][1]["value"]


def test_a_catch_all_class_gets_no_typed_question_or_conversation():
    candles = processes.load("visa", "candle")
    assert candles.defects["other"].catch_all
    reasons = skipped(cot_m.annotate(candle_record("other"), candles))
    for kind in ("defect_type", "appearance", "root_cause"):
        assert reasons[kind] == "'other' is a catch-all class: no single answer"
    assert reasons["conversation"].startswith("a catch-all defect class")
    fields = cot_m.annotate(candle_record("chunk_of_wax_missing"), candles)
    options = {o["text"] for q in fields["questions"] for o in q["options"]}
    assert candles.defects["other"].name not in options and candles.defects["other"].appearance not in options
    v1 = skipped(cot_m.annotate(candle_record("other"), candles, template_set("default", "1.0.0")))
    assert "defect_type" not in v1  # the first rules still asked it, as they did
