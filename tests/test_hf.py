"""`hf:<path>` with tiny random models of real families, loaded through from_pretrained."""

from __future__ import annotations

import json
import shutil

import pytest

from tests import tiny_models
from triad_eval.cli import main

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_models")
    return {name: build(root / name) for name, build in tiny_models.FAMILIES.items()}


def evaluate(capsys, built, model, out, *extra):
    args = ["eval", "--model", f"hf:{model}", "--data", str(built), "--config", "synthetic", "--out", str(out)]
    code = main([*args, "--limit", "6", "--allow-failures", *extra])
    _, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family", sorted(tiny_models.FAMILIES))
def test_each_family_generates_with_one_and_two_images(models, built, tmp_path, capsys, family):
    rows = evaluate(
        capsys,
        built,
        models[family],
        tmp_path / "run",
        "--conditions",
        "zero_shot,one_shot",
        "--tasks",
        "discrimination,root_cause",
    )
    assert {r["condition"] for r in rows} == {"zero_shot", "one_shot"}
    assert all(r["status"] in ("ok", "unparsed") and isinstance(r["raw"], str) for r in rows)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["generation"]["greedy"] is True and len(config["generation"]["version"]) == 64


@pytest.mark.parametrize("family", sorted(tiny_models.FAMILIES))
def test_score_options_reads_letter_probabilities(models, built, tmp_path, capsys, family):
    rows = evaluate(
        capsys,
        built,
        models[family],
        tmp_path / "run",
        "--scoring",
        "options",
        "--tasks",
        "discrimination",
        "--conditions",
        "zero_shot,one_shot",
    )
    assert all(r["status"] == "ok" and sum(r["probs"].values()) == pytest.approx(1.0) for r in rows)
    assert all(r["parsed"] == max(r["probs"], key=r["probs"].get) for r in rows)


def test_batching_with_left_padding_does_not_change_answers(models, built, tmp_path, capsys):
    one = evaluate(
        capsys, built, models["qwen2_vl"], tmp_path / "one", "--batch-size", "1", "--conditions", "zero_shot,one_shot"
    )
    many = evaluate(
        capsys, built, models["qwen2_vl"], tmp_path / "many", "--batch-size", "5", "--conditions", "zero_shot,one_shot"
    )
    assert [r["raw"] for r in one] == [r["raw"] for r in many]


def test_a_model_folder_without_processor_or_chat_template_is_a_clear_error(models, built, tmp_path, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(models["llava_onevision"], bare)
    (bare / "processor_config.json").unlink()
    args = [
        "eval",
        "--model",
        f"hf:{bare}",
        "--data",
        str(built),
        "--config",
        "synthetic",
        "--out",
        str(tmp_path / "r"),
    ]
    assert main(args) == 1
    assert "no processor (processor_config.json or preprocessor_config.json)" in capsys.readouterr().err
    shutil.copy(models["llava_onevision"] / "processor_config.json", bare)
    (bare / "chat_template.jinja").unlink()
    assert main(args) == 1
    assert "no chat template" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
