"""``triad convert-checkpoint SRC DST``: an original LLaVA-NeXT-layout checkpoint (Triad's
releases ``CSshihao/Triad_ov`` and ``CSshihao/Triad_ov_1shot``, or a plain LLaVA-OneVision
Qwen2 checkpoint) to a :class:`~triad_eval.triad.modeling.TriadForConditionalGeneration`
folder that loads with ``from_pretrained``.

Key names follow transformers' own LLaVA-OneVision conversion
(``convert_llava_onevision_weights_to_hf.py``), written as prefix rules for the current
class layout. Every source key must map to a key the model expects and every expected key
must be filled: the conversion stops, naming the keys, otherwise. Only safetensors are read
(never pickle). Shards are converted one at a time, so a 7B checkpoint needs about one
shard of memory, and the output appears only when complete.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.jsonio import read_json, write_json

# The towers LLaVA-OneVision checkpoints name in ``mm_vision_tower``: their full configs
# (the checkpoint holds one layer fewer, LLaVA drops the last).
KNOWN_TOWERS = {
    "google/siglip-so400m-patch14-384": {
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 384,
        "patch_size": 14,
    }
}
SOURCE_TOWER = "model.vision_tower.vision_tower.vision_model."
# Chat template of LLaVA-NeXT's ``qwen_1_5`` conversation; images become ``<image>\n``.
QWEN_1_5_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class Conversion:
    """What a conversion did: the variant, how many tensors, what was dropped or added."""

    variant: str
    tensors: int = 0
    dropped: list[str] = field(default_factory=list)
    added_tokens: list[str] = field(default_factory=list)
    padded_vocabulary: int = 0


def rename(key: str, tower: str) -> str | None:
    """Our name for an original key, ``None`` for keys with no weights to carry (rotary
    ``inv_freq`` buffers); raises ``KeyError`` for a key no rule covers. ``tower`` is the
    prefix of vision-tower weights in the current transformers class."""
    if key.endswith(".inv_freq"):
        return None
    rules = (
        (SOURCE_TOWER, tower),
        ("model.mm_projector.0.", "model.multi_modal_projector.linear_1."),
        ("model.mm_projector.2.", "model.multi_modal_projector.linear_2."),
        ("model.image_newline", "model.image_newline"),
        ("model.embed_tokens.", "model.language_model.embed_tokens."),
        ("model.layers.", "model.language_model.layers."),
        ("model.norm.", "model.language_model.norm."),
        ("lm_head.", "lm_head."),
    )
    for old, new in rules:
        if key.startswith(old):
            return new + key[len(old) :]
    raise KeyError(key)


def variant_of(config: dict, path: Path) -> str:
    """``zero_shot`` (``anyres_max_N[_randomroi]``) or ``one_shot`` (``randomroi``)."""
    aspect = config.get("image_aspect_ratio", "")
    if aspect == "randomroi":
        return "one_shot"
    if re.fullmatch(r"anyres_max_\d+(_randomroi)?", aspect):
        return "zero_shot"
    raise InstructIADError(
        f"{path}: image_aspect_ratio {aspect!r} is neither LLaVA-OneVision's anyres_max_N nor Triad's "
        "anyres_max_N_randomroi (zero-shot) or randomroi (one-shot)"
    )


def read_source_config(src: Path) -> dict:
    """The original config.json, checked to be a LLaVA-OneVision (Qwen2) or Triad checkpoint."""
    path = src / "config.json"
    if not path.is_file():
        raise InstructIADError(f"{src}: not a checkpoint folder (no config.json)")
    config = read_json(path)
    if config.get("model_type") in ("triad", "llava_onevision"):
        raise InstructIADError(
            f"{src}: already in the transformers layout (model_type {config['model_type']}); "
            "run it with triad:<path> or hf:<path>"
        )
    if "mm_vision_tower" not in config or "LlavaQwenForCausalLM" not in config.get("architectures", []):
        raise InstructIADError(
            f"{path}: not a Triad or LLaVA-OneVision checkpoint (expected architectures LlavaQwenForCausalLM "
            f"and mm_vision_tower, found {config.get('architectures')})"
        )
    if config.get("mm_projector_type", "mlp2x_gelu") != "mlp2x_gelu":
        raise InstructIADError(f"{path}: mm_projector_type {config['mm_projector_type']!r} (expected mlp2x_gelu)")
    return config


def tower_config(config: dict, src: Path) -> dict:
    """The full SigLIP config ``mm_vision_tower`` names: a known tower, or a local folder's config."""
    name = config["mm_vision_tower"]
    if name in KNOWN_TOWERS:
        return dict(KNOWN_TOWERS[name])
    for folder in (Path(name), src / name):
        if (folder / "config.json").is_file():
            tower = read_json(folder / "config.json")
            tower = tower.get("vision_config", tower)
            return {k: tower[k] for k in KNOWN_TOWERS["google/siglip-so400m-patch14-384"]}
    raise InstructIADError(
        f"{src / 'config.json'}: unknown vision tower {name!r} (known: {', '.join(KNOWN_TOWERS)}, or a local folder)"
    )


