"""What a trained folder says about itself: ``training_args.json`` and the model card (README.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

FORMAT = 1
"""Version of the training_args.json layout."""


def weights_digest(folder: Path) -> str:
    """sha256 over the names and bytes of the folder's safetensors files, in name order."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def model_card(args: dict, name: str) -> str:
    """README.md of a trained folder: Hub metadata, then what it was trained on and held out."""
    trained, method, optim = args["trained_on"], args["method"], args["optimization"]
    dataset = trained["dataset"]
    meta: dict = {}
    if not Path(args["base_model"]).is_absolute():
        meta["base_model"] = args["base_model"]
    meta["library_name"] = "peft" if method["kind"] == "lora" and not method["merged"] else "transformers"
    meta["pipeline_tag"] = "image-text-to-text"
    meta["tags"] = ["instructiad", "industrial-anomaly-detection", "trl", "sft",
                    "lora" if method["kind"] == "lora" else "full-fine-tuning"]  # fmt: skip
    if not Path(dataset["source"]).is_absolute():
        meta["datasets"] = [dataset["source"]]
    if method["kind"] == "lora":
        targets = ", ".join(method["targets"])
        how = f"LoRA (r={method['r']}, alpha={method['alpha']:g}, dropout={method['dropout']:g}, on {targets})"
        how += ", merged into the weights" if method["merged"] else ", an adapter (loads with its base; needs peft)"
    else:
        frozen = method["frozen_parameters"]
        how = f"full fine-tuning of the language model and projector (vision tower frozen: {frozen:,} parameters)"
    held = ", ".join(trained["held_out"]) or "none"
    categories = ", ".join(trained["categories"])
    examples = ", ".join(f"{k} {v}" for k, v in args["examples"].items())
    losses = [entry["loss"] for entry in args["log"] if "loss" in entry]
    loss = f"{losses[0]:.4f} (first logged step) to {losses[-1]:.4f} (last)" if losses else "-"
    rows = [
        ("base model", f"`{args['base_model']}` (`{args['model']}`)"),
        ("method", how),
        ("dataset", f"`{dataset['source']}`, config `{dataset['config']}`, revision `{dataset['revision'] or '-'}`"),
        ("dataset fingerprint", f"`{dataset['fingerprint']}`"),
        ("template sets", ", ".join(f"`{s}`" for s in dataset["template_sets"])),
        ("trained on", f"split `{trained['split']}`: {trained['records']} records of {categories}"),
        ("held out", held),
        ("target", f"`{args['target']}` ({examples} examples); tasks {', '.join(args['tasks']) or '-'}"),
        ("conditions", ", ".join(args["conditions"])),
        ("seed", str(args["seed"])),
        ("steps", f"{optim['steps']} (batch {optim['batch_size']} x accumulation {optim['gradient_accumulation']}, "
                  f"learning rate {optim['learning_rate']:g}, {optim['precision']})"),
        ("loss", loss),
        ("weights sha256", f"`{trained['weights_sha256']}`"),
    ]  # fmt: skip
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "", f"# {name}", ""]
    lines += [
        "Fine-tuned with `triad train` (TRL's SFTTrainer) on InstructIAD: prompts exactly as `triad eval` sends "
        "them, loss on the answer tokens only. Everything the run depended on is in `training_args.json`.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in rows),
        "",
        "## Evaluate it",
        "",
        "```bash",
        f"triad eval --model {args['model'].split(':', 1)[0]}:<this folder> --data {dataset['source']} "
        f"--config {dataset['config']} --out runs/{name}",
        "```",
        "",
        f"Score only records it was not trained on: split `{trained['split']}` of the categories above was "
        "seen in training. `triad leaderboard` marks a run that scores any record it was trained on.",
        "",
    ]
    return "\n".join(lines)
