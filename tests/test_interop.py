"""Interop (issue 13): `triad export` for lmms-eval, VLMEvalKit, MMAD and JSON lines, and
`replay:` of each tool's answer files, round trips that must give `triad eval`'s metrics.

The lmms-eval test runs the real `lmms_eval` CLI (the ``interop`` extra) on an exported task with
a tiny random LLaVA-OneVision; VLMEvalKit is not installed, so its round trip goes through its
file formats as its own code writes them (``vlmeval/inference.py``, ``vlmeval/smp/file.py``).
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from instructiad.errors import InstructIADError
from triad_eval.cli import main
from triad_eval.data import open_dataset
from triad_eval.experts import parse_expert
from triad_eval.interop import FORMATS, answer_format, detect_format
from triad_eval.requests import build_requests

CONDITIONS = "zero_shot,process,process+one_shot"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def export(capsys, built, out, fmt, *extra) -> Path:
    argv = ["export", built, "--config", "synthetic", "--format", fmt, "--out", out, "--conditions", CONDITIONS]
    code, stdout, err = run(capsys, *argv, *extra)
    assert code == 0, err
    assert stdout.startswith("wrote ") and f"as {fmt} to" in stdout
    return Path(out)


def evaluate(capsys, built, out, model, *extra) -> Path:
    argv = ["eval", "--model", model, "--data", built, "--config", "synthetic", "--out", out]
    code, _, err = run(capsys, *argv, "--conditions", CONDITIONS, *extra)
    assert code == 0, err
    return Path(out)


def predictions_of(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]


def metrics_of(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


@pytest.fixture(scope="module")
def chance(built, tmp_path_factory) -> Path:
    """`triad eval` of the chance baseline, every task, three conditions: the answers the round
    trips carry through each tool's files."""
    out = tmp_path_factory.mktemp("chance") / "run"
    argv = ["eval", "--model", "chance", "--data", built, "--config", "synthetic", "--out", out]
    assert main([str(a) for a in [*argv, "--conditions", CONDITIONS]]) == 0
    return out


def answers_by_key(run_folder: Path) -> dict[tuple[str, str, str], str]:
    return {(r["id"], r["task"], r["condition"]): r["raw"] for r in predictions_of(run_folder)}


def same_run(replayed: Path, reference: Path) -> None:
    """The replayed run scores every request exactly as the reference run did."""
    assert predictions_of(replayed) == predictions_of(reference)
    assert metrics_of(replayed) == metrics_of(reference)


def text_parts(request) -> list[str]:
    return [p["text"] for p in request.messages[0]["content"] if p["type"] == "text"]


def prompt_of(request) -> str:
    """The request's prompt as the exports write it: text parts, ``<image>`` for each image."""
    return "\n".join(p["text"] if p["type"] == "text" else "<image>" for p in request.messages[0]["content"])


# --- the registry -------------------------------------------------------------------------------


def test_every_answer_format_loads_and_offers_looks_like_and_read():
    assert {"jsonl", "lmms", "vlmevalkit"} <= set(FORMATS)
    for name in FORMATS:
        reader = answer_format(name)
        assert callable(reader.looks_like) and callable(reader.read), name
    with pytest.raises(InstructIADError, match="unknown answer-file format 'nope'"):
        answer_format("nope")


# --- JSON lines ---------------------------------------------------------------------------------