def grid_pinpoints(value, tile: int) -> list[list[int]]:
    """AnyRes resolutions as (height, width): the original lists (width, height) pairs or a
    range such as ``"(1x1),...,(6x6)"`` of tiles."""
    if isinstance(value, str):
        ranges = re.findall(r"\((\d+)x(\d+)\)", value)
        (w0, h0), (w1, h1) = (tuple(map(int, r)) for r in (ranges[0], ranges[-1]))
        value = [[w * tile, h * tile] for w in range(w0, w1 + 1) for h in range(h0, h1 + 1)]
    return [[int(h), int(w)] for w, h in value]


def weight_files(src: Path) -> list[Path]:
    """The safetensors files of ``src``; refuses pickle-only checkpoints."""
    files = sorted(src.glob("*.safetensors"))
    if not files:
        pickled = sorted(p.name for p in src.glob("*.bin"))
        hint = f" ({pickled[0]} is a pickle file, which this tool never loads)" if pickled else ""
        raise InstructIADError(f"{src}: no .safetensors weights{hint}")
    return files


TEXT_KEYS = (
    "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "max_position_embeddings", "rms_norm_eps", "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id",
    "hidden_act", "sliding_window", "use_sliding_window",
)  # fmt: skip
"""Qwen2 settings the original config.json holds at its top level."""


def read_shapes(files: list[Path]) -> dict[str, tuple[list[int], Path]]:
    """Every tensor's shape and file, read from the safetensors headers (no tensor loaded)."""
    from safetensors import safe_open

    shapes = {}
    for file in files:
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                shapes[key] = (list(handle.get_slice(key).get_shape()), file)
    return shapes


def triad_config(source: dict, src: Path, shapes: dict, tokenizer, variant: str):
    """Our TriadConfig for an original checkpoint, from its config.json and weight shapes."""
    from transformers import Qwen2Config, SiglipVisionConfig

    from triad_eval.triad.modeling import TriadConfig

    tower = tower_config(source, src)
    layer = re.compile(re.escape(SOURCE_TOWER) + r"encoder\.layers\.(\d+)\.")
    kept_layers = len({m.group(1) for k in shapes if (m := layer.match(k))})
    # the original selects hidden state `mm_vision_select_layer` of the full tower; point at the
    # same state from the end of the converted tower, which lacks the layers LLaVA dropped
    state = tower["num_hidden_layers"] + 1 + int(source.get("mm_vision_select_layer", -2))
    tower["num_hidden_layers"] = kept_layers
    embed_rows = shapes.get("model.embed_tokens.weight", ([0],))[0][0]
    text = {k: source[k] for k in TEXT_KEYS if k in source}
    aspect = source.get("image_aspect_ratio", "anyres_max_9")
    return TriadConfig(
        text_config=Qwen2Config(**text, vocab_size=max(embed_rows, len(tokenizer))),
        vision_config=SiglipVisionConfig(**tower, vision_use_head=False),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=state - (kept_layers + 1),
        image_grid_pinpoints=grid_pinpoints(source.get("image_grid_pinpoints", "(1x1),...,(6x6)"), tower["image_size"]),
        vision_aspect_ratio=aspect.removesuffix("_randomroi") if variant == "zero_shot" else "anyres_max_9",
        tie_word_embeddings=bool(source.get("tie_word_embeddings", False)),
        roi_variant=variant,
        architectures=["TriadForConditionalGeneration"],
    )


def map_keys(src: Path, shapes: dict, expected: dict[str, list[int]], report: Conversion) -> dict[str, str]:
    """Original key -> our key for every tensor to carry; raises on any unmapped, missing or
    left-over key and on any shape but a vocabulary that grows by the added tokens."""
    tower = "model.vision_tower."
    if any(k.startswith("model.vision_tower.vision_model.") for k in expected):
        tower = "model.vision_tower.vision_model."
    names, unmapped, leftover = {}, [], []
    for key in shapes:
        try:
            new = rename(key, tower)
        except KeyError:
            unmapped.append(key)
            continue
        if new is None:
            report.dropped.append(key)
        elif new in expected:
            names[key] = new
        elif new != "lm_head.weight":  # a tied head has no weights of its own
            leftover.append(key)
    if unmapped:
        raise InstructIADError(f"{src}: {len(unmapped)} weight(s) no rule maps, e.g. {unmapped[0]}")
    if leftover:
        raise InstructIADError(
            f"{src}: {len(leftover)} weight(s) left over (the model described by config.json has no place for "
            f"them), e.g. {leftover[0]}"
        )
    missing = sorted(set(expected) - set(names.values()))
    if missing:
        raise InstructIADError(
            f"{src}: not a complete Triad/LLaVA-OneVision checkpoint ({len(missing)} weight(s) missing, "
            f"e.g. {missing[0]})"
        )
    vocabulary = {"model.language_model.embed_tokens.weight", "lm_head.weight"}
    for key, new in names.items():
        (have, file), want = shapes[key], expected[new]
        if have != want and not (new in vocabulary and have[0] < want[0] and have[1:] == want[1:]):
            raise InstructIADError(f"{file}: {key} has shape {have}, the model expects {want}")
    return names


