"""`triad train`: a tiny random LLaVA-OneVision fine-tuned on the synthetic dataset, on the CPU.

The examples' prompts are checked token for token against what `hf:` sends; a full fine-tune
must learn the training questions (an overfit test: the untrained model answers none, and the
trained one must beat the most common letter); LoRA must resume to the very weights of an
uninterrupted run and merge into a folder that answers like the adapter; the leaderboard must
mark a model scored on records it was trained on; bad input stops with one line and writes
nothing.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from instructiad.export import build_dataset
from tests import tiny_models
from tests.layouts import make_folder
from triad_eval import leaderboard, space_app
from triad_eval.cli import main

HELD_OUT = "glazed_tile"
TRAIN = ["--config", "synthetic", "--train-from", "test", "--holdout-categories", HELD_OUT, "--device", "cpu"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny model gains nothing from two, and two threads slow down by an
    order of magnitude when another process holds the other core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_models.llava_onevision(tmp_path_factory.mktemp("train_model") / "llava")


def train(capsys, built, model, out, *extra) -> tuple[int, str]:
    code = main(["train", "--model", f"hf:{model}", "--data", str(built), *TRAIN, "--out", str(out), *extra])
    return code, capsys.readouterr().err


def evaluate(capsys, built, model, out, *extra) -> list[dict]:
    args = ["eval", "--model", f"hf:{model}", "--data", str(built), "--config", "synthetic", "--out", str(out)]
    code = main([*args, "--allow-failures", *extra])
    _, err = capsys.readouterr()
    assert code == 0, err
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_prompts_are_the_tokens_hf_sends_and_only_the_answer_is_learnt(built, tiny):
    from triad_eval.adapters.huggingface import HuggingFace, chat_prompt
    from triad_eval.data import open_dataset
    from triad_eval.requests import build_requests
    from triad_train.collator import IGNORE, Collator
    from triad_train.examples import build_examples
    from triad_train.options import TrainSettings
    from triad_train.selection import select_records

    conditions = ["process+one_shot", "no_image"]
    settings = TrainSettings(model=f"hf:{tiny}", data=str(built), config="synthetic", out=Path("unused"),
                             target="both", conditions=conditions, train_from="test", holdout=[HELD_OUT])  # fmt: skip
    selection = select_records(settings)
    examples = build_examples(selection, settings, ["discrimination", "root_cause"])
    assert selection.trained_on["held_out"] == [f"synthetic/{HELD_OUT}"]
    assert all(e.request.category != HELD_OUT for e in examples.items)
    evaluation, _ = build_requests(open_dataset(str(built), "synthetic"), ["discrimination", "root_cause"], conditions)
    by_key = {r.key: r for r in evaluation}
    answers = [e for e in examples.items if e.target == "answer"]
    cots = [e for e in examples.items if e.target == "cot"]
    assert len(answers) == sum(r.category != HELD_OUT for r in evaluation) and len(cots) == 14 * len(conditions)
    assert all(e.request == by_key[e.request.key] and e.completion == e.request.answer for e in answers)

    adapter = HuggingFace(f"hf:{tiny}", str(tiny))
    collator = Collator(adapter.processor, examples.items, chat_prompt)
    tokenizer = adapter.processor.tokenizer
    blind = next(e for e in answers if e.request.condition == "no_image")
    for example in (answers[0], blind, cots[0]):
        batch = collator([{"example": examples.items.index(example)}])
        sent = adapter._inputs([example.request])["input_ids"][0].tolist()
        labels = batch["labels"][0].tolist()
        prompt_length = labels.count(IGNORE)
        assert batch["input_ids"][0].tolist()[:prompt_length] == sent  # what hf: sends, token for token
        assert tokenizer.decode(labels[prompt_length:]) == f"{example.completion}<|im_end|>\n"
    cot = cots[0]
    twin = by_key[(cot.request.id, "discrimination", cot.request.condition)]
    assert cot.request.messages[0]["content"][:-1] == twin.messages[0]["content"][:-1]  # context, reference, image
    conversations = open_dataset(str(built), "synthetic", columns=["id", "conversation_messages"]).records
    user, assistant = conversations[cot.request.index]["conversation_messages"]
    assert cot.request.messages[0]["content"][-1]["text"] == user["content"][1]["text"]
    assert cot.completion == assistant["content"][0]["text"]
    batch = collator([{"example": examples.items.index(cot)}, {"example": 0}])
    first = [t for t in batch["labels"][0].tolist() if t != IGNORE]
    assert tokenizer.decode(first) == f"{cot.completion}<|im_end|>\n"  # the reasoning, then the end of the turn
    assert batch["attention_mask"][1].tolist().count(0) > 0  # the shorter row is padded on the right


LLAVA_ONEVISION_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', "
    "'text') %}{{ '\\n' + content['text'] }}{% endfor %}{% else %}{% for content in message['content'] | "
    "selectattr('type', 'equalto', 'text') %}{% generation %}{{ '\\n' + content['text'] }}{% endgeneration %}"
    "{% endfor %}{% endif %}{{'<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""llava-hf/llava-onevision-qwen2-*-ov-hf's chat template: a full conversation opens the answer
with ``assistant \\n``, the generation prompt with ``assistant\\n``."""


