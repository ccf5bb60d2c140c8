"""Volume overlap: Dice and IoU (Jaccard) of two binary masks.

Empty masks follow the package rule: both empty gives 1.0 (perfect agreement on
"nothing there"), exactly one empty gives 0.0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from sam2vol.metrics._common import as_mask_pair, crop_pair

__all__ = ["dice", "iou"]


def overlap_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """Returns ``(|pred & gt|, |pred|, |gt|)`` of two boolean masks of the same shape."""
    return (
        int(np.count_nonzero(pred & gt)),
        int(np.count_nonzero(pred)),
        int(np.count_nonzero(gt)),
    )


def dice_from_counts(intersection: int, pred_voxels: int, gt_voxels: int) -> float:
    """Dice ``2|P∩G| / (|P| + |G|)`` from voxel counts; 1.0 when both masks are empty."""
    total = pred_voxels + gt_voxels
    return 1.0 if total == 0 else 2.0 * intersection / total


def iou_from_counts(intersection: int, pred_voxels: int, gt_voxels: int) -> float:
    """IoU ``|P∩G| / |P∪G|`` from voxel counts; 1.0 when both masks are empty."""
    union = pred_voxels + gt_voxels - intersection
    return 1.0 if union == 0 else intersection / union


def dice(pred: ArrayLike, gt: ArrayLike) -> float:
    """Sørensen-Dice coefficient ``2|P∩G| / (|P| + |G|)`` of two masks.

    Args:
        pred: Predicted mask, any array-like; non-zero is foreground.
        gt: Reference mask of the same shape.

    Returns:
        Dice in [0, 1]: 1.0 if both masks are empty, 0.0 if exactly one is.

    Raises:
        ValueError: If the shapes differ.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((4, 4), bool); gt[:2] = True     # 8 voxels
        >>> pred = np.zeros((4, 4), bool); pred[:1] = True  # 4 voxels, all inside gt
        >>> dice(pred, gt)  # 2 * 4 / (4 + 8)
        0.6666666666666666
    """
    p, g = crop_pair(*as_mask_pair(pred, gt))
    return dice_from_counts(*overlap_counts(p, g))


def iou(pred: ArrayLike, gt: ArrayLike) -> float:
    """Intersection over union (Jaccard index) ``|P∩G| / |P∪G|`` of two masks.

    Args:
        pred: Predicted mask, any array-like; non-zero is foreground.
        gt: Reference mask of the same shape.

    Returns:
        IoU in [0, 1]: 1.0 if both masks are empty, 0.0 if exactly one is.

    Raises:
        ValueError: If the shapes differ.

    Example:
        >>> import numpy as np
        >>> gt = np.zeros((4, 4), bool); gt[:2] = True
        >>> pred = np.zeros((4, 4), bool); pred[:1] = True
        >>> iou(pred, gt)  # 4 / 8
        0.5
    """
    p, g = crop_pair(*as_mask_pair(pred, gt))
    return iou_from_counts(*overlap_counts(p, g))
