"""Regions of interest from anomaly maps, following Triad's procedure."""

import numpy as np
import pytest

from instructiad.errors import InstructIADError
from instructiad.roi import regions_of_interest


def bumps(size: int, centres: list[tuple[int, int, float]], radius: float = 12.0) -> np.ndarray:
    """A map of Gaussian bumps: (x, y, height) each."""
    y, x = np.mgrid[0:size, 0:size]
    scores = np.zeros((size, size), np.float32)
    for cx, cy, height in centres:
        scores += height * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
    return scores


def test_one_region_becomes_one_square_crop_centred_on_it():
    regions = regions_of_interest(bumps(1024, [(600, 300, 1.0)]), (1024, 1024))
    assert regions.fallback is None and len(regions.boxes) == 1
    x0, y0, x1, y1 = regions.boxes[0]
    assert (x1 - x0, y1 - y0) == (384, 384)
    assert abs((x0 + x1) / 2 - 600) <= 1 and abs((y0 + y1) / 2 - 300) <= 1


def test_a_crop_near_the_edge_is_shifted_inside_the_image():
    (box,) = regions_of_interest(bumps(1024, [(20, 1010, 1.0)]), (1024, 1024)).boxes
    assert box == (0, 1024 - 384, 384, 1024)


def test_regions_are_ordered_by_peak_or_by_detection():
    scores = bumps(1024, [(150, 150, 0.95), (850, 850, 1.0)])
    by_peak = regions_of_interest(scores, (1024, 1024), threshold=0.5)
    assert [round(p, 2) for p in by_peak.peaks] == [1.0, 0.95]
    assert by_peak.boxes[0][0] > 500  # the higher bump, bottom right, first
    by_detection = regions_of_interest(scores, (1024, 1024), threshold=0.5, order="detection")
    assert by_detection.boxes == by_peak.boxes[::-1]


def test_overlapping_crops_merge_and_covered_crops_are_dropped():
    merged = regions_of_interest(bumps(1024, [(300, 300, 1.0), (560, 300, 1.0)]), (1024, 1024), threshold=0.5)
    assert len(merged.boxes) == 1
    x0, y0, x1, y1 = merged.boxes[0]
    assert x0 <= 300 - 12 and x1 >= 560 + 12 and x1 - x0 == y1 - y0  # the union, squared
    dropped = regions_of_interest(
        bumps(1024, [(300, 300, 1.0), (330, 300, 1.0)], radius=4), (1024, 1024), threshold=0.5
    )
    assert len(dropped.boxes) == 1 and dropped.boxes[0][2] - dropped.boxes[0][0] == 384


def test_at_most_four_regions_the_highest_first():
    centres = [(100 + 400 * (i % 3), 100 + 400 * (i // 3), 0.6 + 0.05 * i) for i in range(6)]
    regions = regions_of_interest(bumps(1024, centres, radius=6), (1024, 1024), threshold=0.3, crop=128)
    assert len(regions.boxes) == 4
    assert [round(p, 2) for p in regions.peaks] == [0.85, 0.8, 0.75, 0.7]


def test_a_low_resolution_map_is_resized_to_the_image():
    small = bumps(64, [(48, 16, 1.0)], radius=1.5)  # x = 0.75, y = 0.25 of the image
    (box,) = regions_of_interest(small, (2048, 1024), crop=256).boxes
    assert abs((box[0] + box[2]) / 2 - 0.75 * 2048) < 40 and abs((box[1] + box[3]) / 2 - 0.25 * 1024) < 40


def test_an_image_smaller_than_the_crop_is_shown_whole():
    (box,) = regions_of_interest(bumps(200, [(50, 60, 1.0)]), (200, 150)).boxes
    assert box == (0, 0, 150, 150)


@pytest.mark.parametrize(
    ("scores", "reason"),
    [
        (np.full((32, 32), 0.4, np.float32), "the anomaly map is constant"),
        (np.where(np.eye(32) > 0, np.nan, 0.0), "the anomaly map holds NaN or infinite values"),
        (np.where(np.eye(32) > 0, np.inf, 0.0), "the anomaly map holds NaN or infinite values"),
    ],
)
def test_maps_without_a_usable_signal_fall_back_to_the_whole_image(scores, reason):
    regions = regions_of_interest(scores, (512, 512))
    assert regions.boxes == () and regions.fallback == reason


def test_same_map_same_regions_and_bad_input():
    scores = np.random.default_rng(0).random((256, 256)).astype(np.float32)
    assert regions_of_interest(scores, (1024, 1024)) == regions_of_interest(scores, (1024, 1024))
    with pytest.raises(InstructIADError, match="2-D array"):
        regions_of_interest(np.zeros((4, 4, 3)), (4, 4))
    with pytest.raises(InstructIADError, match="peak or detection"):
        regions_of_interest(scores, (1024, 1024), order="random")
