"""The roster of baseline models: declarative entries that `--model baseline:<name>` resolves.

Each entry names the adapter spec, the model arguments that make its runs comparable, prompt
notes and the licence. `triad baselines` lists them. Weights and API access are the user's:
nothing here downloads anything until a run asks for that model.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Baseline:
    """One leaderboard baseline."""

    name: str
    spec: str
    model_args: dict[str, str] = field(default_factory=dict)
    notes: str = ""
    license: str = ""


_HF_GPU = {"dtype": "bfloat16", "device_map": "auto"}

ROSTER: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("llava-onevision-0.5b", "hf:llava-hf/llava-onevision-qwen2-0.5b-ov-hf", _HF_GPU,
                 "Qwen2 chat template with <image> tokens; AnyRes tiling", "apache-2.0"),
        Baseline("llava-onevision-7b", "hf:llava-hf/llava-onevision-qwen2-7b-ov-hf", _HF_GPU,
                 "Triad's base model; SigLIP so400m, AnyRes up to 6x6 tiles", "apache-2.0"),
        Baseline("qwen2.5-vl-3b", "hf:Qwen/Qwen2.5-VL-3B-Instruct", _HF_GPU | {"max_pixels": "1003520"},
                 "native resolution; max_pixels bounds visual tokens (1280 x 28 x 28)", "qwen-research"),
        Baseline("qwen2.5-vl-7b", "hf:Qwen/Qwen2.5-VL-7B-Instruct", _HF_GPU | {"max_pixels": "1003520"},
                 "native resolution; max_pixels bounds visual tokens (1280 x 28 x 28)", "apache-2.0"),
        Baseline("internvl3-2b", "hf:OpenGVLab/InternVL3-2B-hf", _HF_GPU,
                 "transformers-native InternVL3 checkpoint (the -hf variant)", "see model card"),
        Baseline("smolvlm-2.2b", "hf:HuggingFaceTB/SmolVLM-Instruct", _HF_GPU,
                 "Idefics3 architecture; images split into 384 px tiles", "apache-2.0"),
        Baseline("gpt-4o", "openai:gpt-4o", {"detail": "high", "max_side": "2048"},
                 "OpenAI API; OPENAI_API_KEY from the environment", "proprietary (API terms)"),
        Baseline("gpt-4o-mini", "openai:gpt-4o-mini", {"detail": "high", "max_side": "2048"},
                 "OpenAI API; OPENAI_API_KEY from the environment", "proprietary (API terms)"),
    )
}  # fmt: skip
