"""Process annotations: the bundled set, the Python API, and a corpus of broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructiad import processes
from instructiad.errors import InstructIADError
from instructiad.processes.validate import validate_file
from instructiad.sources import READERS
from triad_eval.cli import main

BOTTLE = processes.BUNDLED / "mvtec_ad" / "bottle.yaml"


def test_every_category_of_every_source_is_annotated_and_valid():
    expected = {f"{name}/{category}" for name, reader in READERS.items() for category in reader.defects}
    assert len(expected) == 15 + 12 + 5 + 30 + 3
    assert set(processes.list_annotations()) == expected
    problems = [str(p) for path in sorted(processes.BUNDLED.rglob("*.yaml")) for p in validate_file(path)]
    assert problems == []


def test_validate_command_checks_the_bundle_by_default(capsys):
    assert main(["validate"]) == 0
    assert "65 annotation file(s) checked, 0 with problems" in capsys.readouterr().out


def test_load_returns_a_typed_annotation():
    bottle = processes.load("mvtec_ad", "bottle")
    assert (bottle.source, bottle.category) == ("mvtec_ad", "bottle")
    assert next(step.id for step in bottle.process) == "batch_melting"
    broken = bottle.defect("broken_large")
    assert broken.kind == "structural" and broken.severity == "critical"
    assert all(bottle.step(step) for step in broken.caused_by)
    assert bottle.defect("no_such_defect") is None


def test_defects_are_found_by_alias():
    deformation = processes.load("real_iad", "audiojack").defect("BX")
    assert deformation is not None and deformation.key == "deformation"
    wax = processes.load("visa", "candle").defect("Chunk Of Wax Missing")
    assert wax is not None and wax.key == "chunk_of_wax_missing"


def test_load_of_a_missing_annotation_names_the_file(tmp_path):
    with pytest.raises(InstructIADError, match=r"bottle\.yaml: no process annotation for mvtec_ad/bottle"):
        processes.load("mvtec_ad", "bottle", root=tmp_path)


# --- the broken corpus: each file is the valid bottle annotation with one thing wrong --------


def broken(tmp_path: Path, old: str, new: str, place: str = "mvtec_ad/bottle") -> Path:
    text = BOTTLE.read_text()
    assert old in text, old
    path = tmp_path / f"{place}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line)


def rejected(capsys, path: Path) -> str:
    """Run `triad validate PATH`: it must exit 1 with one problem line; return that line."""
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_malformed_yaml(tmp_path, capsys):
    path = broken(tmp_path, "  - soda-lime-silica container glass", "  - [unclosed")
    line = rejected(capsys, path)
    assert line.startswith(f"triad: invalid: {path}:")
    assert "invalid YAML" in line


def test_schema_violation_names_line_and_path(tmp_path, capsys):
    path = broken(tmp_path, "    severity: critical", "    severity: catastrophic")
    line = rejected(capsys, path)
    expected_line = line_of(path, "severity: catastrophic")
    assert f"{path}:{expected_line}: defects.broken_large.severity: 'catastrophic' is not one of" in line


def test_caused_by_naming_no_step(tmp_path, capsys):
    path = broken(tmp_path, "caused_by: [handling, moulding, annealing]", "caused_by: [handling, polishing, annealing]")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    where = f"{path}:{line_of(path, 'polishing')}: defects.broken_small.caused_by[1]: step 'polishing'"
    assert f"{where} is not a process step id" in err
    assert (
        "defects.broken_small.mechanism: keys ['annealing', 'handling', 'moulding'] must be the caused_by steps" in err
    )


def test_a_mechanism_naming_a_step_outside_caused_by(tmp_path, capsys):
    path = broken(
        tmp_path,
        "        Glass-to-glass or glass-to-metal contact",
        "        Gob forming leaves a weak spot; glass-to-glass or glass-to-metal contact",
    )
    line = rejected(capsys, path)
    where = f"{path}:{line_of(path, 'Gob forming leaves') - 1}: defects.broken_small.mechanism.handling"
    assert line == f"triad: invalid: {where}: names step 'gob_forming' ('gob forming'), which is not in caused_by"


CONFLICTS = [
    # (annotation, defect, the step its mechanism named while the questions offered it as a wrong cause)
    ("real_iad/pcb", "foreign_objects", "solder paste printing"),
    ("mvtec_loco/juice_bottle", "wrong_juice_type", "filling"),
    ("real_iad/mint", "missing_parts", "lubricant addition"),  # its pit class went with the code table
    ("real_iad/transistor1", "missing_parts", "handling"),
    ("mvtec_ad/screw", "thread_top", "heat treatment"),
]


@pytest.mark.parametrize(("place", "defect", "phrase"), CONFLICTS)
def test_the_mechanism_distractor_conflicts_found_in_review_are_caught(tmp_path, place, defect, phrase):
    """Each review finding, replayed on today's file: take the step out of caused_by (and its
    mechanism) and let another cause's mechanism mention it, as the reviewed file did."""
    import yaml

    source, category = place.split("/")
    annotation = processes.load(source, category)
    named = annotation.steps_named(phrase)
    assert len(named) == 1, (phrase, named)
    step = next(iter(named))
    data = yaml.safe_load((processes.BUNDLED / f"{place}.yaml").read_text())
    entry = data["defects"][defect]
    if step in entry["caused_by"]:
        entry["caused_by"].remove(step)
        entry["mechanism"].pop(step)
    if not entry["caused_by"]:  # the step was its only cause: another step takes the blame
        other = next(s["id"] for s in data["process"] if s["id"] != step)
        entry["caused_by"], entry["mechanism"] = [other], {other: "Material is lost at this stage of the process."}
    first = entry["caused_by"][0]
    entry["mechanism"][first] += f" The {phrase} also plays a part."
    path = tmp_path / f"{place}.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    messages = [p.message for p in validate_file(path)]
    assert f"names step {step!r} ({phrase.lower()!r}), which is not in caused_by" in " | ".join(messages), messages


