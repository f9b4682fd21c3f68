"""The model and processor to train, loaded as ``hf:`` / ``triad:`` load them, and the LoRA
configuration checked against the model's modules."""

from __future__ import annotations

import re
from pathlib import Path

from instructiad.errors import InstructIADError
from triad_eval.settings import convert
from triad_train.options import MODEL_ARGS

TOWERS = ("vision_tower", "visual", "vision_model", "image_encoder")
"""What the families name their vision tower: frozen in full fine-tuning, never LoRA targets."""
VISION = re.compile(rf"(^|\.)({'|'.join(TOWERS)})\.")


def load(prefix: str, name: str, model_args: dict[str, str]):
    """``(processor, model, base)`` for ``hf:<name>`` / ``triad:<name>``; ``base`` is the
    absolute folder or the Hub id (what an adapter's ``base_model_name_or_path`` names).

    Raises:
        InstructIADError: a folder that is not a model (or not a converted Triad folder), a
            model without a chat template, unknown ``--model-args``, a model that cannot load.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    import triad_eval.triad  # noqa: F401 - registers the triad model type
    from triad_eval.adapters.huggingface import _check_folder
    from triad_eval.adapters.triad import check_triad_folder

    args = convert(model_args, MODEL_ARGS, f"--model-args: {prefix}:{name}")
    local = Path(name).expanduser()
    if prefix == "triad":
        if not local.exists():
            raise InstructIADError(
                f"{name}: no such folder (triad:<path> trains a folder made by `triad convert-checkpoint`)"
            )
        check_triad_folder(local)
    if local.exists():
        _check_folder(local)
        if not (local / "config.json").is_file():
            raise InstructIADError(f"{local}: a LoRA adapter folder; train its base, or a folder made with --merge")
    base = str(local.absolute()) if local.exists() else name
    dtype = args.get("dtype", "float32")
    processor_args = {"revision": args.get("revision")}
    if args.get("max_pixels"):
        processor_args["max_pixels"] = args["max_pixels"]
    try:
        processor = AutoProcessor.from_pretrained(base, **processor_args)
    except (OSError, ValueError) as error:
        raise InstructIADError(f"{name}: cannot load the processor ({str(error).splitlines()[0]})") from None
    if not getattr(processor, "chat_template", None) or not hasattr(processor, "tokenizer"):
        raise InstructIADError(
            f"{name}: the processor has no chat template; triad train renders prompts with it, as triad eval does"
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            base, dtype="auto" if dtype == "auto" else getattr(torch, dtype),
            attn_implementation=args.get("attn_implementation"), revision=args.get("revision"), use_safetensors=True,
        )  # fmt: skip
    except (OSError, ValueError, AttributeError) as error:
        raise InstructIADError(f"{name}: cannot load the model ({str(error).splitlines()[0]})") from None
    return processor, model, base


def lora_config(model, options: dict):
    """A ``peft.LoraConfig`` on the language model's modules named in ``options["targets"]``
    (a regular expression over module names: PEFT matches it the same way).

    Raises:
        InstructIADError: a target that names no linear module of the language model.
    """
    import torch
    from peft import LoraConfig

    def pattern(names: list[str]) -> str:
        alternatives = "|".join(re.escape(name) for name in names)
        return rf"^(?!(.*\.)?({'|'.join(TOWERS)})\.).*\.({alternatives})$"

    linear = [n for n, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    for target in options["targets"]:
        if not any(re.fullmatch(pattern([target]), n) for n in linear):  # as PEFT matches a string target
            known = ", ".join(sorted({n.rsplit(".", 1)[-1] for n in linear if "." in n and not VISION.search(n)}))
            raise InstructIADError(
                f"--lora targets={target}: matches no linear module outside the vision tower (the model's: {known})"
            )
    return LoraConfig(
        r=options["r"], lora_alpha=options["alpha"], lora_dropout=options["dropout"],
        target_modules=pattern(list(options["targets"])),
        bias="none", task_type="CAUSAL_LM",
    )  # fmt: skip


def freeze_vision(model) -> int:
    """Freeze the vision tower for full fine-tuning; returns how many parameters it holds."""
    frozen = 0
    for name, parameter in model.named_parameters():
        if VISION.search(name):
            parameter.requires_grad_(False)
            frozen += parameter.numel()
    return frozen
