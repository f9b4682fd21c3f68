"""The Triad model: LLaVA-OneVision plus the expert-guided region-of-interest tokens.

Triad (ICCV 2025) encodes each region-of-interest crop with the same SigLIP tower and
projector as the image, average-pools the crop's tokens when there are several crops, and
places them with the image's own tokens:

- ``zero_shot`` checkpoints: ``[AnyRes tokens of the image][region tokens]``;
- ``one_shot`` checkpoints: ``[base tile tokens][region tokens][newline]`` (no AnyRes tiles).

Per crop, a tower of ``side x side`` patches (27 x 27 = 729 for SigLIP so400m at 384 px) gives
``side**2`` tokens for one crop, ``(side // 2)**2`` for 2 to 4 crops (2 x 2 average pooling,
13 x 13 = 169), and ``(side // 3)**2`` for 5 or more (3 x 3 pooling, 9 x 9 = 81), as
Triad's ``spatial_avgpool_auto`` merge does. :func:`region_tokens` is the one place that
counts them; the processor uses it to size the prompt and the model to check itself.
"""

from __future__ import annotations

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import LlavaOnevisionConfig
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.models.llava_onevision.modeling_llava_onevision import (
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionModel,
    LlavaOnevisionPreTrainedModel,
)

VARIANTS = ("zero_shot", "one_shot")


def pooling_kernel(crops: int) -> int:
    """Average-pooling kernel for the tokens of each crop when a prompt has ``crops`` crops."""
    if crops <= 1:
        return 1
    return 2 if crops <= 4 else 3


