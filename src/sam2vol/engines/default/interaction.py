"""Prompts on one slice -> the object's 2D mask there (checks, then masks, boxes and clicks)."""

from __future__ import annotations

import numpy as np

from sam2vol.engines.base import SlicePrompts
from sam2vol.engines.default.appearance import smooth
from sam2vol.engines.default.box import segment_box
from sam2vol.engines.default.clicks import clicked_part, grow_from_clicks, remove_touched
from sam2vol.engines.default.geodesic import geodesic_competition
from sam2vol.engines.default.graphcut import Crop
from sam2vol.engines.default.masks import disc, distance_mm, fill_holes, points_mask
from sam2vol.engines.default.params import DefaultParams, PixelGeometry
from sam2vol.errors import InputError


def predict_prompts(
    image: np.ndarray,
    slice_index: int,
    prompts: SlicePrompts,
    current: np.ndarray | None,
    params: DefaultParams,
    geo: PixelGeometry,
) -> np.ndarray:
    """The mask that ``prompts`` ask for on one slice.

    The starting mask is the mask prompt, else the box's segmentation, else
    ``current``. Then each click, in the order given, corrects the mask: a
    positive click outside it adds the region grown around the click (the
    whole mask, when there is none yet; a local correction otherwise), a
    negative click cuts away what it touches. A click already satisfied
    changes nothing, so re-predicting with the same clicks, or on top of
    their own result, is stable.

    Args:
        image: The slice, (H, W) in [0, 1].
        slice_index: Its index, for messages.
        prompts: The prompts on it.
        current: The object's mask there before these prompts, or None.
        params: Settings.
        geo: Pixel geometry.

    Raises:
        InputError: An empty or wrongly shaped mask, a box of zero size or
            outside the slice, a click outside the slice.
    """
    shape = image.shape
    points, labels = check_points(prompts, shape, slice_index)
    positive, negative = points[labels], points[~labels]
    if prompts.mask is not None:
        base = check_mask(prompts.mask, shape, slice_index, "mask prompt")
        if not base.any():
            raise InputError(
                f"mask prompt on slice {slice_index} is empty: draw at least one pixel"
            )
    elif prompts.box is not None:
        box = check_box(prompts.box, shape, slice_index)
        base = segment_box(image, box, positive, negative, params, geo)
    elif current is not None:
        base = check_mask(current, shape, slice_index, "current mask")
    else:
        base = np.zeros(shape, dtype=bool)
    # Clicks in order, each correcting the mask left by the ones before.
    for point, is_positive in zip(points, labels, strict=True):
        if not is_positive:
            base = remove_touched(base, image, point, positive, params, geo)
        elif not base[point[0], point[1]]:
            first = not base.any()
            free, cost = (
                (params.grow_free_mm, params.grow_cost)
                if first
                else (params.fix_free_mm, params.fix_cost)
            )
            grown = grow_from_clicks(
                image,
                point[None],
                negative,
                params,
                geo,
                free_mm=free,
                cost_per_mm=cost,
                known=None if first else base,
            )
            if first and grown.sum() <= params.min_click_growth * seed_area(params, geo):
                grown = click_fallback(image, point, negative, params, geo)
            if first:
                grown = clicked_part(grown, point, params, geo)
            base = base | grown
    return base


def seed_area(params: DefaultParams, geo: PixelGeometry) -> int:
    """Pixels in the seed disc under a click."""
    return int(disc(params.click_radius_mm / min(geo.spacing)).sum())