def test_jsonl_export_carries_triad_evals_prompts_and_round_trips(built, chance, tmp_path, capsys):
    folder = export(capsys, built, tmp_path / "export", "jsonl")
    lines = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    data = open_dataset(str(built), "synthetic")
    requests, _ = build_requests(data, list(json.loads((folder / "export.json").read_text())["tasks"]),
                                 CONDITIONS.split(","))  # fmt: skip
    assert [(r["id"], r["task"], r["condition"]) for r in lines] == [q.key for q in requests]
    train = {r["id"]: r for r in open_dataset(str(built), "synthetic", split="train").records}
    for line, request in zip(lines, requests, strict=True):
        assert line["prompt"] == prompt_of(request) and line["options"] == request.options
        assert [i["sha256"] for i in line["images"]] == [image.sha256 for image in request.images]
        for image in line["images"]:
            assert hashlib.sha256((folder / image["path"]).read_bytes()).hexdigest() == image["sha256"]
        references = [i["id"] for i in line["images"] if i["role"] == "reference"]
        assert len(references) == (1 if "one_shot" in line["condition"] else 0)
        for reference in references:  # the one-shot reference: a normal training image of the category
            assert train[reference]["label"] == 0 and train[reference]["category"] == line["category"]
    # a tool answers each exported line; its answers come back through replay: as triad eval
    raw = answers_by_key(chance)
    answers = tmp_path / "answers.jsonl"
    keys = [(r["id"], r["task"], r["condition"]) for r in lines]
    entries = [dict(zip(("id", "task", "condition"), k, strict=True)) | {"raw": raw[k]} for k in keys]
    answers.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
    assert detect_format(answers) == "jsonl"
    same_run(evaluate(capsys, built, tmp_path / "replayed", f"replay:{answers}"), chance)


def test_expert_crops_and_blind_questions_are_exported_as_triad_eval_asks_them(built, maps, tmp_path, capsys):
    expert = ["--expert", f"maps:{maps}", "--tasks", "discrimination", "--limit", "3"]
    folder = export(capsys, built, tmp_path / "export", "jsonl", "--conditions", "expert,no_image", *expert)
    lines = [json.loads(line) for line in (folder / "requests.jsonl").read_text().splitlines()]
    requests, _ = build_requests(open_dataset(str(built), "synthetic"), ["discrimination"], ["expert", "no_image"],
                                 limit=3, expert=parse_expert(f"maps:{maps}", {}))  # fmt: skip
    assert len(lines) == len(requests) == 6
    for line, request in zip(lines, requests, strict=True):
        assert line["prompt"] == prompt_of(request)
        crops = [i for i in line["images"] if i["role"] == "crop"]
        assert [c["box"] for c in crops] == request.notes.get("boxes", [])
        assert [c["id"] for c in crops] == [f"{request.id}#crop{n}" for n in range(len(crops))]
        if line["condition"] == "no_image":
            assert line["images"] == [] and "<image>" not in line["prompt"]
    assert any(i["role"] == "crop" for line in lines for i in line["images"])


# --- VLMEvalKit ---------------------------------------------------------------------------------


def vlmevalkit_data(tsv: Path):
    """The TSV as VLMEvalKit's ImageBaseDataset loads it (index as int, image references resolved)."""
    import pandas  # a dependency of datasets

    data = pandas.read_csv(tsv, sep="\t")
    data["index"] = [str(x) for x in data["index"]]
    image_map = dict(zip(data["index"], [str(x) for x in data["image"]], strict=True))
    for key, value in image_map.items():
        if len(value) <= 64:  # another row's index: VLMEvalKit's way of not repeating an image
            assert len(image_map[value]) > 64
            image_map[key] = image_map[value]
    data["image"] = [image_map[k] for k in data["index"]]
    data["index"] = [int(x) for x in data["index"]]
    return data


def vlmevalkit_predictions(tsv: Path, raw: dict, fmt: str, out: Path) -> Path:
    """A prediction file as VLMEvalKit's infer_data_job writes it: every column but image, plus
    prediction, in its PRED_FORMAT (xlsx, tsv or json)."""
    data = vlmevalkit_data(tsv)
    data["prediction"] = [
        str(raw[(r, t, c)]) for r, t, c in zip(data["record_id"], data["l2-category"], data["condition"], strict=True)
    ]
    data.pop("image")
    path = out / f"chance_{tsv.stem}.{fmt}"
    if fmt == "tsv":
        data.to_csv(path, sep="\t", index=False, encoding="utf-8", quoting=csv.QUOTE_ALL)
    elif fmt == "json":
        path.write_text(json.dumps(data.to_dict("records"), indent=4, ensure_ascii=False), encoding="utf-8")
    else:
        data.to_excel(path, index=False, engine="openpyxl")
    return path


