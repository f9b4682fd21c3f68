"""What a `triad train` run is asked to do: :class:`TrainSettings`, and the ``--lora`` and
``--model-args`` it takes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from instructiad.errors import InstructIADError
from triad_eval.settings import convert

TARGETS = ("cot", "answer", "both")
"""``cot``: the CoT-M conversation's reasoning; ``answer``: the option letter of each
multiple-choice question; ``both``: both kinds of example."""
PRECISIONS = ("auto", "bf16", "fp32")
SCHEDULERS = ("linear", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")
MODEL_PREFIXES = ("hf", "triad")

LORA_DEFAULTS = {
    "r": 16,
    "alpha": 32,
    "dropout": 0.05,
    "targets": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
}
"""LoRA on every attention and MLP projection of the language model (the vision tower and the
projector stay as they are)."""
_LORA_TYPES = {"r": int, "alpha": float, "dropout": float, "targets": lambda text: tuple(_names(text))}
MODEL_ARGS = {"dtype": str, "attn_implementation": str, "max_pixels": int, "revision": str}
"""``--model-args`` of `triad train` (as for ``hf:``; the model trains where ``--device`` says)."""


@dataclass
class TrainSettings:
    """Everything a `triad train` run depends on (the CLI fills it; tests build it directly).

    Attributes:
        model: ``hf:<model id or folder>`` or ``triad:<converted folder>``.
        data, config, revision: the built dataset, as for `triad eval`.
        out: the folder to write (it must not exist; it appears only when training is done).
        target: one of :data:`TARGETS`.
        tasks: question types for the ``answer`` target (default: the config's).
        conditions: evaluation conditions whose prompts the examples use (``process`` prepends
            the process context exactly as `triad eval` does; ``one_shot`` adds the reference).
        train_from: the split the examples come from.
        holdout: categories kept out (``category`` or ``source/category``); required with
            ``train_from="test"``.
        lora: ``--lora`` text (``r=16,alpha=32,dropout=0.05,targets=q_proj,v_proj``); ``None``
            with ``full``.
        full: full fine-tuning of the language model and projector instead of LoRA.
        merge: merge the LoRA weights into the model (a plain model folder) instead of writing
            the adapter alone.
    """

    model: str
    data: str
    config: str
    out: Path
    target: str = "cot"
    tasks: list[str] | None = None
    conditions: list[str] = field(default_factory=lambda: ["zero_shot"])
    train_from: str = "train"
    holdout: list[str] = field(default_factory=list)
    revision: str | None = None
    model_args: dict[str, str] = field(default_factory=dict)
    lora: str | None = None
    full: bool = False
    merge: bool = False
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 1
    grad_accum: int = 1
    learning_rate: float | None = None
    scheduler: str = "linear"
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    save_steps: int = 100
    log_steps: int = 10
    limit: int | None = None
    gradient_checkpointing: bool = False
    expert: str | None = None
    expert_args: dict[str, str] = field(default_factory=dict)
    resume: bool = False

    def identity(self) -> dict:
        """What a resumed run must share with the run it continues (all but ``resume``)."""
        values = asdict(self)
        values.pop("resume")
        values["out"] = str(Path(self.out).expanduser().absolute())
        return values


def check(settings: TrainSettings) -> None:
    """Refuse settings that cannot run, with one line naming the option."""
    if settings.target not in TARGETS:
        raise InstructIADError(f"--target {settings.target}: must be one of {', '.join(TARGETS)}")
    if settings.precision not in PRECISIONS:
        raise InstructIADError(f"--precision {settings.precision}: must be one of {', '.join(PRECISIONS)}")
    if settings.scheduler not in SCHEDULERS:
        raise InstructIADError(f"--lr-scheduler {settings.scheduler}: must be one of {', '.join(SCHEDULERS)}")
    if settings.device not in DEVICES:
        raise InstructIADError(f"--device {settings.device}: must be one of {', '.join(DEVICES)}")
    counts = {"--batch-size": settings.batch_size, "--grad-accum": settings.grad_accum,
              "--save-steps": settings.save_steps, "--log-steps": settings.log_steps,
              "--max-steps": settings.max_steps, "--limit": settings.limit}  # fmt: skip
    for flag, value in counts.items():
        if value is not None and value < 1:
            raise InstructIADError(f"{flag} {value}: must be at least 1")
    if settings.epochs <= 0:
        raise InstructIADError(f"--epochs {settings.epochs:g}: must be above 0")
    if settings.learning_rate is not None and settings.learning_rate <= 0:
        raise InstructIADError(f"--learning-rate {settings.learning_rate:g}: must be above 0")
    if settings.full and settings.lora:
        raise InstructIADError("--full and --lora exclude each other (full fine-tuning trains no adapter)")
    if settings.full and settings.merge:
        raise InstructIADError("--merge merges LoRA weights; full fine-tuning has none to merge")
    if not settings.conditions:
        raise InstructIADError("--conditions: give at least one condition")


def model_spec(spec: str) -> tuple[str, str]:
    """``"hf:/models/x"`` -> ``("hf", "/models/x")``; only ``hf:`` and ``triad:`` train."""
    prefix, colon, value = spec.partition(":")
    if prefix not in MODEL_PREFIXES or not colon or not value:
        raise InstructIADError(f"--model {spec}: triad train takes hf:<model id or folder> or triad:<converted folder>")
    return prefix, value


def lora_options(text: str | None) -> dict:
    """``--lora`` text -> ``{"r", "alpha", "dropout", "targets"}`` over :data:`LORA_DEFAULTS`.

    Items are ``key=value`` separated by commas; ``targets`` lists module names separated by
    commas or ``+`` (``targets=q_proj,v_proj``: an item without ``=`` continues the one before).
    """
    items: list[str] = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if "=" not in part and items:
            items[-1] += f",{part}"
        else:
            items.append(part)
    values = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key.strip() or not value.strip():
            raise InstructIADError(f"--lora: {item!r} is not key=value")
        values[key.strip()] = value.strip()
    options = LORA_DEFAULTS | convert(values, _LORA_TYPES, "--lora")
    if options["r"] < 1 or options["alpha"] <= 0 or not 0 <= options["dropout"] < 1:
        raise InstructIADError("--lora: r must be at least 1, alpha above 0, dropout in [0, 1)")
    if not options["targets"]:
        raise InstructIADError("--lora targets=: name at least one module")
    return options


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.replace("+", ",").split(",") if name.strip()]
