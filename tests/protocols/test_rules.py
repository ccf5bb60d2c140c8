"""The simulated user's click rules on hand-built 2D masks, against hand-worked answers."""

from __future__ import annotations

import numpy as np
import pytest

from sam2vol.protocols import rules
from sam2vol.protocols.rules import Click


def box(shape, r0, r1, c0, c1) -> np.ndarray:
    """Mask with rows r0..r1 and columns c0..c1 (inclusive) set."""
    m = np.zeros(shape, bool)
    m[r0 : r1 + 1, c0 : c1 + 1] = True
    return m


# ----- Shen et al.: deepest error pixel --------------------------------------------------------
def test_shen_click_at_deepest_false_negative_first_in_row_major():
    # gt: rows 2-6, cols 1-9 (5 x 9) in a 10 x 12 slice, nothing predicted.
    # Depth = distance to the nearest pixel outside: row 4 is 3 from rows 1 and 7; a column
    # c is c from column 0 and 10 - c from column 10. Row 4, columns 3..7 reach depth 3;
    # the first in row-major order is (4, 3).
    gt = box((10, 12), 2, 6, 1, 9)
    assert rules.farthest_error_click(gt, np.zeros_like(gt), 7) == Click(7, 4, 3, True)


def test_shen_click_negative_when_false_positive_is_deeper():
    # FN: 3x3 at rows 1-3, cols 1-3 -> depth 2 at (2, 2).
    # FP: 5x5 at rows 5-9, cols 5-9 -> depth 3 at (7, 7): deeper, so a negative click there.
    gt = box((12, 12), 1, 3, 1, 3)
    pred = box((12, 12), 5, 9, 5, 9)
    assert rules.farthest_error_click(gt, pred, 0) == Click(0, 7, 7, False)


def test_shen_click_tie_goes_to_positive():
    # FN 3x3 at rows 1-3, cols 1-3 (depth 2 at (2, 2)); FP 3x3 at rows 6-8, cols 6-8 (depth
    # 2 at (7, 7)). Equal depths: positive (FN max >= FP max) at (2, 2).
    gt = box((12, 12), 1, 3, 1, 3)
    pred = box((12, 12), 6, 8, 6, 8)
    assert rules.farthest_error_click(gt, pred, 0) == Click(0, 2, 2, True)


def test_shen_stops_on_thin_errors():
    # gt 6x6 at rows 0-5, cols 0-5; prediction covers columns 0-3: the FN strip (columns 4-5)
    # is two pixels thick, every pixel has depth 1 <= 1.42: no click.
    gt = box((8, 8), 0, 5, 0, 5)
    pred = box((8, 8), 0, 5, 0, 3)
    assert rules.farthest_error_click(gt, pred, 0) is None
    # A plus sign: its centre's 4-neighbours are inside, its diagonals outside, so its depth
    # is sqrt(2) = 1.414 <= 1.42: still no click.
    plus = np.zeros((5, 5), bool)
    plus[2, 1:4] = plus[1:4, 2] = True
    assert rules.deepest_in_components(plus) == (pytest.approx(np.sqrt(2)), (2, 2))
    assert rules.farthest_error_click(plus, np.zeros_like(plus), 0) is None


def test_shen_padding_makes_the_image_edge_a_border():
    # gt rows 0-2, cols 0-4 in a 6x6 slice. Without padding, (0, 2) would be 3 away from
    # row 3; with the one-pixel pad row 0 touches the border (depth 1). Row 1 is 2 from row
    # -1 and row 3; (1, 1) is 2 from column -1: the first depth-2 pixel is (1, 1).
    gt = box((6, 6), 0, 2, 0, 4)
    assert rules.farthest_error_click(gt, np.zeros_like(gt), 3) == Click(3, 1, 1, True)


def test_shen_components_are_four_connected():
    # Two 3x3 blocks touching only at a corner are two components, each with depth 2 at
    # its centre; the first in row-major order wins: (1, 1).
    region = box((6, 6), 0, 2, 0, 2) | box((6, 6), 3, 5, 3, 5)
    assert rules.deepest_in_components(region) == (2.0, (1, 1))


# ----- He et al.: eroded regions and their centres ---------------------------------------------
def test_region_centre_paper_and_code_differ():
    # Eroded A: rows 3-7, cols 3-7 (25 px); eroded B: rows 3-5, cols 13-15 (9 px).
    # paper: centroid rows (5*25 + 3*12) / 34 = 161/34 = 4.735, cols (5*25 + 3*42) / 34
    #        = 251/34 = 7.382 -> nearest pixel (5, 7) (d^2 = 0.070 + 0.146).
    # code:  m = (161 + 251) / 68 = 6.059 -> nearest pixel to (m, m) is (6, 6).
    region = box((16, 24), 3, 7, 3, 7) | box((16, 24), 3, 5, 13, 15)
    assert rules.region_centre(region, "paper") == (5, 7)
    assert rules.region_centre(region, "code") == (6, 6)
    with pytest.raises(ValueError):
        rules.region_centre(region, "median")  # type: ignore[arg-type]


# ----- 3D start point, deepest point, worst slice ----------------------------------------------
def test_start_voxel_nearest_centroid_of_largest_component():
    # Largest component: the prism slices 1-7, rows 2-8, cols 2-8 (343 voxels), centroid
    # (4, 5, 5), itself a voxel. The smaller prism (slices 1-7, rows 2-6, cols 12-16) is
    # ignored.
    g = np.zeros((9, 16, 24), bool)
    g[1:8, 2:9, 2:9] = True
    g[1:8, 2:7, 12:17] = True
    assert rules.start_voxel(g) == (4, 5, 5)


def test_deepest_point_of_largest_eight_connected_component():
    # Two blobs joined only diagonally form one 8-connected component of 9 + 9 = 18 px,
    # larger than the 4x4 block (16 px) elsewhere; its deepest pixels (depth 2) are the two
    # 3x3 centres (1, 1) and (4, 4): first in row-major order, (1, 1).
    g = box((10, 12), 0, 2, 0, 2) | box((10, 12), 3, 5, 3, 5) | box((10, 12), 5, 8, 7, 10)
    assert rules.deepest_point_of_largest_component(g) == (1, 1)