def test_near_identical_text_in_two_categories_is_a_warning(tmp_path, capsys):
    copy = tmp_path / "mvtec_ad" / "bottle.yaml"
    copy.parent.mkdir()
    copy.write_text(BOTTLE.read_text())
    twin = broken(tmp_path, "id: mvtec_ad/bottle", "id: mvtec_ad/cable", place="mvtec_ad/cable")
    assert main(["validate", str(copy), str(twin)]) == 1  # the copy is no cable annotation...
    err = capsys.readouterr().err
    assert "triad: warning:" in err and "product.description is nearly the same text as" in err


def test_duplicate_step_id(tmp_path, capsys):
    path = broken(tmp_path, "  - id: gob_forming", "  - id: batch_melting")
    line = rejected(capsys, path)
    second = [i for i, t in enumerate(path.read_text().splitlines(), 1) if "id: batch_melting" in t][1]
    assert f"{path}:{second}: process[1].id: duplicate step id 'batch_melting'" in line


def test_defect_the_reader_emits_but_the_annotation_lacks(tmp_path, capsys):
    path = broken(tmp_path, "  broken_small:", "  broken_tiny:")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "defects: defect 'broken_small' that the mvtec_ad reader emits for bottle is not annotated" in err
    assert f"{path}:{line_of(path, 'broken_tiny:')}: defects.broken_tiny: 'broken_tiny' is not a defect" in err


def test_file_for_an_unknown_category(tmp_path, capsys):
    path = broken(tmp_path, "id: mvtec_ad/bottle", "id: mvtec_ad/banana", place="mvtec_ad/banana")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:1: (document): 'banana' is not a mvtec_ad category" in err


def test_file_for_an_unknown_source(tmp_path, capsys):
    path = broken(tmp_path, "id: mvtec_ad/bottle", "id: mvtec_add/bottle", place="mvtec_add/bottle")
    line = rejected(capsys, path)
    assert "(document): folder 'mvtec_add' is not a source" in line


def test_id_that_does_not_match_the_files_place(tmp_path, capsys):
    path = broken(tmp_path, "id: mvtec_ad/bottle", "id: mvtec_ad/cable")
    line = rejected(capsys, path)
    assert f"{path}:{line_of(path, 'id: mvtec_ad/cable')}: id: id 'mvtec_ad/cable' does not match" in line


def test_yaml_tag_that_would_construct_an_object_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = f'!!python/object/apply:os.system ["touch {marker}"]'
    path = broken(tmp_path, "contributors: [InstructIAD maintainers]", f"contributors: {payload}")
    line = rejected(capsys, path)
    assert f"{path}:{line_of(path, 'python/object')}: (document): invalid YAML:" in line
    assert "would construct an object" in line
    assert not marker.exists()


def test_duplicate_keys_are_refused(tmp_path, capsys):
    path = broken(tmp_path, "materials:\n", "materials: [glass]\nmaterials:\n")
    line = rejected(capsys, path)
    assert f"{path}:2:" not in line and "duplicate key 'materials'" in line


