"""Masks: reading, merging, and the geometry records carry (boxes, coarse 3x3 location)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from instructiad.errors import BadFileError

GRID_CELLS = (
    ("top left", "top", "top right"),
    ("left", "center", "right"),
    ("bottom left", "bottom", "bottom right"),
)
"""Names of the coarse 3x3 locations, row by row."""

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def decode_mask(data: bytes, path: str | Path) -> np.ndarray:
    """Pixel values of a mask file as a 2-D ``uint8`` array of shape ``(height, width)``.

    Single-channel masks keep their values (VisA and MVTec LOCO store class ids in them);
    a colour mask is read from its first channel.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode in ("L", "P"):
                values = np.asarray(image)
            elif image.mode == "1":
                values = np.asarray(image).astype(np.uint8) * 255
            elif image.mode in ("I", "I;16", "F"):
                values = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
            else:
                values = np.asarray(image.convert("RGB"))[..., 0]
    except (OSError, SyntaxError, ValueError) as error:
        raise BadFileError(path, f"corrupt or truncated mask ({error})") from None
    return np.ascontiguousarray(values, dtype=np.uint8)


def is_binary_png(data: bytes, values: np.ndarray) -> bool:
    """Whether mask file bytes already are a 0/255 single-channel PNG (so they can be stored as is)."""
    if not data.startswith(b"\x89PNG") or data[24:26] != b"\x08\x00":  # IHDR: 8-bit, grayscale
        return False
    return np.count_nonzero(values) == np.count_nonzero(values == 255)


def read_mask(path: Path) -> np.ndarray:
    """:func:`decode_mask` of a file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadFileError(path, f"cannot read mask ({error.strerror})") from None
    return decode_mask(data, path)


def encode_binary_mask(mask: np.ndarray) -> bytes:
    """A boolean mask as a 0/255 single-channel PNG (deterministic bytes)."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def boxes(mask: np.ndarray) -> list[list[int]]:
    """Bounding boxes of the 8-connected regions of a boolean mask.

    Returns:
        ``[[x_min, y_min, x_max, y_max], ...]`` in pixels, max exclusive, one per region, in
        raster order of each region's first pixel.
    """
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return []
    top, left = int(rows[0]), int(cols[0])
    crop = mask[top : rows[-1] + 1, left : cols[-1] + 1]  # labelling only the defect's extent is much faster
    labels, _ = ndimage.label(crop, structure=_EIGHT_CONNECTED)
    return [
        [s[1].start + left, s[0].start + top, s[1].stop + left, s[0].stop + top] for s in ndimage.find_objects(labels)
    ]


def cell_areas(mask: np.ndarray) -> np.ndarray:
    """Mask pixels in each cell of a 3x3 grid over the image, shape ``(3, 3)``."""
    height, width = mask.shape
    row_edges = [height * i // 3 for i in range(4)]
    col_edges = [width * i // 3 for i in range(4)]
    return np.array(
        [
            [np.count_nonzero(mask[row_edges[r] : row_edges[r + 1], col_edges[c] : col_edges[c + 1]]) for c in range(3)]
            for r in range(3)
        ]
    )


def location(mask: np.ndarray) -> tuple[str | None, list[str], float]:
    """Coarse location of a boolean mask on a 3x3 grid.

    Returns:
        ``(dominant, cells, share)``: the cell holding most mask pixels (ties go to the first
        cell in reading order; ``None`` for an empty mask), every cell the mask touches in
        reading order, and the fraction of the mask's pixels in the dominant cell (0 to 1).
    """
    areas = cell_areas(mask)
    total = int(areas.sum())
    if total == 0:
        return None, [], 0.0
    row, col = np.unravel_index(int(np.argmax(areas)), areas.shape)
    touched = [GRID_CELLS[r][c] for r in range(3) for c in range(3) if areas[r, c] > 0]
    return GRID_CELLS[row][col], touched, round(float(areas[row, col]) / total, 4)
