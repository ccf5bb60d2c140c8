import numpy as np
import pytest

from sam2vol import InputError
from sam2vol.intensity import PRESETS, prepare_stack, resolve_preset, to_uint8


def test_ct_windows():
    hu = np.array([[[-1000.0, -160.0, 40.0, 240.0, 3000.0]]])
    out = prepare_stack(hu, "ct-abdomen")  # W400/L40 -> [-160, 240]
    np.testing.assert_allclose(out[0, 0], [0, 0, 0.5, 1, 1])
    assert out.dtype == np.float32
    lung = prepare_stack(np.array([[[-1350.0, -600.0, 150.0]]]), "ct-lung")
    np.testing.assert_allclose(lung[0, 0], [0, 0.5, 1])
    he = prepare_stack(np.array([[[-2000.0, -1000.0, 0.0, 1000.0]]]), "ct-he2024")
    np.testing.assert_allclose(he[0, 0], [0, 0, 0.5, 1])


def test_mr_percentile_and_slice_minmax():
    rng = np.random.default_rng(1)
    mr = rng.gamma(2.0, 100.0, size=(4, 50, 50))
    mr[0, 0, 0] = 1e6  # outlier is clipped, not stretched to
    out = prepare_stack(mr, "mr-percentile")
    assert out.min() == 0 and out.max() == 1
    assert np.mean(out > 0.99) < 0.01
    stack = np.stack([np.full((3, 3), 5.0), np.arange(9.0).reshape(3, 3)])
    mm = prepare_stack(stack, "slice-minmax")
    np.testing.assert_allclose(mm[1].ravel(), np.arange(9) / 8)
    np.testing.assert_allclose(mm[0], 0)


def test_auto_and_unknown():
    assert resolve_preset("auto", np.array([-1024, 50])).name == "ct-he2024"
    assert resolve_preset("auto", np.array([0, 500])).name == "mr-percentile"
    with pytest.raises(InputError, match="--intensity"):
        resolve_preset("soft")
    assert set(PRESETS) >= {"ct-abdomen", "ct-lung", "ct-bone", "ct-brain", "ct-liver"}


def test_to_uint8():
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0, 1.5])), [0, 128, 255, 255])


def test_uint8_suffix_floors_to_256_levels_like_astype_uint8():
    import numpy as np

    from sam2vol.intensity import prepare_stack

    x = np.linspace(-1200, 1200, 4001, dtype=np.float32).reshape(1, 1, -1)
    got = prepare_stack(x, "ct-he2024+uint8")
    # He et al.: ScaleIntensityRanged(-1000, 1000 -> 0, 255, clip) then astype(np.uint8)
    scaled = np.clip((x.astype(np.float64) + 1000) / 2000 * 255, 0, 255)
    np.testing.assert_array_equal(np.round(got * 255).astype(np.uint8), scaled.astype(np.uint8))
    assert len(np.unique(got)) == 256
    # Shen et al.: (x - min) / (max - min) * 255, astype(np.uint8), per slice
    s = np.random.default_rng(0).normal(size=(3, 5, 7)).astype(np.float32)
    lo, hi = s.min(axis=(1, 2), keepdims=True), s.max(axis=(1, 2), keepdims=True)
    expected = (((s - lo) / (hi - lo)) * 255).astype(np.uint8)
    got = np.round(prepare_stack(s, "slice-minmax+uint8") * 255).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
