"""The Triad processor: LLaVA-OneVision's, plus region-of-interest crops and their tokens."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers import BatchFeature, LlavaOnevisionProcessor

from triad_eval.triad.modeling import region_tokens


class TriadProcessor(LlavaOnevisionProcessor):
    """Prepares prompts for :class:`~triad_eval.triad.modeling.TriadForConditionalGeneration`.

    ``roi_images`` gives each image (in the order the images flatten) its list of crops. Each
    ``<image>`` expands to LLaVA-OneVision's token count plus the crops' tokens
    (:func:`~triad_eval.triad.modeling.region_tokens`); ``one_shot`` checkpoints encode an
    image as its base tile, its crops and a newline. The output adds ``roi_pixel_values``
    (total crops, 3, S, S) and ``roi_counts`` (images,).
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        video_processor=None,
        num_image_tokens=None,
        vision_feature_select_strategy=None,
        chat_template=None,
        image_token="<image>",
        video_token="<video>",
        vision_aspect_ratio="anyres_max_9",
        roi_variant: str = "zero_shot",
        **kwargs,
    ):
        self.roi_variant = roi_variant
        self._roi_counts: list[int] = []
        super().__init__(
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=video_processor,
            num_image_tokens=num_image_tokens,
            vision_feature_select_strategy=vision_feature_select_strategy,
            chat_template=chat_template,
            image_token=image_token,
            video_token=video_token,
            vision_aspect_ratio=vision_aspect_ratio,
            **kwargs,
        )

    def __call__(self, images=None, text=None, roi_images=None, **kwargs) -> BatchFeature:
        flat = _flatten(images)
        crops = [list(c) for c in roi_images] if roi_images is not None else [[] for _ in flat]
        if len(crops) != len(flat):
            raise ValueError(f"roi_images has {len(crops)} entries for {len(flat)} images")
        # The parent expands each <image> through replace_image_token(image_inputs, index), which
        # sees no per-call extras: the crop counts wait here for the length of this call.
        counts = [len(c) for c in crops]
        self._roi_counts = counts
        try:
            inputs = super().__call__(images=images, text=text, **kwargs)
        finally:
            self._roi_counts = []
        if flat:
            inputs["roi_counts"] = torch.tensor(counts, dtype=torch.long)
            inputs["roi_pixel_values"] = self.crop_pixels([c for image_crops in crops for c in image_crops])
        return inputs

    def replace_image_token(self, image_inputs: dict, image_idx: int, **kwargs) -> str:
        side = int(self.num_image_tokens**0.5)
        count = self._roi_counts[image_idx] if image_idx < len(self._roi_counts) else 0
        regions = self.image_token * region_tokens(count, side)
        if self.roi_variant == "one_shot":  # base tile, regions, newline
            return self.image_token * self.num_image_tokens + regions + self.image_token
        return super().replace_image_token(image_inputs, image_idx, **kwargs) + regions

    def crop_pixels(self, crops: list[Image.Image]) -> torch.Tensor:
        """Crops resized to the tower's input and normalised: (n, 3, S, S) float32."""
        size = self.image_processor.size
        height, width = size["height"], size["width"]
        mean = np.asarray(self.image_processor.image_mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.image_processor.image_std, dtype=np.float32)[:, None, None]
        arrays = [
            (
                np.asarray(c.convert("RGB").resize((width, height), Image.Resampling.BICUBIC), np.float32) / 255.0
            ).transpose(2, 0, 1)
            for c in crops
        ]
        if not arrays:
            return torch.zeros((0, 3, height, width))
        return torch.from_numpy((np.stack(arrays) - mean) / std)


def _flatten(images) -> list:
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        return [leaf for item in images for leaf in _flatten(item)]
    return [images]