def test_a_template_that_opens_the_answer_differently_still_continues_the_evaluation_prompt(tiny):
    from transformers import AutoProcessor

    from triad_train.collator import completion_text

    processor = AutoProcessor.from_pretrained(tiny)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Defect?\nA. Yes\nB. No"}]}]
    assert completion_text(processor, messages, "B") == "B<|im_end|>\n"  # the tiny model's Qwen template
    processor.chat_template = LLAVA_ONEVISION_TEMPLATE
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")
    assert completion_text(processor, messages, "B") == "B<|im_end|>"  # what follows that prompt, not "assistant \n"


def test_full_fine_tuning_learns_the_training_questions(built, tiny, tmp_path, capsys):
    out = tmp_path / "full"
    code, err = train(capsys, built, tiny, out, "--target", "answer", "--tasks", "discrimination", "--full",
                      "--batch-size", "14", "--max-steps", "80", "--learning-rate", "3e-3",
                      "--lr-scheduler", "constant", "--log-steps", "10")  # fmt: skip
    assert code == 0, err
    assert not out.with_name(f".{out.name}.training").exists()  # the work folder goes once the model is written
    assert {"config.json", "model.safetensors", "training_args.json", "README.md", "chat_template.jinja"} <= {
        p.name for p in out.iterdir()
    }
    args = json.loads((out / "training_args.json").read_text())
    losses = [entry["loss"] for entry in args["log"]]
    assert losses[0] > 4 and losses[-1] < 0.25 * losses[0]
    assert args["trained_on"]["held_out"] == [f"synthetic/{HELD_OUT}"] and args["trained_on"]["records"] == 14
    assert args["trained_on"]["dataset"]["fingerprint"] in (out / "README.md").read_text()
    assert args["method"] == {
        "kind": "full",
        "frozen": "vision tower",
        "frozen_parameters": args["method"]["frozen_parameters"],
    }

    trained = evaluate(capsys, built, out, tmp_path / "run-trained", "--tasks", "discrimination")
    untrained = evaluate(capsys, built, tiny, tmp_path / "run-untrained", "--tasks", "discrimination")

    def accuracy(rows):
        seen = [r for r in rows if r["category"] != HELD_OUT]
        return sum(r["parsed"] == r["answer"] for r in seen) / len(seen)

    majority = max(Counter(r["answer"] for r in trained if r["category"] != HELD_OUT).values()) / 14
    assert accuracy(untrained) < 0.3
    assert accuracy(trained) >= 0.7 and accuracy(trained) > majority  # it learnt the questions, not one letter

    board = tmp_path / "board"
    assert (
        main(["leaderboard", str(tmp_path / "run-trained"), str(tmp_path / "run-untrained"), "--out", str(board)]) == 0
    )
    entry = next(e for e in json.loads((board / "leaderboard.json").read_text())["entries"] if "training" in e)
    assert entry["training"]["scored_records_trained_on"] == 14 and entry["training"]["scored_records"] == 21
    markdown = (board / "leaderboard.md").read_text()
    assert f"hf:{out} †" in markdown and "trained on 14 of the 21 records scored here" in markdown
    published = json.loads((board / "leaderboard.json").read_text())  # the Space marks it the same way
    for group, rows in zip(space_app.tables(published), leaderboard._groups(published).values(), strict=True):
        assert group["headline"] == leaderboard._headline(rows) and group["detail"] == leaderboard._board_table(rows)
    # the same model scored on the train split (normal images it never saw) is not marked
    evaluate(capsys, built, out, tmp_path / "run-train-split", "--tasks", "discrimination", "--split", "train")
    assert main(["leaderboard", str(tmp_path / "run-train-split"), "--out", str(tmp_path / "board2")]) == 0
    markdown = (tmp_path / "board2" / "leaderboard.md").read_text()
    assert "†" not in markdown.split("Fine-tuned models")[0] and "none of the 6 records scored here" in markdown
    capsys.readouterr()


