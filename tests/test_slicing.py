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


# The README's table: (world axis in RAS, sign) that rows and columns run along, per view.
R, A, S = 0, 1, 2
README_ORIENTATION = {
    "axial": ((A, -1), (R, -1)),  # rows anterior -> posterior, columns patient right -> left
    "coronal": ((S, -1), (R, -1)),  # rows superior -> inferior, columns patient right -> left
    "sagittal": ((S, -1), (A, -1)),  # rows superior -> inferior, columns anterior -> posterior
}


def _permuted_volume() -> Volume:
    """Array axes in an unusual order (i: S-I, j: L-R, k: A-P) with a flipped one."""
    direction = np.array([[0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=float)  # columns = i, j, k
    return Volume(np.zeros((5, 6, 7)), lps_affine((3.0, 1.0, 1.5), (4, -2, 9), direction), "p")


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("which", ["ct", "permuted"])
def test_display_orientation_matches_the_readme_table(ct_volume, axis, which):
    volume = ct_volume if which == "ct" else _permuted_volume()
    g = SliceGeometry.for_volume(volume, axis)
    origin = _world(volume, g.slice_to_voxel(1, 1, 1))
    down = _world(volume, g.slice_to_voxel(1, 2, 1)) - origin
    across = _world(volume, g.slice_to_voxel(1, 1, 2)) - origin
    for step, (world_axis, sign) in zip((down, across), README_ORIENTATION[axis], strict=True):
        assert np.argmax(np.abs(step[:3])) == world_axis, step
        assert np.sign(step[world_axis]) == sign, step


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
