"""`triad train`: fine-tune an ``hf:`` or ``triad:`` model on a built InstructIAD folder with
TRL's ``SFTTrainer``.

Everything that can be refused (settings, dataset, held-out categories, model, chat template,
LoRA targets, the first batch) is checked before anything is written. The run then works in a
hidden sibling of ``--out`` (``.<out>.training/``: its settings, a lock, the trainer's
checkpoints), which ``--resume`` continues from its last complete checkpoint; the output
folder appears only when training is done, holding the model (or the LoRA adapter), its
processor, ``training_args.json`` and a model card.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.jsonio import read_json, write_json
from triad_eval.adapters.huggingface import TRAINING_ARGS
from triad_eval.conditions import is_blind, parse_condition
from triad_eval.requests import parse_tasks
from triad_train.card import FORMAT, model_card, weights_digest
from triad_train.options import TrainSettings, check, lora_options, model_spec

SETTINGS = "settings.json"
"""In the work folder: the settings a ``--resume`` must match."""
CHECKPOINTS = "checkpoints"
DEFAULT_LEARNING_RATE = {"lora": 2e-4, "full": 2e-5}


@dataclass
class TrainResult:
    """A finished run: the output folder and what its training_args.json holds."""

    folder: Path
    args: dict


def work_folder(out: Path) -> Path:
    """The hidden sibling a run of ``out`` works in (checkpoints for ``--resume``)."""
    return out.with_name(f".{out.name}.training")


def default_tasks(config: str) -> list[str]:
    """The question types of ``config`` (as `triad eval` asks them): MMAD's for ``mmad``, CoT-M's otherwise."""
    from cot_m.questions import QUESTION_TYPES
    from instructiad.sources import mmad

    return list(mmad.TASKS) if config == mmad.NAME else [t for t in QUESTION_TYPES if t not in mmad.TASKS]


def train(settings: TrainSettings) -> TrainResult:
    """Train as ``settings`` says and write the output folder.

    Raises:
        InstructIADError: bad input (nothing is written), an output folder that exists, or
            ``--resume`` of a run made with other settings.
    """
    from triad_eval.experts import parse_expert
    from triad_train.collator import Collator
    from triad_train.examples import build_examples
    from triad_train.model import freeze_vision, load, lora_config
    from triad_train.selection import select_records

    check(settings)
    prefix, name = model_spec(settings.model)
    lora = None if settings.full else lora_options(settings.lora)
    device, bf16 = _device(settings)
    out = Path(settings.out).expanduser().absolute()
    work = work_folder(out)
    if out.exists():
        raise InstructIADError(f"{out}: already exists; choose another --out")
    if work.exists() and not settings.resume:
        raise InstructIADError(f"{out}: an unfinished run is in {work}; --resume continues it (or delete that folder)")
    tasks = parse_tasks(settings.tasks or default_tasks(settings.config))
    expert = parse_expert(settings.expert, settings.expert_args)
    conditions = [parse_condition(c, expert)[0] for c in settings.conditions]
    blind = next((c for c in conditions if is_blind(c)), None)
    if prefix == "triad" and blind:
        raise InstructIADError(f"{settings.model} cannot answer without an image; drop condition {blind}")
    settings.conditions = conditions
    selection = select_records(settings)
    examples = build_examples(selection, settings, tasks, expert)
    processor, model, base = load(prefix, name, settings.model_args)
    padding_side = processor.tokenizer.padding_side
    collator = Collator(processor, examples.items, _prompt_function(prefix))
    collator.check()
    peft_config = lora_config(model, lora) if lora else None
    frozen = 0 if lora else freeze_vision(model)
    learning_rate = settings.learning_rate or DEFAULT_LEARNING_RATE["lora" if lora else "full"]
    print(
        f"triad train: {len(examples.items)} examples ({', '.join(f'{k} {v}' for k, v in examples.counts.items())}) "
        f"from {len(selection.indices)} records of split {settings.train_from} "
        f"(held out: {', '.join(selection.trained_on['held_out']) or 'none'}); {'LoRA' if lora else 'full'}, "
        f"{device}{', bf16' if bf16 else ''}; work folder {work}",
        file=sys.stderr,
    )
    with _claim(work, settings):
        trainer = _trainer(settings, model, processor, collator, peft_config, work, device, bf16, learning_rate)
        try:
            trainer.train(resume_from_checkpoint=_last_checkpoint(work / CHECKPOINTS))
        except BaseException:
            last = _last_checkpoint(work / CHECKPOINTS)
            if last is not None:
                print(f"triad train: stopped; the same command with --resume continues from {last}", file=sys.stderr)
            raise
        final = work / "model"
        if final.exists():
            shutil.rmtree(final)
        trained = trainer.model.merge_and_unload() if lora and settings.merge else trainer.model
        trained.save_pretrained(final)
        processor.tokenizer.padding_side = padding_side
        processor.save_pretrained(final)
        trained_on = selection.trained_on | {"weights_sha256": weights_digest(final)}
        args = {
            "format": FORMAT,
            "model": settings.model,
            "base_model": base,
            "trained_on": trained_on,
            "target": settings.target,
            "tasks": tasks if settings.target != "cot" else [],
            "conditions": conditions,
            "seed": settings.seed,
            "examples": examples.counts,
            "skipped": examples.skipped,
            "unavailable": examples.unavailable,
            "method": _method(lora, settings.merge, frozen),
            "optimization": {
                "epochs": settings.epochs,
                "max_steps": settings.max_steps,
                "steps": trainer.state.global_step,
                "batch_size": settings.batch_size,
                "gradient_accumulation": settings.grad_accum,
                "learning_rate": learning_rate,
                "lr_scheduler": settings.scheduler,
                "precision": "bf16" if bf16 else "fp32",
                "gradient_checkpointing": settings.gradient_checkpointing,
                "expert": settings.expert,
                "expert_args": settings.expert_args,
                "limit": settings.limit,
            },
            "log": _log(trainer.state.log_history),
            "packages": _versions(),
        }
        write_json(final / TRAINING_ARGS, args)
        (final / "README.md").write_text(model_card(args, out.name), encoding="utf-8")
        os.replace(final, out)
    shutil.rmtree(work, ignore_errors=True)
    return TrainResult(out, args)


def _prompt_function(prefix: str):
    """The adapter's own prompt builder, so that training prompts are evaluation prompts."""
    if prefix == "triad":
        from triad_eval.adapters.triad import triad_prompt

        return triad_prompt
    from triad_eval.adapters.huggingface import chat_prompt

    return chat_prompt


