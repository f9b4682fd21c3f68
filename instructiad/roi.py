"""Regions of interest from an anomaly map, as Triad's expert-guided tokenizer makes them.

Triad (ICCV 2025) zooms the LMM into the regions an inspection model flags:

1. the anomaly map is resized to the image and thresholded at ``min + 0.9 * (max - min)``;
2. each 8-connected region becomes a bounding box;
3. each box is expanded to a square crop of ``crop`` pixels (384 by default; larger boxes keep
   their size, squared), centred on the box and shifted to stay inside the image;
4. crops are taken in turn: one covered by a kept crop (intersection over the smaller area
   above 0.8) is dropped; one overlapping a kept crop above 0.1 is merged into it (their union,
   squared and kept inside the image);
5. at most 4 crops are kept.

Crops are taken in order of their region's peak score (the intent stated in the paper);
Triad's code takes them in detection order and keeps the first 4 unsorted, which
``order="detection"`` reproduces (regions in raster order of their first pixel). A map that
is constant or holds NaN or infinite values gives no region: the whole image is used, and
the result says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from instructiad.errors import InstructIADError

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Regions:
    """Crops to show the model.

    Attributes:
        boxes: ``(x_min, y_min, x_max, y_max)`` in image pixels, max exclusive, all square
            (unless the image is smaller than the crop), most important first.
        peaks: the anomaly map's peak inside each box's region (same order).
        fallback: why there are no regions (the whole image is used), else ``None``.
    """

    boxes: tuple[tuple[int, int, int, int], ...]
    peaks: tuple[float, ...]
    fallback: str | None = None


def regions_of_interest(
    anomaly_map: np.ndarray,
    image_size: tuple[int, int],
    *,
    threshold: float = 0.9,
    crop: int = 384,
    drop_overlap: float = 0.8,
    merge_overlap: float = 0.1,
    max_regions: int = 4,
    order: str = "peak",
) -> Regions:
    """Regions of interest of one image.

    Args:
        anomaly_map: 2-D scores, any resolution (resized to the image, bilinear).
        image_size: ``(width, height)`` of the image in pixels.
        threshold: fraction of the map's range above its minimum that marks a region.
        crop: side of the square crop around each region, in image pixels.
        drop_overlap, merge_overlap: intersection over the smaller area above which a crop is
            dropped, or merged into a kept one.
        max_regions: how many crops at most.
        order: ``"peak"`` (highest peak first) or ``"detection"`` (Triad's code).

    Raises:
        InstructIADError: a map that is not 2-D, or an unknown ``order``.
    """
    if order not in ("peak", "detection"):
        raise InstructIADError(f"ROI order must be peak or detection, not {order!r}")
    scores = np.asarray(anomaly_map, dtype=np.float32)
    if scores.ndim != 2 or scores.size == 0:
        raise InstructIADError(f"anomaly map must be a 2-D array, got shape {scores.shape}")
    if not np.isfinite(scores).all():
        return Regions((), (), "the anomaly map holds NaN or infinite values")
    low, high = float(scores.min()), float(scores.max())
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return Regions((), (), "the anomaly map is constant")
    width, height = image_size
    if scores.shape != (height, width):
        scores = np.asarray(Image.fromarray(scores, mode="F").resize((width, height), Image.Resampling.BILINEAR))
        low, high = float(scores.min()), float(scores.max())
    boxes, peaks = _regions(scores, low + threshold * (high - low))
    if order == "peak":
        ranking = np.argsort(-peaks, kind="stable")
        boxes, peaks = boxes[ranking], peaks[ranking]
    kept, kept_peaks = _select(boxes, peaks, (width, height), crop, drop_overlap, merge_overlap)
    return Regions(
        tuple(tuple(int(v) for v in box) for box in kept[:max_regions]),
        tuple(float(p) for p in kept_peaks[:max_regions]),
    )


def _regions(scores: np.ndarray, cut: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (n, 4) and peaks (n,) of the 8-connected regions at or above ``cut``, in raster order."""
    mask = scores >= cut
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    window = np.s_[top : rows[-1] + 1, left : cols[-1] + 1]  # label only where regions lie
    labels, count = ndimage.label(mask[window], structure=_EIGHT_CONNECTED)
    slices = ndimage.find_objects(labels)
    boxes = np.array([[s[1].start + left, s[0].start + top, s[1].stop + left, s[0].stop + top] for s in slices])
    peaks = np.asarray(ndimage.maximum(scores[window], labels, index=np.arange(1, count + 1)), dtype=np.float64)
    return boxes.reshape(-1, 4), peaks.reshape(-1)


def _square(box: np.ndarray, size: tuple[int, int], crop: int) -> np.ndarray:
    """A square of side max(crop, box side), centred on ``box``, shifted to lie inside the image."""
    width, height = size
    side = min(max(crop, int(box[2] - box[0]), int(box[3] - box[1])), width, height)
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0 = int(np.clip(round(centre_x - side / 2), 0, width - side))
    y0 = int(np.clip(round(centre_y - side / 2), 0, height - side))
    return np.array([x0, y0, x0 + side, y0 + side])


def _overlap(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over the smaller area of ``box`` with each of ``others`` (n, 4)."""
    if not len(others):
        return np.zeros(0)
    inter_w = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    smaller = np.minimum(areas, (box[2] - box[0]) * (box[3] - box[1]))
    return inter_w * inter_h / np.maximum(smaller, 1)


def _select(
    boxes: np.ndarray, peaks: np.ndarray, size: tuple[int, int], crop: int, drop: float, merge: float
) -> tuple[np.ndarray, np.ndarray]:
    kept: list[np.ndarray] = []
    kept_peaks: list[float] = []
    for box, peak in zip(boxes, peaks, strict=True):
        square = _square(box, size, crop)
        overlaps = _overlap(square, np.array(kept).reshape(-1, 4))
        if len(overlaps) and overlaps.max() > drop:
            continue  # a kept crop already shows it
        if len(overlaps) and overlaps.max() > merge:
            target = int(np.argmax(overlaps > merge))
            union = np.array([min(kept[target][0], square[0]), min(kept[target][1], square[1]),
                              max(kept[target][2], square[2]), max(kept[target][3], square[3])])  # fmt: skip
            kept[target] = _square(union, size, crop)
            kept_peaks[target] = max(kept_peaks[target], float(peak))
            continue
        kept.append(square)
        kept_peaks.append(float(peak))
    return np.array(kept).reshape(-1, 4), np.array(kept_peaks)
