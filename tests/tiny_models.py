"""Tiny, randomly initialised image-text-to-text models of real architectures, made locally:
LLaVA-OneVision, LLaVA-NeXT, Qwen2-VL and Idefics3 (the SmolVLM architecture).

Each builder writes a model folder (config, weights, tokenizer, processor with a chat
template) that loads through the same ``from_pretrained`` path as a user's model. Nothing is
downloaded: the tokenizer is a character-level vocabulary built here.
"""

from __future__ import annotations

from pathlib import Path

CHARS = [chr(c) for c in range(32, 127)] + ["\n"]

_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}IMAGE{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


_TOWER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 28,
    "patch_size": 14,
}
"""The tiny vision tower every family uses: 28 px tiles of 2x2 patches."""
_PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]
"""AnyRes grids of the LLaVA families: up to 2x2 tiles."""


def _tokenizer(specials: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<|endoftext|>", "<|im_start|>", "<|im_end|>", *specials, *CHARS])}
    model = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    model.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    model.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=model,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>", *specials],
    )
    return tokenizer, vocab


def _text_config(vocab: dict, **extra) -> dict:
    return {
        "vocab_size": len(vocab),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": vocab["<|im_end|>"],
        **extra,
    }


def _save(model, processor, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def llava_onevision(folder: Path) -> Path:
    """LLaVA-OneVision: Qwen2 language model, SigLIP tower, AnyRes tiles of 28 px."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    tokenizer, vocab = _tokenizer(["<image>", "<video>"])
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(
            size={"height": 28, "width": 28}, crop_size={"height": 28, "width": 28}, image_grid_pinpoints=_PINPOINTS
        ),
        video_processor=LlavaOnevisionVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=_TEMPLATE.replace("IMAGE", "<image>\n"),
        num_image_tokens=4,
        vision_feature_select_strategy="full",
    )
    config = LlavaOnevisionConfig(
        text_config=Qwen2Config(**_text_config(vocab)),
        vision_config=SiglipVisionConfig(
            **_TOWER,
        ),
        image_token_index=vocab["<image>"],
        video_token_index=vocab["<video>"],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=_PINPOINTS,
    )
    torch.manual_seed(0)
    return _save(LlavaOnevisionForConditionalGeneration(config), processor, folder)


def qwen2_vl(folder: Path) -> Path:
    """Qwen2-VL: native-resolution patches merged 2x2, M-RoPE."""
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    specials = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer, vocab = _tokenizer(specials)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28 * 4, max_pixels=56 * 56, patch_size=14, merge_size=2),
        video_processor=Qwen2VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=_TEMPLATE.replace("IMAGE", "<|vision_start|><|image_pad|><|vision_end|>"),
    )
    rope = {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0}
    config = Qwen2VLConfig(
        text_config=_text_config(
            vocab, rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]}, rope_parameters=rope
        ),
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 4,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "in_chans": 3,
        },
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    torch.manual_seed(0)
    return _save(Qwen2VLForConditionalGeneration(config), processor, folder)


def llava_next(folder: Path) -> Path:
    """LLaVA-NeXT: CLIP tower (its CLS token dropped), AnyRes tiles of 28 px, image newline tokens."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
        Qwen2Config,
    )

    tokenizer, vocab = _tokenizer(["<image>"])
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessor(
            size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}, image_grid_pinpoints=_PINPOINTS
        ),
        tokenizer=tokenizer,
        chat_template=_TEMPLATE.replace("IMAGE", "<image>\n"),
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token, which "default" then drops
    )
    config = LlavaNextConfig(
        text_config=Qwen2Config(**_text_config(vocab)),
        vision_config=CLIPVisionConfig(
            **_TOWER,
            projection_dim=32,
        ),
        image_token_index=vocab["<image>"],
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_grid_pinpoints=_PINPOINTS,
    )
    torch.manual_seed(0)
    return _save(LlavaNextForConditionalGeneration(config), processor, folder)