def _device(settings: TrainSettings) -> tuple[str, bool]:
    """(device, bf16): ``auto`` is CUDA where there is one; bf16 where the device supports it."""
    import torch

    cuda = torch.cuda.is_available()
    device = ("cuda" if cuda else "cpu") if settings.device == "auto" else settings.device
    if device == "cuda" and not cuda:
        raise InstructIADError("--device cuda: no CUDA device here")
    supported = device == "cuda" and torch.cuda.is_bf16_supported()
    bf16 = settings.precision == "bf16" or (settings.precision == "auto" and supported)
    return device, bf16


def _trainer(settings, model, processor, collator, peft_config, work: Path, device: str, bf16: bool, lr: float):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=str(work / CHECKPOINTS),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        learning_rate=lr,
        lr_scheduler_type=settings.scheduler,
        warmup_steps=0,
        weight_decay=0.0,
        logging_steps=settings.log_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=bf16,
        fp16=False,
        use_cpu=device == "cpu",
        report_to="none",
        remove_unused_columns=False,  # rows are {"example": i}; the collator builds the inputs
        dataset_kwargs={"skip_prepare_dataset": True},
        activation_checkpointing=settings.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        dataloader_num_workers=0,
        max_length=None,  # never cut image tokens
    )
    rows = Dataset.from_dict({"example": list(range(len(collator.examples)))})
    with warnings.catch_warnings():  # trl asks transformers 5 by the old name; nothing a user can change
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        trainer = SFTTrainer(
            model=model, args=config, train_dataset=rows, data_collator=collator, processing_class=processor,
            peft_config=peft_config, callbacks=[_log_last_step_callback()],
        )  # fmt: skip
    return trainer


def _log_last_step_callback():
    from transformers import TrainerCallback

    class LogLastStep(TrainerCallback):
        """Log the last step too, so the loss the run ended with is in training_args.json."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_log = True

    return LogLastStep()


@contextmanager
def _claim(work: Path, settings: TrainSettings) -> Iterator[None]:
    """Create (or, resuming, check) the work folder and hold its lock while training. A run
    that stops before its first checkpoint leaves nothing behind."""
    work.mkdir(parents=True, exist_ok=True)
    handle = (work / ".lock").open("a")
    locked = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstructIADError(f"{work}: another triad train is working here") from None
        locked = True
        identity = settings.identity()
        if (work / SETTINGS).is_file():
            before = read_json(work / SETTINGS)
            changed = next((k for k in sorted(set(before) | set(identity)) if before.get(k) != identity.get(k)), None)
            if changed is not None:
                raise InstructIADError(
                    f"{work}: made with other settings ({changed}: {before.get(changed)!r}, now "
                    f"{identity.get(changed)!r}); --resume needs the same ones"
                )
        else:
            write_json(work / SETTINGS, identity)
        yield
    except BaseException:
        if locked and _last_checkpoint(work / CHECKPOINTS) is None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        handle.close()


def _last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint (the trainer writes trainer_state.json last); partial
    ones, left by a run killed while saving, are removed."""
    if not folder.is_dir():
        return None
    complete = []
    for path in folder.glob("checkpoint-*"):
        if not path.name.removeprefix("checkpoint-").isdigit():
            continue
        if (path / "trainer_state.json").is_file():
            complete.append(path)
        else:
            shutil.rmtree(path)
    if not complete:
        return None
    return str(max(complete, key=lambda p: int(p.name.removeprefix("checkpoint-"))))


def _method(lora: dict | None, merge: bool, frozen: int) -> dict:
    if lora is None:
        return {"kind": "full", "frozen": "vision tower", "frozen_parameters": frozen}
    return {"kind": "lora", "r": lora["r"], "alpha": lora["alpha"], "dropout": lora["dropout"],
            "targets": list(lora["targets"]), "merged": merge}  # fmt: skip


def _log(history: list[dict]) -> list[dict]:
    """The logged training steps (loss, gradient norm, learning rate, token accuracy); timings left out."""
    keys = ("loss", "grad_norm", "learning_rate", "mean_token_accuracy")
    return [
        {"step": entry["step"], **{k: round(float(entry[k]), 6) for k in keys if k in entry}}
        for entry in history
        if "loss" in entry
    ]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("instructiad", "torch", "transformers", "trl", "peft", "accelerate"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