def convert_checkpoint(src: Path, dst: Path, variant: str | None = None) -> Conversion:
    """Convert ``src`` (original layout) into a new folder ``dst``; returns what was done.

    Raises:
        InstructIADError: ``src`` is not a LLaVA-OneVision/Triad checkpoint, a key is
            unmapped, missing or left over, a shape differs, or ``dst`` is not empty.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig

    from triad_eval.triad.modeling import VARIANTS, TriadForConditionalGeneration

    src, dst = Path(src).expanduser().absolute(), Path(dst).expanduser().absolute()
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise InstructIADError(f"{dst}: already exists and is not empty")
    source = read_source_config(src)
    variant = variant or variant_of(source, src / "config.json")
    if variant not in VARIANTS:
        raise InstructIADError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    files = weight_files(src)
    shapes = read_shapes(files)
    try:
        tokenizer = AutoTokenizer.from_pretrained(src)
    except (OSError, ValueError) as error:
        raise InstructIADError(f"{src}: cannot load the tokenizer ({str(error).splitlines()[0]})") from None
    report = Conversion(variant)
    report.added_tokens = [t for t in ("<image>", "<video>") if t not in tokenizer.get_vocab()]
    if report.added_tokens:
        tokenizer.add_special_tokens(
            {"additional_special_tokens": report.added_tokens}, replace_extra_special_tokens=False
        )
    config = triad_config(source, src, shapes, tokenizer, variant)
    with torch.device("meta"):  # names and shapes only, no memory
        model = TriadForConditionalGeneration(config)
    expected = {k: list(v.shape) for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    names = map_keys(src, shapes, expected, report)

    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        write_weights(files, names, expected, staging, report)
        config.save_pretrained(staging)
        eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
        GenerationConfig(eos_token_id=eos, pad_token_id=tokenizer.pad_token_id).save_pretrained(staging)
        processor_for(config, tokenizer).save_pretrained(staging)
        if dst.exists():
            dst.rmdir()
        staging.rename(dst)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def write_weights(files: list[Path], names: dict[str, str], expected: dict, out: Path, report: Conversion) -> None:
    """Renamed tensors, one output shard per input shard (one shard in memory at a time)."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    index = {}
    for number, file in enumerate(files, 1):
        name = "model.safetensors" if len(files) == 1 else f"model-{number:05d}-of-{len(files):05d}.safetensors"
        tensors = {}
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open handles are not iterable
                if key not in names:
                    continue
                tensor = handle.get_tensor(key)
                rows = expected[names[key]][0] - tensor.shape[0]
                if rows > 0:  # rows of the added tokens start at the mean embedding
                    report.padded_vocabulary = rows
                    mean = tensor.float().mean(0, keepdim=True).to(tensor.dtype)
                    tensor = torch.cat([tensor, mean.expand(rows, -1)], dim=0)
                tensors[names[key]] = tensor.contiguous()
                index[names[key]] = name
        save_file(tensors, out / name, metadata={"format": "pt"})
        report.tensors += len(tensors)
    if len(files) > 1:
        weight_map = {"metadata": {}, "weight_map": dict(sorted(index.items()))}
        write_json(out / "model.safetensors.index.json", weight_map)


def processor_for(config, tokenizer):
    """The Triad processor of a converted checkpoint (SigLIP normalisation, AnyRes grid, qwen_1_5 template)."""
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionVideoProcessor

    from triad_eval.triad.processing import TriadProcessor

    size = config.vision_config.image_size
    side = size // config.vision_config.patch_size
    return TriadProcessor(
        image_processor=LlavaOnevisionImageProcessor(
            size={"height": size, "width": size},
            crop_size={"height": size, "width": size},
            image_grid_pinpoints=config.image_grid_pinpoints,
            image_mean=[0.5, 0.5, 0.5],
            image_std=[0.5, 0.5, 0.5],
        ),
        video_processor=LlavaOnevisionVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=QWEN_1_5_TEMPLATE,
        num_image_tokens=side * side,
        vision_feature_select_strategy="full",
        vision_aspect_ratio=config.vision_aspect_ratio,
        roi_variant=config.roi_variant,
    )