def test_vlmevalkit_tsv_is_an_mcq_dataset_of_triad_evals_requests(built, tmp_path, capsys):
    folder = export(capsys, built, tmp_path / "export", "vlmevalkit")
    tsv = folder / "InstructIAD_synthetic.tsv"
    data = vlmevalkit_data(tsv)
    requests, _ = build_requests(open_dataset(str(built), "synthetic"), ["discrimination", "defect_type",
                                 "location", "appearance", "root_cause"], CONDITIONS.split(","))  # fmt: skip
    assert list(data["index"]) == list(range(len(requests)))
    assert {"question", "hint", "A", "B", "answer", "category", "l2-category", "image_path"} <= set(data.columns)
    for row, request in zip(data.to_dict("records"), requests, strict=True):
        assert (row["record_id"], row["l2-category"], row["condition"]) == request.key
        assert row["category"] == request.category and row["answer"] == request.answer
        options = {k: row[k] for k in "ABCDE" if k in row and isinstance(row[k], str)}
        assert options == request.options
        images = ast.literal_eval(row["image"]) if row["image"].startswith("[") else [row["image"]]  # its toliststr
        shas = [hashlib.sha256(base64.b64decode(b)).hexdigest() for b in images]
        assert shas == [image.sha256 for image in request.images]
        if len(images) > 1:  # several images: VLMEvalKit needs their file names
            assert len(ast.literal_eval(row["image_path"])) == len(images)
        assert row["prompt"] == prompt_of(request)
        hint = row["hint"] if isinstance(row["hint"], str) else ""
        assert hint == "\n".join(text_parts(request)[:-1])


@pytest.mark.parametrize("fmt", ["tsv", "json", "xlsx"])
def test_vlmevalkit_predictions_replay_as_triad_eval(built, chance, tmp_path, capsys, fmt):
    if fmt == "xlsx":
        pytest.importorskip("openpyxl")
    folder = export(capsys, built, tmp_path / "export", "vlmevalkit")
    predictions = vlmevalkit_predictions(folder / "InstructIAD_synthetic.tsv", answers_by_key(chance), fmt, tmp_path)
    assert detect_format(predictions) == "vlmevalkit"
    same_run(evaluate(capsys, built, tmp_path / "replayed", f"replay:{predictions}"), chance)


def test_vlmevalkit_failed_predictions_are_failed_requests(built, chance, tmp_path, capsys):
    folder = export(capsys, built, tmp_path / "export", "vlmevalkit")
    raw = answers_by_key(chance)
    first = next(iter(raw))
    raw[first] = "Failed to obtain answer via API."
    predictions = vlmevalkit_predictions(folder / "InstructIAD_synthetic.tsv", raw, "tsv", tmp_path)
    argv = ["eval", "--model", f"replay:{predictions}", "--data", built, "--config", "synthetic"]
    code, _, err = run(capsys, *argv, "--conditions", CONDITIONS, "--out", tmp_path / "replayed")
    assert code == 1 and "1 request(s) failed" in err
    failed = [p for p in predictions_of(tmp_path / "replayed") if p["status"] == "failed"]
    assert [(p["id"], p["task"], p["condition"]) for p in failed] == [first]


# --- lmms-eval ----------------------------------------------------------------------------------


