"""From a :class:`Sample` on disk to a dataset record (a dict matching ``FEATURES``)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from instructiad import masks
from instructiad.errors import BadFileError
from instructiad.sample import Sample

_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
_JPEG_TAIL = 4096


@dataclass(frozen=True)
class ImageFacts:
    """What the header of an image file says."""

    format: str
    mode: str
    width: int
    height: int


def check_image(data: bytes, path: str) -> ImageFacts:
    """Read an image's header and check that the file is complete.

    PNG files are walked chunk by chunk with their CRCs checked; JPEG files must end with
    the end-of-image marker (a few KiB of trailing bytes after it are tolerated, as some
    cameras write them; the marker cannot occur inside scan data); other formats are
    decoded in full.

    Raises:
        BadFileError: the file is not an image, is corrupt, or is truncated.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            facts = ImageFacts(image.format or "", image.mode, *image.size)
            if facts.format == "PNG":
                image.verify()
            elif facts.format == "JPEG":
                if b"\xff\xd9" not in data[-_JPEG_TAIL:]:
                    raise OSError("no end-of-image marker: the file is truncated")
            else:
                image.load()
    except _ERRORS as error:
        raise BadFileError(path, f"corrupt or truncated image ({error})") from None
    return facts


def make_record(sample: Sample, max_side: int | None = None) -> dict:
    """The dataset record of one sample.

    Args:
        sample: what a reader found.
        max_side: if set, images whose longer side exceeds it are resized to it (masks with
            nearest-neighbour); otherwise the original image bytes are stored untouched.

    Raises:
        BadFileError: the image or a mask is unreadable, corrupt, or of another size.
    """
    image_file = sample.root / sample.image_path
    try:
        data = image_file.read_bytes()
    except OSError as error:
        raise BadFileError(image_file, f"cannot read image ({error.strerror})") from None
    facts = check_image(data, str(image_file))
    mask_values, mask_bytes = _read_masks(sample, facts)
    width, height = facts.width, facts.height
    if max_side and max(width, height) > max_side:
        data, (width, height), mask_values, mask_bytes = _resize(data, facts, mask_values, max_side)
    boxes, location, regions, share = [], None, [], 0.0
    if mask_values is not None:
        binary = mask_values > 0
        boxes = masks.boxes(binary)
        location, regions, share = masks.location(binary)
    return {
        "id": sample.id,
        "source": sample.source,
        "category": sample.category,
        "image": {"bytes": data, "path": sample.image_path},
        "mask": None if mask_bytes is None else {"bytes": mask_bytes, "path": _mask_name(sample)},
        "label": sample.label,
        "defect_type": sample.defect_type,
        "defect_types": list(sample.defect_types),
        "sub_types": list(sample.sub_types),
        "boxes": boxes,
        "location": location,
        "regions": regions,
        "location_share": share,
        "width": width,
        "height": height,
        "image_sha256": hashlib.sha256(data).hexdigest(),
        "metadata": {
            "image_path": sample.image_path,
            "mask_paths": list(sample.mask_paths),
            "format": facts.format,
            "mode": facts.mode,
            "original_size": [facts.width, facts.height],
            "extra": json.dumps(dict(sample.extra), sort_keys=True),
        },
    }


def _mask_name(sample: Sample) -> str:
    return sample.mask_paths[0] if len(sample.mask_paths) == 1 else f"{sample.image_path}.mask.png"


def _read_masks(sample: Sample, facts: ImageFacts) -> tuple[np.ndarray | None, bytes | None]:
    """Mask values (union of all masks) and the bytes to store (0/255 PNG).

    A single mask that already is a 0/255 single-channel PNG is stored as is; anything else
    (class-id masks, several masks) is merged and re-encoded.
    """
    if not sample.mask_paths:
        return None, None
    merged = None
    stored = None
    for relative_path in sample.mask_paths:
        path = sample.root / relative_path
        try:
            data = path.read_bytes()
        except OSError as error:
            raise BadFileError(path, f"cannot read mask ({error.strerror})") from None
        values = masks.decode_mask(data, path)
        if values.shape != (facts.height, facts.width):
            raise BadFileError(
                path,
                f"mask is {values.shape[1]}x{values.shape[0]} but its image is {facts.width}x{facts.height}",
            )
        merged = values if merged is None else np.maximum(merged, values)
        stored = data
    if len(sample.mask_paths) > 1 or not masks.is_binary_png(stored, merged):
        stored = masks.encode_binary_mask(merged > 0)
    return merged, stored


def _resize(
    data: bytes, facts: ImageFacts, mask_values: np.ndarray | None, max_side: int
) -> tuple[bytes, tuple[int, int], np.ndarray | None, bytes | None]:
    """Resize so the longer side is ``max_side``; re-encode in the original format."""
    scale = max_side / max(facts.width, facts.height)
    size = (max(1, round(facts.width * scale)), max(1, round(facts.height * scale)))
    with Image.open(io.BytesIO(data)) as image:
        resized = image.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    save_format = facts.format if facts.format in ("PNG", "JPEG") else "PNG"
    options = {"quality": 95} if save_format == "JPEG" else {}
    resized.save(buffer, format=save_format, **options)
    if mask_values is None:
        return buffer.getvalue(), size, None, None
    small = np.asarray(Image.fromarray(mask_values).resize(size, Image.Resampling.NEAREST))
    return buffer.getvalue(), size, small, masks.encode_binary_mask(small > 0)
