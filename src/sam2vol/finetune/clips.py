"""Cases as slice stacks, clips of consecutive slices, their prompt point and boundary labels.

A clip is ``clip_length`` consecutive slices of one object, in the order they
are tracked: the first is the prompted slice (it always shows the object), the
others follow towards higher slice indices, or towards lower ones for a
reversed clip. Later slices may be empty: the model must learn that the object
ends. The prompt is one positive point at the centre of the object on the
prompted slice: the pixel farthest from the object's edge (SAM 2's ``center``
point sampling), in the slice's own pixels, like a user's click.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from sam2vol.datasets.base import Dataset
from sam2vol.intensity import prepare_stack
from sam2vol.slicing import SliceGeometry


@dataclass
class CaseSlices:
    """One case as a prepared slice stack and one mask stack per object.

    Attributes:
        case_id: The case.
        image: ``[s, row, col]`` float32 in [0, 1].
        masks: Object name -> ``[s, row, col]`` bool (objects absent from the case left out).
    """

    case_id: str
    image: np.ndarray
    masks: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Clip:
    """Which slices of which object, and the prompt.

    Attributes:
        case_id: The case.
        object_name: The object.
        slices: Slice indices in tracking order; ``slices[0]`` is prompted.
        point: ``(row, col)`` of the prompt on ``slices[0]``, in slice pixels.
    """

    case_id: str
    object_name: str
    slices: tuple[int, ...]
    point: tuple[int, int]

    @property
    def reverse(self) -> bool:
        """Whether tracking runs towards lower slice indices."""
        return len(self.slices) > 1 and self.slices[1] < self.slices[0]

    @property
    def positions(self) -> np.ndarray:
        """Each tracked slice's position along the volume, relative to the clip's lowest slice."""
        s = np.asarray(self.slices)
        return s - s.min()


@dataclass
class ClipData:
    """A clip's pixels, in tracking order.

    Attributes:
        clip: The clip.
        image: ``[L, row, col]`` float32 in [0, 1].
        mask: ``[L, row, col]`` bool reference masks.
    """

    clip: Clip
    image: np.ndarray
    mask: np.ndarray

    @classmethod
    def of(cls, case: CaseSlices, clip: Clip) -> ClipData:
        index = list(clip.slices)
        return cls(
            clip,
            np.ascontiguousarray(case.image[index], dtype=np.float32),
            np.ascontiguousarray(case.masks[clip.object_name][index]),
        )

    def compact(self) -> ClipData:
        """The same clip stored in float16 (validation clips are kept for the whole run)."""
        return ClipData(self.clip, self.image.astype(np.float16), self.mask)


def load_case(
    dataset: Dataset, case_id: str, *, axis: str = "axial", intensity: str = "auto"
) -> CaseSlices:
    """Read a case and slice it like the session does (same view, same intensity preset)."""
    case = dataset.load(case_id)
    geometry = SliceGeometry.for_volume(case.image, axis)  # type: ignore[arg-type]
    image = prepare_stack(geometry.to_stack(case.image.data), intensity)
    masks = {}
    for obj in case.objects:
        stack = np.ascontiguousarray(geometry.to_stack(case.mask(obj)))
        if stack.any():
            masks[obj.name] = stack
    return CaseSlices(case_id, image, masks)


def centre_point(mask: np.ndarray) -> tuple[int, int]:
    """The pixel of a 2D mask farthest from its edge, ``(row, col)``; ties: nearest the centroid.

    Example:
        >>> m = np.zeros((7, 9), bool); m[1:6, 2:9] = True
        >>> centre_point(m)
        (3, 5)
    """
    mask = np.asarray(mask, bool)
    padded = np.pad(mask, 1)  # the image border counts as edge
    distance = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    rows, cols = np.nonzero(distance == distance.max())
    # Among equally deep pixels, the one nearest the centroid.
    centroid = np.argwhere(mask).mean(axis=0)
    k = int(np.argmin((rows - centroid[0]) ** 2 + (cols - centroid[1]) ** 2))
    return int(rows[k]), int(cols[k])


def sample_clips(
    case: CaseSlices,
    n: int,
    clip_length: int,
    rng: np.random.Generator,
    *,
    reverse_prob: float = 0.5,
) -> list[Clip]:
    """Draw ``n`` clips from a case (none when no object has room for a clip).

    An object is drawn uniformly among the case's objects, then the prompted
    slice uniformly among the slices showing it that leave room for a clip,
    then the direction (reversed with probability ``reverse_prob`` where both fit).
    """
    options = []  # (name, prompt slices, forward ok, reverse ok)
    for name, mask in case.masks.items():
        n_slices = mask.shape[0]
        present = np.flatnonzero(mask.any(axis=(1, 2)))
        forward = present + clip_length - 1 < n_slices
        backward = present - (clip_length - 1) >= 0
        keep = forward | backward
        if keep.any():
            options.append((name, present[keep], forward[keep], backward[keep]))
    clips: list[Clip] = []
    if not options:
        return clips
    for _ in range(n):
        name, present, forward, backward = options[int(rng.integers(len(options)))]
        k = int(rng.integers(len(present)))
        start = int(present[k])
        wants_reverse = bool(rng.random() < reverse_prob)
        reverse = bool(backward[k]) if wants_reverse else not bool(forward[k])
        step = -1 if reverse else 1
        slices = tuple(range(start, start + step * clip_length, step))
        point = centre_point(case.masks[name][start])
        clips.append(Clip(case.case_id, name, slices, point))
    return clips


def boundary_labels(masks, radius: int):
    """Boundary maps: the morphological gradient (dilation minus erosion) of masks.

    The structuring element is a ``(2 * radius + 1)`` square, so the band is
    ``2 * radius`` pixels wide, half inside the object and half outside.
    The image border is not an edge.

    Args:
        masks: ``[N, 1, H, W]`` float tensor of 0/1.
        radius: Radius of the structuring element in pixels.

    Returns:
        ``[N, 1, H, W]`` float tensor of 0/1.
    """
    import torch.nn.functional as F

    size = 2 * radius + 1
    dilated = F.max_pool2d(masks, size, stride=1, padding=radius)
    eroded = -F.max_pool2d(-masks, size, stride=1, padding=radius)
    return dilated - eroded