def load_utils(folder: Path):
    spec = importlib.util.spec_from_file_location("instructiad_lmms_utils", folder / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lmms_eval_task_gives_triad_evals_interleaved_prompts(built, tmp_path, capsys):
    from datasets import load_dataset

    folder = export(capsys, built, tmp_path / "export", "lmms-eval")
    names = sorted(p.name for p in folder.glob("*.yaml"))
    assert names == ["instructiad_synthetic.yaml", "instructiad_synthetic_process.yaml",
                     "instructiad_synthetic_process_one_shot.yaml", "instructiad_synthetic_zero_shot.yaml"]  # fmt: skip
    group = (folder / "instructiad_synthetic.yaml").read_text()
    assert "group: instructiad_synthetic\n" in group and "  - instructiad_synthetic_process_one_shot\n" in group
    utils = load_utils(folder)
    data = open_dataset(str(built), "synthetic")
    requests, _ = build_requests(data, ["discrimination", "defect_type", "location", "appearance", "root_cause"],
                                 ["process+one_shot"])  # fmt: skip
    docs = load_dataset("parquet", data_files=str(folder / "data" / "process_one_shot.parquet"), split="train")
    assert len(docs) == len(requests)
    for doc, request in zip(docs, requests, strict=True):
        content = utils.doc_to_messages(doc)[0]["content"]
        expected = request.messages[0]["content"]
        assert [p["type"] for p in content] == [p["type"] for p in expected]
        assert [p.get("text") for p in content] == [p.get("text") for p in expected]
        assert [p["url"].size for p in content if p["type"] == "image"] == [
            Image.open(io.BytesIO(i.data)).size for i in request.images
        ]
        assert utils.doc_to_text(doc) == "\n".join(text_parts(request)) and utils.doc_to_target(doc) == request.answer
        assert doc["image_roles"] == ["reference", "query"] and doc["image_ids"][1] == request.id
        scored = utils.process_results(doc, [f"The answer is {request.answer}."])
        assert set(scored) == {"discrimination", "defect_type", "location", "appearance", "root_cause", "average"}
        assert scored["average"]["parsed"] == request.answer


def tiny_letter_model(folder: Path) -> Path:
    """A tiny random LLaVA-OneVision whose generation config lets it say only A, B, C, a space or
    stop: sampled answers that the project's parser reads as options, or not."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from tests import tiny_models

    path = tiny_models.llava_onevision(folder)
    tokenizer = AutoTokenizer.from_pretrained(path)
    keep = {tokenizer.convert_tokens_to_ids(t) for t in ["A", "B", "C", " "]} | {tokenizer.eos_token_id}
    vocabulary = AutoConfig.from_pretrained(path).text_config.vocab_size
    GenerationConfig(suppress_tokens=sorted(set(range(vocabulary)) - keep)).save_pretrained(path)
    return path


def test_lmms_eval_runs_the_export_and_its_samples_replay_to_the_same_metrics(built, tmp_path, capsys):
    pytest.importorskip("lmms_eval")
    conditions = ["--tasks", "discrimination,defect_type", "--conditions", "zero_shot,process+one_shot", "--limit", "7"]
    argv = ["export", built, "--config", "synthetic", "--format", "lmms-eval", "--out", tmp_path / "task"]
    assert run(capsys, *argv, *conditions)[0] == 0
    rows = json.loads((tmp_path / "task" / "export.json").read_text())["rows"]
    model = tiny_letter_model(tmp_path / "tiny_ov")
    out = tmp_path / "lmms"
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "hf")}
    command = [sys.executable, "-m", "lmms_eval", "--model", "llava_hf", "--model_args",
               f"pretrained={model},device_map=cpu", "--device", "cpu", "--tasks", "instructiad_synthetic",
               "--include_path", tmp_path / "task", "--limit", max(rows.values()), "--batch_size", "1",
               "--gen_kwargs", "max_new_tokens=2,temperature=1", "--output_path", out, "--log_samples"]  # fmt: skip
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    log = done.stdout + done.stderr
    # lmms-eval exits 0 after errors: its log must show none
    assert done.returncode == 0 and "Error" not in log and "Traceback" not in log, log[-3000:]
    (results,) = out.rglob("*_results.json")
    scores = json.loads(results.read_text())["results"]
    samples = sorted(out.rglob("*_samples_*.jsonl"))
    assert len(samples) == 2 and detect_format(out) == "lmms" and detect_format(samples[0]) == "lmms"
    logged = [json.loads(line) for path in samples for line in path.read_text().splitlines()]
    assert len(logged) == sum(rows.values())
    answers = [s["average"]["parsed"] for s in logged]
    assert len(set(answers)) > 1  # some answers parse, some do not: the numbers below mean something

    replayed = evaluate(capsys, built, tmp_path / "replayed", f"replay:{out}", *conditions)
    predictions = {(p["id"], p["task"], p["condition"]): p for p in predictions_of(replayed)}
    data = open_dataset(str(built), "synthetic")
    requests = {r.key: r for r in build_requests(data, ["discrimination", "defect_type"],
                                                 ["zero_shot", "process+one_shot"], limit=7)[0]}  # fmt: skip
    for sample in logged:
        key = tuple(sample["average"][k] for k in ("id", "task", "condition"))
        assert predictions[key]["raw"] == sample["filtered_resps"]
        assert predictions[key]["parsed"] == sample["average"]["parsed"]
        assert sample["input"] == "\n".join(text_parts(requests[key]))  # the prompt triad eval sends
    metrics = metrics_of(replayed)
    for condition, task in (("zero_shot", "instructiad_synthetic_zero_shot"),
                            ("process+one_shot", "instructiad_synthetic_process_one_shot")):  # fmt: skip
        ours = metrics["tasks"]
        assert scores[task]["discrimination,none"] == ours["discrimination"][condition]["balanced_accuracy"]
        assert scores[task]["defect_type,none"] == ours["defect_type"][condition]["accuracy"]
        assert scores[task]["average,none"] == metrics["average"][condition]


# --- MMAD ---------------------------------------------------------------------------------------


def test_mmad_export_has_mmads_shape_with_images_at_their_paths(built, tmp_path, capsys):
    folder = export(capsys, built, tmp_path / "export", "mmad")
    data = open_dataset(str(built), "synthetic")
    requests, _ = build_requests(data, ["discrimination", "defect_type", "location", "appearance", "root_cause"],
                                 ["process+one_shot"])  # fmt: skip
    entries = json.loads((folder / "mmad_process+one_shot.json").read_text())
    assert list(entries) == list(dict.fromkeys(r.id for r in requests))
    types = {"discrimination": "Anomaly Detection", "defect_type": "Defect Classification",
             "location": "Defect Localization", "appearance": "Defect Description",
             "root_cause": "Defect Analysis"}  # fmt: skip
    for image, entry in entries.items():
        asked = [r for r in requests if r.id == image]
        assert set(entry) == {"image_path", "mask_path", "similar_templates", "random_templates", "conversation"}
        assert entry["image_path"] == image and (folder / image).read_bytes() == asked[0].images[1].data
        (template,) = entry["similar_templates"]
        assert entry["random_templates"] == [template] and (folder / template).read_bytes() == asked[0].images[0].data
        assert "/train/good/" in template
        for question, request in zip(entry["conversation"], asked, strict=True):
            assert question["type"] == types[request.task] and question["Answer"] == request.answer
            assert question["Options"] == request.options and question["annotation"] is True
            assert question["prompt"] == prompt_of(request)
            assert (question["task"], question["condition"]) == (request.task, request.condition)


def test_mmad_answers_of_an_export_replay_as_triad_eval(built, chance, tmp_path, capsys):
    if "mmad" not in FORMATS:
        pytest.skip("the mmad answers reader (triad_eval/interop/mmad.py) is not registered yet")
    folder = export(capsys, built, tmp_path / "export", "mmad", "--conditions", "zero_shot")
    raw = answers_by_key(chance)
    entries = json.loads((folder / "mmad_zero_shot.json").read_text())
    answers = []  # as MMAD's query scripts write them: the parsed letter in gpt_answer
    for image, entry in entries.items():
        for question in entry["conversation"]:
            options = "".join(f"{k}. {v}\n" for k, v in question["Options"].items())
            text = f"Question: {question['Question']} \n{options}"
            answers.append({"image": image, "question": {"type": "text", "text": text},
                            "question_type": question["type"], "correct_answer": question["Answer"],
                            "gpt_answer": raw[(image, question["task"], "zero_shot")]})  # fmt: skip
    path = tmp_path / "answers_0_shot_chance.json"
    path.write_text(json.dumps(answers, indent=4))
    assert detect_format(path) == "mmad"
    replayed = evaluate(capsys, built, tmp_path / "replayed", f"replay:{path}", "--conditions", "zero_shot")
    reference = evaluate(capsys, built, tmp_path / "reference", "chance", "--conditions", "zero_shot")
    same_run(replayed, reference)


# --- determinism and bad input ------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "lmms-eval", "vlmevalkit", "mmad"])
def test_the_same_export_gives_the_same_bytes(built, tmp_path, capsys, fmt):
    def files(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    first = export(capsys, built, tmp_path / "a" / "export", fmt, "--limit", "5")
    second = export(capsys, built, tmp_path / "b" / "export", fmt, "--limit", "5")
    assert files(first) == files(second) and len(files(first)) > 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "nope"], "unknown export format 'nope' (known: lmms-eval, vlmevalkit, mmad, jsonl)"),
        (["--conditions", "zero_shot,sideways"], "unknown condition 'sideways'"),
        (["--tasks", "colour"], "unknown task 'colour'"),
        (["--format", "vlmevalkit", "--conditions", "no_image"], "--format vlmevalkit cannot carry a question without"),
        (["--format", "mmad", "--conditions", "process+no_image"], "--format mmad cannot carry a question without"),
        (["--conditions", "expert"], "condition expert needs --expert"),
        (["--config", "nope"], "nope"),
        (["--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_bad_export_input_is_one_line_and_writes_nothing(built, tmp_path, capsys, extra, message):
    argv = ["export", built, "--config", "synthetic", "--format", "jsonl", "--out", tmp_path / "out"]
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    code, _, err = run(capsys, *argv)
    assert code == 1 and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_folder_that_is_not_empty_and_accepts_an_empty_one(built, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    argv = ["export", built, "--config", "synthetic", "--format", "jsonl", "--out", out]
    code, _, err = run(capsys, *argv)
    assert code == 1 and err.count("\n") == 1 and f"{out}: output folder is not empty" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    assert run(capsys, *argv, "--limit", "1")[0] == 0 and (out / "requests.jsonl").is_file()


# --- bad answer files ---------------------------------------------------------------------------


def replay_error(capsys, built, tmp_path, spec, *extra) -> str:
    argv = ["eval", "--model", spec, "--data", built, "--config", "synthetic", "--out", tmp_path / "replayed"]
    code, _, err = run(capsys, *argv, "--tasks", "discrimination", *extra)
    assert code == 1 and err.count("\n") == 1, err
    assert not (tmp_path / "replayed").exists()
    return err


def test_bad_answer_files_are_named_by_their_first_bad_row(built, chance, tmp_path, capsys):
    lines = (chance / "predictions.jsonl").read_text().splitlines()
    jsonl = tmp_path / "answers.jsonl"
    jsonl.write_text(lines[0] + "\n")
    err = replay_error(capsys, built, tmp_path, f"replay:{jsonl}", "--model-args", "format=vlmeval")
    assert "--model-args: replay:" in err and "unknown format 'vlmeval'" in err

    # an lmms-eval sample of a task that names no record, and one naming a record the dataset lacks
    log = tmp_path / "lmms" / "20250101_000000_samples_other_task.jsonl"
    log.parent.mkdir()
    good = {"doc_id": 0, "filtered_resps": "A", "acc": {"id": json.loads(lines[0])["id"],
            "task": "discrimination", "condition": "zero_shot"}}  # fmt: skip
    log.write_text(json.dumps(good) + "\n" + json.dumps({"doc_id": 7, "filtered_resps": "B", "acc": 1.0}) + "\n")
    err = replay_error(capsys, built, tmp_path, f"replay:{log.parent}")
    assert f"{log}:2: sample doc_id 7 names no record id, task and condition" in err
    stranger = good | {"acc": good["acc"] | {"id": "synthetic/nope/test/good/000.png"}}
    log.write_text(json.dumps(stranger) + "\n")
    err = replay_error(capsys, built, tmp_path, f"replay:{log}")
    assert f"{log}:1: record id 'synthetic/nope/test/good/000.png' is not in the dataset" in err
    log.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    err = replay_error(capsys, built, tmp_path, f"replay:{log}")
    assert f"{log}:2: duplicate prediction for" in err

    # a VLMEvalKit prediction file of some other TSV (no record_id column)
    tsv = tmp_path / "model_MMBench.tsv"
    tsv.write_text('"index"\t"question"\t"prediction"\n"3"\t"What?"\t"A"\n')
    assert detect_format(tsv) == "vlmevalkit"
    err = replay_error(capsys, built, tmp_path, f"replay:{tsv}")
    assert f"{tsv}: row index=3: no record_id, l2-category and condition" in err
    workbook = tmp_path / "model_InstructIAD_synthetic.xlsx"
    workbook.write_bytes(b"not a workbook")
    err = replay_error(capsys, built, tmp_path, f"replay:{workbook}")
    assert f"{workbook}: " in err and ("cannot read the prediction file" in err or "needs openpyxl" in err)
    missing = tmp_path / "gone.jsonl"
    err = replay_error(capsys, built, tmp_path, f"replay:{missing}")
    assert f"{missing}: cannot read the predictions file" in err
