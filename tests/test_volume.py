import numpy as np
import pytest

from sam2vol import InputError, Volume


def test_geometry_properties(ct_volume):
    assert ct_volume.shape == (40, 30, 20)
    np.testing.assert_allclose(ct_volume.spacing_mm, (0.7, 0.8, 2.5))
    assert ct_volume.orientation == "LPS"
    np.testing.assert_allclose(ct_volume.origin_ras, (10.0, -20.0, -30.0))
    assert ct_volume.voxel_volume_ml == pytest.approx(0.7 * 0.8 * 2.5 / 1000)


def test_not_3d_is_an_input_error():
    with pytest.raises(InputError, match="expected a 3D volume"):
        Volume(np.zeros((4, 4)))


def test_grid_checks(ct_volume):
    mask = ct_volume.with_data(np.zeros(ct_volume.shape, np.uint8), source="m")
    assert ct_volume.same_grid(mask)
    moved = Volume(mask.data, mask.affine + np.pad(np.eye(3)[:, :1] * 0, ((0, 1), (3, 0))), "m")
    moved.affine[0, 3] += 1.0
    with pytest.raises(InputError, match="geometry"):
        ct_volume.check_same_grid(moved)
    with pytest.raises(InputError, match="shape"):
        ct_volume.check_same_grid(Volume(np.zeros((2, 2, 2)), source="small"))