def test_a_thin_annotation_is_a_schema_violation(tmp_path, capsys):
    path = broken(tmp_path, "    appearance: A large piece", "    appearance: Broken.\n    x_note: A large piece")
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "defects.broken_large.appearance: 'Broken.' is too short" in err
    assert "Additional properties are not allowed ('x_note' was unexpected)" in err


def test_loading_a_broken_file_raises_one_line(tmp_path):
    broken(tmp_path, "    severity: critical", "    severity: catastrophic")
    with pytest.raises(InstructIADError, match=r"defects\.broken_large\.severity"):
        processes.load("mvtec_ad", "bottle", root=tmp_path)


# --- linking records to annotations -----------------------------------------------------------


def test_records_link_to_their_annotation_and_the_folder_ships_it(built):
    from datasets import load_dataset

    ds = load_dataset(str(built), "synthetic", split="test")
    assert set(ds["process_id"]) == {"synthetic/glazed_tile", "synthetic/steel_sheet", "synthetic/woven_fabric"}
    shipped = sorted(p.relative_to(built).as_posix() for p in (built / "processes").rglob("*.yaml"))
    assert shipped == [f"processes/synthetic/{c}.yaml" for c in ("glazed_tile", "steel_sheet", "woven_fabric")]
    assert (built / "processes/synthetic/pit.yaml").exists() is False
    card = (built / "README.md").read_text()
    assert "| synthetic | 3 of 3 | 27 of 27 | 18 of 18 |" in card


def test_a_users_product_line_links_to_the_users_annotations(tmp_path, capsys):
    import json

    from tests import layouts

    layouts.make_folder(tmp_path / "line")
    annotations = tmp_path / "annotations"
    gasket = (BOTTLE.read_text().replace("id: mvtec_ad/bottle", "id: folder/gasket")).split("defects:")[0]
    gasket += """defects:
  burr:
    name: Burr on the sealing edge
    appearance: A thin raised sliver of material along the cut edge of the gasket.
    caused_by: [handling]
    mechanism: A dull cutting die tears rather than shears the material, leaving a burr on the edge.
    severity: minor
    kind: structural
references:
  - title: Gasket manufacturing notes
contributors: [A user]
review:
  status: draft
"""
    (annotations / "folder").mkdir(parents=True)
    (annotations / "folder" / "gasket.yaml").write_text(gasket)
    assert main(["validate", str(annotations)]) == 0
    out = tmp_path / "out"
    args = ["build", "--source", f"folder={tmp_path / 'line'}", "--out", str(out), "--processes", str(annotations)]
    assert main(args) == 0
    report = json.loads((out / "build_report.json").read_text())
    assert report["processes"]["folder"] == {
        "categories": 2,
        "annotated_categories": 1,
        "images": 12,
        "linked_images": 6,
        "anomalous_images": 4,
        "anomalous_images_resolved": 2,
    }
    assert (out / "processes" / "folder" / "gasket.yaml").read_text() == gasket
    capsys.readouterr()


def test_an_invalid_user_annotation_stops_the_build_before_any_work(tmp_path, capsys):
    from tests import layouts

    layouts.make_folder(tmp_path / "line")
    (tmp_path / "annotations" / "folder").mkdir(parents=True)
    (tmp_path / "annotations" / "folder" / "gasket.yaml").write_text("id: folder/gasket\n")
    out = tmp_path / "out"
    args = ["build", "--source", f"folder={tmp_path / 'line'}", "--out", str(out)]
    assert main([*args, "--processes", str(tmp_path / "annotations")]) == 1
    err = capsys.readouterr().err
    assert "gasket.yaml:1: (document): 'acceptable_variation' is a required property (and 9 more" in err
    assert not out.exists()


def test_a_dataset_built_before_a_newer_authoring_rule_still_loads(built, tmp_path):
    """Annotations a built dataset ships are loaded as they were written: a rule added later
    (here: a mechanism may not name a step outside caused_by) does not lock the dataset out."""
    import shutil

    from triad_eval.data import open_dataset

    folder = tmp_path / "older"
    shutil.copytree(built, folder)
    shipped = folder / "processes" / "synthetic" / "steel_sheet.yaml"
    shipped.write_text(shipped.read_text().replace("Over-pickling attacks", "Annealing and over-pickling attack", 1))
    assert any("names step 'annealing'" in p.message for p in validate_file(shipped))
    annotation = open_dataset(str(folder), "synthetic").annotation("synthetic/steel_sheet")
    assert "Annealing and over-pickling" in annotation.defects["pit"].mechanism