def click_fallback(
    image: np.ndarray,
    point: np.ndarray,
    negative: np.ndarray,
    params: DefaultParams,
    geo: PixelGeometry,
) -> np.ndarray:
    """The region of a first click whose seeded graph cut grew (almost) nothing.

    That happens where the object's intensity is not distinctive (a deep
    grey-matter structure on T1): the intensity model sees no object, and a
    seed disc alone ends propagation on the next slice. Instead the click
    competes with a circle ``grow_free_mm`` around it (and the negative
    clicks) in a geodesic competition, whose boundary settles on the strongest
    edges in between (:func:`~.geodesic.geodesic_competition`).
    """
    reach = geo.px(params.grow_free_mm) + 2
    crop = Crop.of_box(point[0], point[1], point[0], point[1], reach, image.shape)
    img = smooth(image[crop.slices], params.image_sigma_px)
    offset = np.array([crop.r0, crop.c0])
    seed_px = params.click_radius_mm / min(geo.spacing)
    fg = points_mask(img.shape, (point - offset)[None], seed_px)
    dist = distance_mm(points_mask(img.shape, (point - offset)[None], 0), geo.spacing)
    neg = negative - offset
    neg = neg[np.all((neg >= 0) & (neg < img.shape), axis=1)]
    bg = ((dist >= params.grow_free_mm) | points_mask(img.shape, neg, seed_px)) & ~fg
    if not bg.any():
        return crop.paste(fg, image.shape)
    region = fill_holes(geodesic_competition(img, fg, bg, geo.spacing)) | fg
    return crop.paste(region, image.shape)


def check_points(
    prompts: SlicePrompts, shape: tuple[int, int], slice_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """The clicks as (N, 2) int rows/cols and (N,) bool labels, all inside the slice."""
    points = np.asarray(prompts.points, dtype=np.int64).reshape(-1, 2)
    labels = np.asarray(prompts.labels, dtype=bool).ravel()
    if len(labels) != len(points):
        raise InputError(
            f"slice {slice_index}: {len(points)} click(s) but {len(labels)} label(s); "
            "give one positive/negative label per click"
        )
    outside = ~np.all((points >= 0) & (points < np.asarray(shape)), axis=1)
    if outside.any():
        row, col = points[np.argmax(outside)]
        raise InputError(
            f"click ({row}, {col}) on slice {slice_index} is outside the slice "
            f"(rows 0..{shape[0] - 1}, columns 0..{shape[1] - 1})"
        )
    return points, labels


def check_mask(mask: np.ndarray, shape: tuple[int, int], slice_index: int, what: str) -> np.ndarray:
    """``mask`` as a bool array of the slice's shape."""
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise InputError(
            f"{what} on slice {slice_index} has shape {mask.shape}, expected {tuple(shape)}"
        )
    return mask.astype(bool, copy=True)


def check_box(
    box: tuple[int, int, int, int], shape: tuple[int, int], slice_index: int
) -> tuple[int, int, int, int]:
    """The box (row0, col0, row1, col1) ordered and clipped to the slice.

    Raises:
        InputError: It has zero height or width, or lies wholly outside the slice.
    """
    try:
        r0, c0, r1, c1 = (round(float(v)) for v in box)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"box on slice {slice_index} must be four numbers (row0, col0, row1, col1), got {box!r}"
        ) from exc
    r0, r1 = sorted((r0, r1))
    c0, c1 = sorted((c0, c1))
    if r0 == r1 or c0 == c1:
        raise InputError(
            f"box {tuple(box)} on slice {slice_index} has zero size: drag a box at least 2x2 pixels"
        )
    if r1 < 0 or c1 < 0 or r0 >= shape[0] or c0 >= shape[1]:
        raise InputError(
            f"box {tuple(box)} on slice {slice_index} lies outside the slice "
            f"(rows 0..{shape[0] - 1}, columns 0..{shape[1] - 1})"
        )
    r0, c0 = max(r0, 0), max(c0, 0)
    r1, c1 = min(r1, shape[0] - 1), min(c1, shape[1] - 1)
    if r0 == r1 or c0 == c1:
        raise InputError(
            f"box {tuple(box)} on slice {slice_index} has zero size inside the slice "
            f"(rows 0..{shape[0] - 1}, columns 0..{shape[1] - 1})"
        )
    return r0, c0, r1, c1