def _stop_at(step: int):
    from transformers import TrainerCallback

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise KeyboardInterrupt

    return Stop()


def test_lora_resumes_to_the_same_weights_and_merges(built, tiny, tmp_path, capsys, monkeypatch):
    import triad_train.trainer as trainer_module

    lora = ["--target", "answer", "--tasks", "discrimination", "--lora", "r=8,alpha=16,targets=q_proj,v_proj",
            "--batch-size", "4", "--max-steps", "6", "--save-steps", "2", "--log-steps", "1",
            "--learning-rate", "2e-2"]  # fmt: skip
    whole, resumed, merged = tmp_path / "whole", tmp_path / "resumed", tmp_path / "merged"
    assert train(capsys, built, tiny, whole, *lora)[0] == 0
    args = json.loads((whole / "training_args.json").read_text())
    assert args["log"][-1]["loss"] < args["log"][0]["loss"]
    assert args["method"]["targets"] == ["q_proj", "v_proj"] and args["optimization"]["steps"] == 6

    original = trainer_module._trainer
    monkeypatch.setattr(trainer_module, "_trainer", _with_callback(original, _stop_at(5)))  # Ctrl-C after step 5
    code, err = train(capsys, built, tiny, resumed, *lora)
    work = resumed.with_name(f".{resumed.name}.training")
    assert code == 130 and not resumed.exists() and "--resume continues from" in err
    assert sorted(p.name for p in (work / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    monkeypatch.setattr(trainer_module, "_trainer", original)
    code, err = train(capsys, built, tiny, resumed, *lora)
    assert code == 1 and "--resume continues it" in err
    code, err = train(capsys, built, tiny, resumed, *lora, "--resume")
    assert code == 0, err
    for name in ("adapter_model.safetensors", "training_args.json"):
        assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name

    assert train(capsys, built, tiny, merged, *lora, "--merge")[0] == 0
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    adapter = evaluate(capsys, built, whole, tmp_path / "run-adapter", "--tasks", "discrimination", "--limit", "8")
    plain = evaluate(capsys, built, merged, tmp_path / "run-merged", "--tasks", "discrimination", "--limit", "8")
    assert [r["raw"] for r in adapter] == [r["raw"] for r in plain]
    config = json.loads((tmp_path / "run-adapter" / "config.json").read_text())
    assert config["generation"]["trained_on"]["weights_sha256"] == args["trained_on"]["weights_sha256"]


def _with_callback(original, callback):
    """``_trainer`` with ``callback`` added to the trainer it makes."""

    def make(*args):
        trainer = original(*args)
        trainer.add_callback(callback)
        return trainer

    return make


def test_triad_trains_with_the_experts_region_tokens(built, maps, tmp_path, capsys):
    from triad_eval.adapters.triad import triad_prompt
    from triad_eval.experts import parse_expert
    from triad_train.collator import Collator
    from triad_train.examples import build_examples
    from triad_train.model import load
    from triad_train.options import TrainSettings
    from triad_train.selection import select_records

    original = tiny_models.triad_original(tmp_path / "original")
    assert main(["convert-checkpoint", str(original), str(tmp_path / "triad")]) == 0
    expert = ["--conditions", "expert", "--expert", f"maps:{maps}", "--expert-args", "crop=32"]
    settings = TrainSettings(model=f"triad:{tmp_path / 'triad'}", data=str(built), config="synthetic", out=tmp_path,
                             target="answer", conditions=["expert"], train_from="test", holdout=[HELD_OUT],
                             expert=f"maps:{maps}", expert_args={"crop": "32"})  # fmt: skip
    parsed = parse_expert(settings.expert, settings.expert_args)
    examples = build_examples(select_records(settings), settings, ["discrimination"], parsed).items
    processor, _, _ = load("triad", str(tmp_path / "triad"), {})
    with_regions = next(i for i, e in enumerate(examples) if e.request.notes["boxes"])
    batch = Collator(processor, examples, triad_prompt)([{"example": with_regions}])
    assert batch["roi_counts"].tolist() == [len(examples[with_regions].request.notes["boxes"])]  # crops per image

    out = tmp_path / "trained"
    argv = ["train", "--model", f"triad:{tmp_path / 'triad'}", "--data", str(built), *TRAIN, "--out", str(out),
            "--target", "answer", "--tasks", "discrimination", *expert, "--lora", "r=4", "--max-steps", "2",
            "--batch-size", "2"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert (out / "adapter_config.json").is_file()
    argv = ["eval", "--model", f"triad:{out}", "--data", str(built), "--config", "synthetic", "--tasks",
            "discrimination", "--limit", "2", "--allow-failures"]  # fmt: skip
    assert main([*argv, *expert, "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    assert main([*argv, "--conditions", "no_image", "--out", str(tmp_path / "blind")]) == 1
    assert "cannot answer without an image" in capsys.readouterr().err


def test_qwen2_vl_trains_on_both_targets_and_loads(built, tmp_path, capsys):
    model = tiny_models.qwen2_vl(tmp_path / "qwen")
    out = tmp_path / "trained"
    code, err = train(capsys, built, model, out, "--target", "both", "--conditions", "zero_shot,process+one_shot",
                      "--max-steps", "2", "--batch-size", "3", "--merge")  # fmt: skip
    assert code == 0, err
    args = json.loads((out / "training_args.json").read_text())
    assert args["examples"]["cot"] == 28 and args["conditions"] == ["zero_shot", "process+one_shot"]
    rows = evaluate(capsys, built, out, tmp_path / "run", "--tasks", "discrimination", "--limit", "2",
                    "--conditions", "process+one_shot")  # fmt: skip
    assert len(rows) == 2 and all(r["status"] != "failed" for r in rows)


def _no_template(tiny: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "no-template"
    shutil.copytree(tiny, folder)
    (folder / "chat_template.jinja").unlink()
    for name in ("processor_config.json", "tokenizer_config.json"):
        config = json.loads((folder / name).read_text())
        config.pop("chat_template", None)
        (folder / name).write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def without_conversations(tmp_path_factory) -> Path:
    """A dataset of a `folder` source without process annotations: questions, no CoT-M conversations."""
    root = tmp_path_factory.mktemp("plain")
    make_folder(root / "src")
    build_dataset([("folder", root / "src")], root / "dataset")
    return root / "dataset"


BAD = {
    "no conversations": (["--config", "folder", "--train-from", "test", "--holdout-categories", "hinge"],
                         "has no CoT-M conversations"),
    "no chat template": ([], "no chat template"),
    "lora target": (["--lora", "r=4,targets=q_proj,nope"], "--lora targets=nope: matches no linear module"),
    "train split without anomalies": (["--train-from", "train"], "holds no anomalous image"),
    "test split without held-out categories": (["--holdout-categories", ""], "--holdout-categories"),
    "unknown held-out category": (["--holdout-categories", "marble"], "has no such category"),
    "full and lora": (["--full", "--lora", "r=4"], "exclude each other"),
    "not a trainable spec": ([], "triad train takes hf:"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case, built, tiny, without_conversations, tmp_path, capsys):
    extra, message = BAD[case]
    model = f"hf:{_no_template(tiny, tmp_path) if case == 'no chat template' else tiny}"
    model = "openai:gpt-4o" if case == "not a trainable spec" else model
    data = without_conversations if case == "no conversations" else built
    out = tmp_path / "out"
    base = ["train", "--model", model, "--data", str(data), *TRAIN, "--out", str(out)]
    code = main([*base, *extra])
    _, err = capsys.readouterr()
    said = [line for line in err.splitlines() if line.startswith("triad:")]  # (a model load draws a progress bar)
    assert code == 1 and len(said) == 1 and said[0].startswith("triad: error: ") and message in said[0], err
    assert not out.exists() and not out.with_name(f".{out.name}.training").exists()


def test_an_existing_output_folder_is_refused(built, tiny, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code, err = train(capsys, built, tiny, out)
    assert code == 1 and "already exists" in err and list(out.iterdir()) == []


def test_trained_records_are_matched_by_id():
    from triad_eval.trained import covers, trained_scored, training_set

    trained = training_set({}, "test", ["synthetic/steel_sheet"], ["synthetic/glazed_tile"], 7)
    assert covers(trained, "synthetic/steel_sheet/test/pit/000.png")
    assert not covers(trained, "synthetic/steel_sheet/train/good/000.png")
    assert not covers(trained, "synthetic/glazed_tile/test/crack/000.png")
    ids = ["synthetic/steel_sheet/test/pit/000.png"] * 3 + ["synthetic/glazed_tile/test/chip/001.png"]
    assert trained_scored(trained, ids) == 1