def idefics3(folder: Path) -> Path:
    """Idefics3 / SmolVLM: SigLIP-style tower, images split into 28 px tiles plus a global view,
    pixel shuffle (scale factor 2) to one token per tile."""
    import torch
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        LlamaConfig,
    )
    from transformers.models.idefics3.configuration_idefics3 import Idefics3VisionConfig

    tokenizer, vocab = _tokenizer(["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"])
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": 56}, max_image_size={"longest_edge": 28}, do_image_splitting=True
        ),
        tokenizer=tokenizer,
        image_seq_len=1,
        chat_template=_TEMPLATE.replace("IMAGE", "<image>"),
    )
    config = Idefics3Config(
        text_config=LlamaConfig(**_text_config(vocab)),
        vision_config=Idefics3VisionConfig(
            **_TOWER,
        ),
        scale_factor=2,
        image_token_id=vocab["<image>"],
    )
    torch.manual_seed(0)
    return _save(Idefics3ForConditionalGeneration(config), processor, folder)


def triad_original(folder: Path, variant: str = "zero_shot") -> Path:
    """A Triad checkpoint in the original LLaVA-NeXT layout, as Triad's releases ship it:
    ``LlavaQwenForCausalLM`` keys (``model.layers.*``, ``model.vision_tower.vision_tower.vision_model.*``
    without the tower's last layer, ``model.mm_projector.0/2``, ``model.image_newline``, a rotary
    ``inv_freq`` buffer), two safetensors shards, a Qwen-style tokenizer without ``<image>``, and
    the tower's config in a local folder named by ``mm_vision_tower``. The tower has 9 x 9
    patches, so crops pool to 4 x 4 and 3 x 3 as Triad's 27 x 27 pool to 13 x 13 and 9 x 9."""
    import json

    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, vocab = _tokenizer([])
    tokenizer.save_pretrained(folder)
    tower = {**_TOWER, "image_size": 54, "patch_size": 6, "num_hidden_layers": 3}
    SiglipVisionConfig(**tower).save_pretrained(folder / "tower")
    torch.manual_seed(0)
    text = _text_config(vocab)
    language = Qwen2ForCausalLM(Qwen2Config(**text)).state_dict()
    vision = SiglipVisionModel(SiglipVisionConfig(**{**tower, "num_hidden_layers": 2}, vision_use_head=False))
    vision_prefix = "model.vision_tower.vision_tower.vision_model."
    vision_state = {vision_prefix + k.removeprefix("vision_model."): v for k, v in vision.state_dict().items()}
    projector = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.GELU(), torch.nn.Linear(32, 32))
    vision_state.update({f"model.mm_projector.{k}": v for k, v in projector.state_dict().items()})
    vision_state["model.image_newline"] = torch.randn(32)
    language["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(4)
    save_file({k: v.contiguous() for k, v in language.items()}, folder / "model-00001-of-00002.safetensors")
    save_file(vision_state, folder / "model-00002-of-00002.safetensors")
    config = {
        "architectures": ["LlavaQwenForCausalLM"],
        "model_type": "llava",
        **{k: v for k, v in text.items() if k != "pad_token_id"},
        "rope_theta": 10000.0,
        "mm_vision_tower": "tower",
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": 32,
        "mm_vision_select_layer": -2,
        "mm_patch_merge_type": "spatial_avgpool_auto_unpad_randomroi_newl"
        if variant == "zero_shot"
        else "spatial_avgpool_auto_unpad_add_newl",
        "image_aspect_ratio": "anyres_max_9_randomroi" if variant == "zero_shot" else "randomroi",
        "image_grid_pinpoints": [[54, 54], [108, 54], [54, 108], [108, 108]],
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


FAMILIES = {"llava_onevision": llava_onevision, "llava_next": llava_next, "qwen2_vl": qwen2_vl, "idefics3": idefics3}
