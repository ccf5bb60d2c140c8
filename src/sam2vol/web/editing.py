"""Mask editing in the web app: brush, eraser and fill strokes, label-map import, next slice.

Every edit becomes a session event (a mask prompt on the edited slice, or an
imported object), so it is undone, logged and replayed like a click, and the
engine propagates from it.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
from scipy import ndimage

from sam2vol.errors import InputError
from sam2vol.web.websession import WebSession, parse_color

MAX_RADIUS = 200
MAX_POINTS = 5000


def stroke_mask(shape: tuple[int, int], points, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of a polyline through ``points`` (row, col).

    Example:
        >>> m = stroke_mask((9, 9), [(4, 1), (4, 7)], 1)
        >>> int(m.sum()), bool(m[4, 4]), bool(m[2, 4])
        (23, True, False)
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) > 1:  # a dab every half radius along each segment
        dense = [pts[:1]]
        for a, b in itertools.pairwise(pts):
            n = max(1, int(np.ceil(np.hypot(*(b - a)) / max(0.5, radius / 2))))
            dense.append(a + (b - a) * (np.arange(1, n + 1)[:, None] / n))
        pts = np.concatenate(dense)
    out = np.zeros(shape, dtype=bool)
    rr, cc = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disc = rr**2 + cc**2 <= radius**2 + 0.5
    for r, c in np.rint(pts).astype(int):
        r0, r1 = max(0, r - radius), min(shape[0], r + radius + 1)
        c0, c1 = max(0, c - radius), min(shape[1], c + radius + 1)
        if r0 < r1 and c0 < c1:
            out[r0:r1, c0:c1] |= disc[
                r0 - r + radius : r1 - r + radius, c0 - c + radius : c1 - c + radius
            ]
    return out


def fill_at(mask: np.ndarray, row: int, col: int) -> np.ndarray:
    """Fill the hole of ``mask`` at (row, col); a click outside any hole fills every hole.

    Example:
        >>> m = np.zeros((7, 7), bool); m[1:6, 1:6] = True; m[3, 3] = False
        >>> bool(fill_at(m, 3, 3)[3, 3]), int(fill_at(m, 0, 0).sum())
        (True, 25)
    """
    background, _ = ndimage.label(~mask)
    region = background == background[row, col] if not mask[row, col] else None
    edge = np.zeros_like(mask)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    if region is None or (region & edge).any():
        return ndimage.binary_fill_holes(mask)
    return mask | region


def apply_edit(
    ws: WebSession,
    *,
    tool: str,
    view: str,
    s: int,
    points: list[tuple[int, int]],
    radius: int,
    object_id: int,
    version: int | None = None,
) -> None:
    """Brush (add), eraser (remove) or fill on one slice of the working view, as one event.

    ``version``: the session's revision the page shows (409 when another tab changed it).
    """
    if not points or len(points) > MAX_POINTS:
        raise InputError(f"an edit needs 1..{MAX_POINTS} points")
    if not 0 <= radius <= MAX_RADIUS:
        raise InputError(f"brush size must be 0..{MAX_RADIUS} pixels")
    with ws.locked():
        ws.check_version(version)
        session = ws._mutable()
        g = session.geometry
        if view != g.axis:
            raise InputError(f"edits go on {g.axis} slices: switch to the {g.axis} view")
        g.check_slice(s)
        rows, cols = g.slice_shape
        for r, c in points:
            if not (0 <= r < rows and 0 <= c < cols):
                raise InputError(f"pixel ({r}, {c}) is outside the slice ({rows}x{cols})")
        ws._check_object(session, object_id)
        exists = object_id in session.objects
        current = session.slice_mask(object_id, s) if exists else np.zeros((rows, cols), bool)
        if tool == "brush":
            new = current | stroke_mask((rows, cols), points, radius)
        elif tool == "eraser":
            new = current & ~stroke_mask((rows, cols), points, radius)
        elif tool == "fill":
            new = fill_at(current, *points[0])
        else:
            raise InputError(f"tool must be brush, eraser or fill, got {tool!r}")
        if np.array_equal(new, current):
            raise InputError(f"the {tool} changed nothing on slice {s}")
        if new.any():
            session.edit_slice(new, s, object_id=object_id)
        else:  # everything erased: the slice is cleared
            session.clear(object_id, s)
        ws._changed()


def label_masks(path: Path, filename: str, like) -> dict[str, np.ndarray]:
    """An uploaded label map (NIfTI, NRRD, MHA or DICOM-SEG) as name -> mask on ``like``'s grid."""
    from sam2vol.io import read_label
    from sam2vol.web.paths import suffix_of

    if suffix_of(filename) in (".dcm", ""):
        from sam2vol.web.dicom import read_seg_labels

        return read_seg_labels(path, like)
    try:
        label = read_label(path, like=like)
    except InputError as exc:
        raise InputError(str(exc).replace(str(path), filename).splitlines()[0]) from None
    data = np.asarray(label.data)
    values = [int(v) for v in np.unique(data) if v != 0]
    if len(values) > 255:
        raise InputError(f"{filename}: {len(values)} labels; at most 255 can be objects")
    return {f"label {v}": data == v for v in values}


def import_labels(
    ws: WebSession,
    masks: dict[str, np.ndarray],
    color: str | None = None,
    version: int | None = None,
) -> list:
    """Each mask a new object (one event each); returns the new ids.

    The new objects' masks are charged to the session's memory cost.
    """
    rgb = parse_color(color)
    ids = []
    with ws.locked():
        ws.check_version(version)
        session = ws._mutable()
        ws.cost_bytes += sum(int(m.size) for m in masks.values())  # a bool stack each
        for name, mask in masks.items():
            ids.append(session.import_mask(mask, name=name[:60], color=rgb))
        ws._changed()
    return ids


def next_slice(ws: WebSession, exclude: tuple[int, ...] = ()) -> dict:
    """The least sure slice of the working view (see :mod:`sam2vol.confidence`)."""
    from sam2vol.confidence import next_slice_to_check, session_confidence

    with ws.locked():
        session = ws._ready()
        conf = session_confidence(session)
    s = next_slice_to_check(conf, exclude)
    return {
        "slice": s,
        "confidence": None if s is None else round(float(conf[s]), 4),
        "view": session.geometry.axis,
    }
