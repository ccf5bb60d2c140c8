import numpy as np
import pytest

from sam2vol import InputError, Volume
from sam2vol.slicing import AXES, SliceGeometry
from tests.helpers import lps_affine


def _world(volume: Volume, ijk) -> np.ndarray:
    return volume.affine @ np.array([*ijk, 1.0])


@pytest.mark.parametrize("axis", AXES)
def test_stack_round_trip_and_coordinates(ct_volume, axis):
    g = SliceGeometry.for_volume(ct_volume, axis)
    stack = g.to_stack(ct_volume.data)
    assert stack.shape == (g.n_slices, *g.slice_shape)
    np.testing.assert_array_equal(g.from_stack(stack), ct_volume.data)
    for ijk in [(0, 0, 0), (39, 29, 19), (5, 17, 3)]:
        s, r, c = g.voxel_to_slice(ijk)
        assert stack[s, r, c] == ct_volume.data[ijk]
        assert g.slice_to_voxel(s, r, c) == ijk


def test_display_orientation_is_radiological(ct_volume):
    """Axial rows run anterior->posterior, columns patient right->left."""
    g = SliceGeometry.for_volume(ct_volume, "axial")
    top_left = _world(ct_volume, g.slice_to_voxel(0, 0, 0))
    below = _world(ct_volume, g.slice_to_voxel(0, 1, 0))
    right = _world(ct_volume, g.slice_to_voxel(0, 0, 1))
    assert below[1] < top_left[1]  # A coordinate decreases down the rows
    assert right[0] < top_left[0]  # R coordinate decreases along the columns
    g = SliceGeometry.for_volume(ct_volume, "sagittal")
    assert _world(ct_volume, g.slice_to_voxel(0, 1, 0))[2] < _world(ct_volume, (0, 0, 0))[2] + 1e9
    top = _world(ct_volume, g.slice_to_voxel(0, 0, 0))
    assert _world(ct_volume, g.slice_to_voxel(0, 1, 0))[2] < top[2]  # S decreases down


def test_axis_chosen_from_direction_not_array_position():
    # Array axis 0 runs superior-inferior: the axial slices are along i.
    direction = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)  # columns = i, j, k in LPS
    vol = Volume(np.zeros((5, 6, 7)), lps_affine((3.0, 1.0, 1.0), (0, 0, 0), direction), "t")
    assert SliceGeometry.for_volume(vol, "axial").slice_axis == 0
    assert SliceGeometry.for_volume(vol, "sagittal").slice_axis == 1  # j runs left-right
    assert SliceGeometry.for_volume(vol, "coronal").slice_axis == 2  # k runs anterior-posterior
    assert SliceGeometry.for_volume(vol, "axial").slice_thickness_mm == 3.0


def test_plane_round_trip(ct_volume):
    g = SliceGeometry.for_volume(ct_volume, "coronal")
    plane = ct_volume.data.take(7, axis=g.slice_axis)
    np.testing.assert_array_equal(g.plane_to_slice(plane), g.to_stack(ct_volume.data)[7])
    np.testing.assert_array_equal(g.slice_to_plane(g.plane_to_slice(plane)), plane)


def test_bad_axis_and_points(ct_volume):
    with pytest.raises(InputError, match="--axis"):
        SliceGeometry.for_volume(ct_volume, "oblique")
    g = SliceGeometry.for_volume(ct_volume)
    with pytest.raises(InputError, match="outside the volume"):
        g.voxel_to_slice((40, 0, 0))
    with pytest.raises(InputError, match="outside"):
        g.check_slice(20)
