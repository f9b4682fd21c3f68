"""Mask geometry: boxes of connected regions and the coarse 3x3 location."""

import numpy as np

from instructiad.masks import boxes, location


def test_boxes_are_one_per_eight_connected_region_max_exclusive():
    mask = np.zeros((30, 30), bool)
    mask[2:5, 3:7] = True
    mask[5, 7] = True  # touches the first region diagonally: same region
    mask[20:25, 10:12] = True
    assert boxes(mask) == [[3, 2, 8, 6], [10, 20, 12, 25]]


def test_empty_mask_has_no_box_and_no_location():
    mask = np.zeros((9, 9), bool)
    assert boxes(mask) == []
    assert location(mask) == (None, [], 0.0)


def test_location_names_the_dominant_cell_and_every_touched_cell():
    mask = np.zeros((90, 90), bool)
    mask[0:10, 60:90] = True  # 300 px top right
    mask[40:45, 40:45] = True  # 25 px center
    assert location(mask) == ("top right", ["top right", "center"], round(300 / 325, 4))


def test_location_uses_thirds_of_non_square_images():
    mask = np.zeros((30, 60), bool)
    mask[25, 45] = True
    assert location(mask) == ("bottom right", ["bottom right"], 1.0)