def region_tokens(crops: int, side: int) -> int:
    """Number of tokens ``crops`` region crops add to their image, for a tower of ``side x side`` patches."""
    return crops * (side // pooling_kernel(crops)) ** 2


@strict
class TriadConfig(LlavaOnevisionConfig):
    """A LLaVA-OneVision configuration plus which Triad variant the weights are
    (``roi_variant``: ``zero_shot`` or ``one_shot``)."""

    model_type = "triad"
    roi_variant: str = "zero_shot"

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.roi_variant not in VARIANTS:
            raise ValueError(f"roi_variant must be one of {VARIANTS}, got {self.roi_variant!r}")


class TriadModel(LlavaOnevisionModel):
    """LLaVA-OneVision whose image features carry the region-of-interest tokens."""

    config_class = TriadConfig

    @property
    def patches_per_side(self) -> int:
        return self.config.vision_config.image_size // self.config.vision_config.patch_size

    def encode_crops(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected tower features of region crops: (n, 3, S, S) -> (n, side * side, hidden)."""
        layer = self.config.vision_feature_layer
        hidden = self.vision_tower(pixel_values, output_hidden_states=True, return_dict=True).hidden_states
        selected = hidden[layer] if isinstance(layer, int) else torch.cat([hidden[i] for i in layer], dim=-1)
        if self.config.vision_feature_select_strategy == "default":
            selected = selected[:, 1:]
        return self.multi_modal_projector(selected)

    def pool_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """One image's crop features, pooled by their count: (k, side * side, hidden) -> (tokens, hidden)."""
        count, _, hidden = crops.shape
        kernel = pooling_kernel(count)
        if count == 0 or kernel == 1:
            return crops.reshape(-1, hidden)
        side = self.patches_per_side
        grid = crops.view(count, side, side, hidden).permute(0, 3, 1, 2)
        pooled = nn.functional.avg_pool2d(grid, kernel)
        return pooled.permute(0, 2, 3, 1).reshape(-1, hidden)

    def get_image_features(
        self,
        pixel_values: torch.Tensor,
        image_sizes: torch.Tensor,
        roi_pixel_values: torch.Tensor | None = None,
        roi_counts: torch.Tensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        vision_aspect_ratio: str | None = None,
        batch_num_images: torch.LongTensor | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """LLaVA-OneVision's image features with each image's region tokens placed as its
        variant says.

        Args:
            roi_pixel_values: (total crops, 3, S, S), every image's crops in image order.
            roi_counts: (images,) how many crops each image has.
        """
        kwargs["return_dict"] = True
        output = super().get_image_features(
            pixel_values,
            image_sizes,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            vision_aspect_ratio=vision_aspect_ratio,
            batch_num_images=batch_num_images,
            **kwargs,
        )
        features = list(output.pooler_output)
        counts = [0] * len(features) if roi_counts is None else [int(c) for c in roi_counts]
        if len(counts) != len(features):
            raise ValueError(f"roi_counts has {len(counts)} entries for {len(features)} images")
        if sum(counts) == 0 and self.config.roi_variant == "zero_shot":
            return output
        crops = self.encode_crops(roi_pixel_values) if sum(counts) else None
        base = self.patches_per_side**2
        placed, start = [], 0
        for feature, count in zip(features, counts, strict=True):
            regions = self.pool_crops(crops[start : start + count]) if count else feature[:0]
            start += count
            if self.config.roi_variant == "one_shot":
                newline = self.image_newline[None].to(feature)
                placed.append(torch.cat([feature[:base], regions.to(feature), newline], dim=0))
            else:
                placed.append(torch.cat([feature, regions.to(feature)], dim=0))
        output.pooler_output = placed
        return output

    def forward(self, pixel_values=None, image_sizes=None, roi_pixel_values=None, roi_counts=None, **kwargs):
        """LLaVA-OneVision's forward, with the region crops encoded along with the images."""
        encoded = dict(kwargs.pop("mm_encoder_outputs", None) or {})
        if pixel_values is not None and encoded.get("image") is None:
            encoded["image"] = self.get_image_features(
                pixel_values,
                image_sizes,
                roi_pixel_values=roi_pixel_values,
                roi_counts=roi_counts,
                batch_num_images=kwargs.get("batch_num_images"),
                vision_feature_layer=kwargs.get("vision_feature_layer"),
                vision_feature_select_strategy=kwargs.get("vision_feature_select_strategy"),
                vision_aspect_ratio=kwargs.get("vision_aspect_ratio"),
            )
        return super().forward(mm_encoder_outputs=encoded or None, **kwargs)


class TriadForConditionalGeneration(LlavaOnevisionForConditionalGeneration):
    """Triad for generation: :class:`TriadModel` and LLaVA-OneVision's language-model head.

    Inputs are LLaVA-OneVision's plus ``roi_pixel_values`` and ``roi_counts`` (from
    :class:`~triad_eval.triad.processing.TriadProcessor`).
    """

    config_class = TriadConfig

    def __init__(self, config: TriadConfig):
        LlavaOnevisionPreTrainedModel.__init__(self, config)
        self.model = TriadModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_image_features(
        self, pixel_values, image_sizes, roi_pixel_values=None, roi_counts=None, batch_num_images=None, **kwargs
    ):
        return self.model.get_image_features(
            pixel_values,
            image_sizes,
            roi_pixel_values=roi_pixel_values,
            roi_counts=roi_counts,
            batch_num_images=batch_num_images,
            **kwargs,
        )

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_sizes: torch.LongTensor | None = None,
        roi_pixel_values: torch.Tensor | None = None,
        roi_counts: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        batch_num_images: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict | None = None,
        **kwargs,
    ):
        """LLaVA-OneVision's forward (its arguments, listed so that ``generate`` accepts them);
        ``roi_pixel_values`` and ``roi_counts`` go to the image encoder."""
        return super().forward(
            input_ids=input_ids,
            pixel_values=pixel_values,
            image_sizes=image_sizes,
            roi_pixel_values=roi_pixel_values,
            roi_counts=roi_counts,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            batch_num_images=batch_num_images,
            labels=labels,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            mm_encoder_outputs=mm_encoder_outputs,
            **kwargs,
        )
