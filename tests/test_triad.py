"""Triad: region-of-interest tokens, the checkpoint converter and `triad:<path>` runs, with
tiny random checkpoints written in the original LLaVA-NeXT layout."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("transformers")

import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

from tests import tiny_models
from triad_eval.cli import main
from triad_eval.triad import TriadForConditionalGeneration, TriadProcessor, region_tokens
from triad_eval.triad.convert import rename

SIDE = 9  # the tiny tower's patches per side (Triad's SigLIP: 27)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Both variants, original layout and converted."""
    root = tmp_path_factory.mktemp("triad")
    folders = {}
    for variant in ("zero_shot", "one_shot"):
        original = tiny_models.triad_original(root / f"original-{variant}", variant)
        assert main(["convert-checkpoint", str(original), str(root / variant)]) == 0
        folders[variant] = (original, root / variant)
    return folders


def _inputs(processor, crops: int):
    image = Image.new("RGB", (80, 60), (120, 30, 30))
    regions = [Image.new("RGB", (30, 20 + i), (40 * i, 90, 0)) for i in range(crops)]
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Any defect?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(images=[image], text=[text], roi_images=[regions], return_tensors="pt")


def _pooled(crop_features: torch.Tensor, kernel: int) -> torch.Tensor:
    """Average over kernel x kernel blocks, written out (floor, as avg_pool2d)."""
    count, _, hidden = crop_features.shape
    keep = SIDE // kernel * kernel
    grid = crop_features.view(count, SIDE, SIDE, hidden)[:, :keep, :keep]
    blocks = grid.reshape(count, keep // kernel, kernel, keep // kernel, kernel, hidden).mean(dim=(2, 4))
    return blocks.reshape(-1, hidden)


def test_region_token_counts_follow_triads_pooling():
    assert [region_tokens(k, 27) for k in range(6)] == [0, 729, 2 * 169, 3 * 169, 4 * 169, 5 * 81]
    assert [region_tokens(k, SIDE) for k in range(6)] == [0, 81, 32, 48, 64, 45]


@pytest.mark.parametrize("variant", ["zero_shot", "one_shot"])
def test_region_tokens_count_and_placement_for_0_to_5_crops(checkpoints, variant):
    folder = checkpoints[variant][1]
    model = TriadForConditionalGeneration.from_pretrained(folder).eval()
    processor = TriadProcessor.from_pretrained(folder)
    token = model.config.image_token_id
    with torch.inference_mode():
        plain = _inputs(processor, 0)
        without = model.model.get_image_features(**_image_args(plain)).pooler_output[0]
        # a crop goes through exactly the image's path: tower, layer, projector (the base tile here)
        base_tile = plain["pixel_values"][0][:1]
        assert torch.allclose(model.model.encode_crops(base_tile)[0], without[: SIDE * SIDE], atol=1e-6)
        for crops in range(6):
            inputs = _inputs(processor, crops)
            assert inputs["roi_counts"].tolist() == [crops]
            assert inputs["roi_pixel_values"].shape == (crops, 3, 54, 54)
            features = model.model.get_image_features(**_image_args(inputs)).pooler_output[0]
            n_tokens = int((inputs["input_ids"] == token).sum())
            assert n_tokens == features.shape[0]
            kernel = 1 if crops <= 1 else (2 if crops <= 4 else 3)
            regions = _pooled(model.model.encode_crops(inputs["roi_pixel_values"]), kernel) if crops else None
            if variant == "zero_shot":
                # AnyRes tokens unchanged, then the region tokens
                assert n_tokens == (int((plain["input_ids"] == token).sum()) + region_tokens(crops, SIDE))
                assert torch.allclose(features[: without.shape[0]], without)
                tail = features[without.shape[0] :]
            else:
                # base tile, region tokens, newline
                assert n_tokens == SIDE * SIDE + region_tokens(crops, SIDE) + 1
                assert torch.allclose(features[: SIDE * SIDE], without[: SIDE * SIDE])
                assert torch.equal(features[-1], model.model.image_newline)
                tail = features[SIDE * SIDE : -1]
            assert tail.shape[0] == region_tokens(crops, SIDE)
            if crops:
                assert torch.allclose(tail, regions, atol=1e-6)
            output = model.generate(**inputs, max_new_tokens=2, do_sample=False)
            assert output.shape[1] == inputs["input_ids"].shape[1] + 2


def _image_args(inputs) -> dict:
    keys = ("pixel_values", "image_sizes", "roi_pixel_values", "roi_counts", "batch_num_images")
    return {k: inputs[k] for k in keys if k in inputs}


def test_converter_maps_every_key_and_round_trips_through_from_pretrained(checkpoints):
    from transformers import AutoModelForImageTextToText

    original, converted = checkpoints["zero_shot"]
    model, info = TriadForConditionalGeneration.from_pretrained(converted, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    state = model.state_dict()
    tower = "model.vision_tower."
    if any(k.startswith("model.vision_tower.vision_model.") for k in state):
        tower = "model.vision_tower.vision_model."
    source_keys = []
    for file in sorted(original.glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - not iterable
                source_keys.append(key)
                new = rename(key, tower)
                if new is None:
                    continue
                tensor = handle.get_tensor(key)
                assert torch.equal(state[new][: tensor.shape[0]], tensor), key
    mapped = {rename(k, tower) for k in source_keys} - {None}
    assert mapped == set(state)  # none unmapped, none left over
    assert model.config.roi_variant == "zero_shot" and model.config.vision_feature_layer == -1
    assert model.config.vision_config.num_hidden_layers == 2
    # the added <image>/<video> rows start at the mean embedding
    embed = state["model.language_model.embed_tokens.weight"]
    assert torch.allclose(embed[-1], embed[:-2].mean(0), atol=1e-6)
    again = AutoModelForImageTextToText.from_pretrained(converted)
    assert type(again).__name__ == "TriadForConditionalGeneration"
    from triad_eval.adapters import load_adapter

    plain = load_adapter(f"hf:{converted}")  # hf: runs it too (crops as extra images, no region tokens)
    assert type(plain.model).__name__ == "TriadForConditionalGeneration"
    tokenizer_config = json.loads((converted / "config.json").read_text())
    assert tokenizer_config["model_type"] == "triad"
    assert checkpoints["one_shot"][1].joinpath("config.json").read_text().count('"one_shot"') == 1


def _fails(capsys, argv: list[str], *needles: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_converter_bad_input(checkpoints, tmp_path, capsys):
    original = checkpoints["zero_shot"][0]

    def copy(name: str):
        folder = tmp_path / name
        shutil.copytree(original, folder)
        return folder

    _fails(capsys, ["convert-checkpoint", str(tmp_path), str(tmp_path / "a")], "no config.json")
    hf = tiny_models.llava_onevision(tmp_path / "hf")
    capsys.readouterr()  # the model's own save progress
    _fails(capsys, ["convert-checkpoint", str(hf), str(tmp_path / "b")], "already in the transformers layout")
    other = copy("other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["LlamaForCausalLM"]}))
    _fails(capsys, ["convert-checkpoint", str(other), str(tmp_path / "c")], "not a Triad or LLaVA-OneVision")
    aspect = copy("aspect")
    (aspect / "config.json").write_text(json.dumps({**config, "image_aspect_ratio": "pad"}))
    _fails(capsys, ["convert-checkpoint", str(aspect), str(tmp_path / "d")], "image_aspect_ratio 'pad'")
    extra = copy("extra")
    save_file({"model.extra_head.weight": torch.zeros(2)}, extra / "model-extra.safetensors")
    _fails(capsys, ["convert-checkpoint", str(extra), str(tmp_path / "e")], "no rule maps", "model.extra_head.weight")
    deeper = copy("deeper")  # a layer config.json does not declare
    save_file({"model.layers.7.mlp.up_proj.weight": torch.zeros(64, 32)}, deeper / "model-extra.safetensors")
    _fails(capsys, ["convert-checkpoint", str(deeper), str(tmp_path / "h")], "left over", "model.layers.7")
    missing = copy("missing")
    shard = missing / "model-00002-of-00002.safetensors"
    with safe_open(shard, framework="pt") as handle:
        kept = {k: handle.get_tensor(k) for k in handle.keys() if k != "model.image_newline"}  # noqa: SIM118
    save_file(kept, shard)
    _fails(capsys, ["convert-checkpoint", str(missing), str(tmp_path / "f")], "missing", "model.image_newline")
    pickled = copy("pickled")
    for file in pickled.glob("*.safetensors"):
        file.rename(file.with_suffix(".bin"))
    _fails(capsys, ["convert-checkpoint", str(pickled), str(tmp_path / "g")], "no .safetensors", "pickle")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    _fails(capsys, ["convert-checkpoint", str(original), str(busy)], "not empty")
    for name in "abcdefgh":
        assert not (tmp_path / name).exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging folder left behind


@pytest.mark.parametrize(
    ("variant", "conditions"),
    [("zero_shot", ["zero_shot", "expert"]), ("one_shot", ["one_shot+expert", "process+one_shot+expert"])],
)
def test_triad_runs_the_expert_condition_with_region_tokens(
    checkpoints, built, maps, tmp_path, capsys, variant, conditions
):
    from triad_eval.adapters import load_adapter
    from triad_eval.data import open_dataset
    from triad_eval.experts import parse_expert
    from triad_eval.requests import build_requests

    folder = checkpoints[variant][1]
    out = tmp_path / "run"
    argv = ["eval", "--model", f"triad:{folder}", "--data", str(built), "--config", "synthetic", "--out", str(out),
            "--conditions", ",".join(conditions), "--expert", f"maps:{maps}", "--expert-args", "crop=32",
            "--tasks", "discrimination", "--limit", "4", "--batch-size", "3", "--allow-failures"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["condition"] for r in rows} == set(conditions)
    assert all(r["status"] in ("ok", "unparsed") for r in rows)

    adapter = load_adapter(f"triad:{folder}")
    data = open_dataset(str(built), "synthetic")
    expert = parse_expert(f"maps:{maps}", {"crop": "32"})
    requests, _ = build_requests(data, ["discrimination"], [conditions[-1]], expert=expert)
    request = next(r for r in requests if r.notes["boxes"])
    messages, images, extra = adapter._prompt(request)
    query = len(images) - 1  # the query image comes last (after a one-shot reference)
    assert len(extra["roi_images"]) == len(images) and not any(extra["roi_images"][:query])
    assert len(extra["roi_images"][query]) == len(request.notes["boxes"])
    texts = [p["text"] for p in messages[0]["content"] if p["type"] == "text"]
    assert not any("inspection model" in t for t in texts)


def test_triad_spec_names_what_to_do_with_other_checkpoints(checkpoints, built, tmp_path, capsys):
    base = ["eval", "--data", str(built), "--config", "synthetic", "--limit", "1"]
    original = checkpoints["zero_shot"][0]
    _fails(capsys, [*base, "--model", f"triad:{original}", "--out", str(tmp_path / "a")], "triad convert-checkpoint")
    hf = tiny_models.llava_onevision(tmp_path / "hf")
    capsys.readouterr()
    _fails(capsys, [*base, "--model", f"triad:{hf}", "--out", str(tmp_path / "b")], f"hf:{hf}")
    _fails(capsys, [*base, "--model", f"triad:{tmp_path / 'nope'}", "--out", str(tmp_path / "c")], "no such folder")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    _fails(capsys, [*base, "--model", f"triad:{broken}", "--out", str(tmp_path / "d")], "config.json: unreadable")
