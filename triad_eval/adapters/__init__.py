"""Model adapters and the registry that turns a model spec into one.

Specs: ``chance``, ``majority``, ``always:<letter>``, ``replay:<predictions file>``.
"""

from __future__ import annotations

from instructiad.errors import InstructIADError
from triad_eval.adapters.base import ModelAdapter, Response

__all__ = ["KNOWN_SPECS", "ModelAdapter", "Response", "load_adapter", "parse_model_args"]

KNOWN_SPECS = (
    "chance", "majority", "always:<letter>", "replay:<file>", "openai:<model>", "hf:<model id or path>",
    "baseline:<name>", "expert:<padim|patchcore>", "triad:<converted checkpoint folder>",
)  # fmt: skip
_OPENAI_ARGS = {
    "base_url": str, "max_side": int, "detail": str, "max_tokens": int, "temperature": float, "timeout": float,
    "max_retries": int, "backoff": float, "top_logprobs": int, "api_key_env": str,
}  # fmt: skip
_HF_ARGS = {
    "dtype": str, "device": str, "device_map": str, "attn_implementation": str, "max_pixels": int,
    "max_new_tokens": int, "trust_remote_code": lambda v: v.lower() in ("1", "true", "yes"), "revision": str,
}  # fmt: skip


def parse_model_args(text: str | None, flag: str = "--model-args") -> dict[str, str]:
    """``"seed=3,latency_ms=5"`` -> ``{"seed": "3", "latency_ms": "5"}``; ``flag`` names the
    option in errors."""
    args = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InstructIADError(f"{flag}: {item!r} is not key=value")
        args[key.strip()] = value.strip()
    return args


def load_adapter(
    spec: str, model_args: dict[str, str] | None = None, seed: int = 0, concurrency: int = 1
) -> ModelAdapter:
    """The adapter for ``spec``; ``concurrency`` bounds parallel requests of API adapters.

    Raises:
        InstructIADError: an unknown spec, or arguments it does not take.
    """
    from baselines.simple import Always, Chance, Majority
    from triad_eval.adapters.replay import Replay

    args = dict(model_args or {})
    kind, _, value = spec.partition(":")
    if kind == "baseline":
        from baselines.roster import ROSTER

        if value not in ROSTER:
            raise InstructIADError(f"unknown baseline {value!r} (known: {', '.join(ROSTER)}; see `triad baselines`)")
        entry = ROSTER[value]
        return load_adapter(entry.spec, entry.model_args | args, seed, concurrency)
    if spec == "chance":
        try:
            adapter: ModelAdapter = Chance(
                spec, seed=int(args.pop("seed", seed)), latency_ms=float(args.pop("latency_ms", 0))
            )
        except ValueError as error:
            raise InstructIADError(f"--model-args for chance: {error}") from None
    elif spec == "majority":
        adapter = Majority(spec)
    elif kind == "always" and len(value) == 1 and value.isalpha():
        adapter = Always(spec, value.upper())
    elif kind == "replay" and value:
        adapter = Replay(spec, value)
    elif kind == "openai" and value:
        from triad_eval.adapters.openai_api import OpenAICompatible

        adapter = OpenAICompatible(spec, value, concurrency=concurrency, **_typed(spec, args, _OPENAI_ARGS))
    elif kind == "expert" and value:
        from baselines.experts import SETTINGS, ExpertModel

        adapter = ExpertModel(spec, value, _typed(spec, args, SETTINGS))
    elif kind == "hf" and value:
        from triad_eval.adapters.huggingface import HuggingFace

        adapter = HuggingFace(spec, value, **_typed(spec, args, _HF_ARGS))
    elif kind == "triad" and value:
        from triad_eval.adapters.triad import Triad

        adapter = Triad(spec, value, **_typed(spec, args, _HF_ARGS))
    else:
        raise InstructIADError(f"unknown model spec {spec!r} (known: {', '.join(KNOWN_SPECS)})")
    if args:
        raise InstructIADError(f"--model-args: {spec} takes no argument {sorted(args)[0]!r}")
    return adapter


def _typed(spec: str, args: dict[str, str], types: dict) -> dict:
    """Take the arguments ``types`` knows out of ``args``, converted."""
    try:
        return {key: types[key](args.pop(key)) for key in list(args) if key in types}
    except ValueError as error:
        raise InstructIADError(f"--model-args for {spec}: {error}") from None
