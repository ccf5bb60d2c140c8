"""Each protocol on a hand-built volume: the exact prompts it logs, its rounds, and replay.

The volume (array [i, j, k] = [col, row, slice]: with the affine diag(-1, -1, 1) the
axial stack has row = j, col = i, slice = k, no flips) is 24 columns x 16 rows x 9 slices:

- A: bright and reference, slices 1-7, rows 2-8, cols 2-8 (7x7 = 49 px a slice);
- B: bright and reference, slices 1-7, rows 2-6, cols 12-16 (5x5 = 25 px);
- F: bright, not reference, slice 6 only, rows 9-14, cols 2-8 (6x7 = 42 px), touching A;
- E: reference, not bright, slice 6 only, rows 9-13, cols 12-18 (5x7 = 35 px).

The test engine (tests.helpers.ThresholdEngine) segments bright connected components: a
positive click takes the component under it, a negative click removes it, a box takes
the bright pixels inside, and tracking keeps the components overlapping the previous
slice. So on slice 6 the engine sees A and F as one component, and never finds E.
Reference: 49*7 + 25*7 + 35 = 553 voxels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from sam2vol import InputError, Volume
from sam2vol.protocols import PROTOCOLS, Click, create_protocol, replay
from sam2vol.slicing import SliceGeometry
from tests.helpers import ThresholdEngine


def _volume_and_reference() -> tuple[Volume, np.ndarray]:
    stack_bright = np.zeros((9, 16, 24), bool)  # [slice, row, col]
    stack_ref = np.zeros((9, 16, 24), bool)
    for target in (stack_bright, stack_ref):
        target[1:8, 2:9, 2:9] = True  # A
        target[1:8, 2:7, 12:17] = True  # B
    stack_bright[6, 9:15, 2:9] = True  # F
    stack_ref[6, 9:14, 12:19] = True  # E
    to_array = (2, 1, 0)  # [s, row, col] -> [col, row, s] = [i, j, k]
    data = np.where(stack_bright.transpose(to_array), 1000.0, 0.0).astype(np.float32)
    volume = Volume(data, np.diag([-1.0, -1.0, 1.0, 1.0]), "hand-built")
    return volume, stack_ref.transpose(to_array).copy()


@pytest.fixture(scope="module")
def case() -> tuple[Volume, np.ndarray]:
    return _volume_and_reference()


def run(spec: str, case, seed: int = 0):
    volume, reference = case
    return create_protocol(spec).run(volume, reference, ThresholdEngine(), seed=seed)


def prompts(result, volume) -> list:
    """The logged prompts in stack terms: ('click', Click), ('box', ...), ('mask', s), ..."""
    g = SliceGeometry.for_volume(volume, "axial")
    out = []
    for e in result.events:
        if e["kind"] == "point":
            s, r, c = g.voxel_to_slice(tuple(e["voxel"]))
            out.append(("click", Click(s, r, c, e["positive"])))
        elif e["kind"] == "box":
            (s, r0, c0), (_, r1, c1) = (
                g.voxel_to_slice(tuple(e[k])) for k in ("corner_a", "corner_b")
            )
            out.append(("box", s, (r0, c0, r1, c1)))
        elif e["kind"] == "mask":
            out.append(("mask", e["index"]))
        elif e["kind"] == "propagate":
            out.append(("propagate", e["start"], e["direction"], e["reset_between"]))
        elif e["kind"] == "clear":
            out.append(("clear",))
    return out


def test_geometry_of_the_hand_built_volume(case):
    volume, _ = case
    g = SliceGeometry.for_volume(volume, "axial")
    assert (g.slice_axis, g.row_axis, g.col_axis, g.flip_rows, g.flip_cols) == (2, 1, 0, 0, 0)
    assert g.slice_to_voxel(4, 5, 7) == (7, 5, 4)


def test_he2024_paper(case):
    result = run("he2024", case, seed=3)
    rng = np.random.default_rng(3)
    k_f = int(rng.integers(20))  # random pixel of the eroded F (round 2)
    k_a = int(rng.integers(25))  # random pixel of the eroded A (round 3)
    assert prompts(result, case[0]) == [
        # Start: the largest 3D component is A, centroid (4, 5, 5) -> slice 4.
        # Initial clicks on slice 4 (nothing predicted): eroded FN = A' (rows 3-7, cols 3-7)
        # + B' (rows 3-5, cols 13-15); its centroid (4.735, 7.382) is nearest (5, 7): the
        # engine takes A. Then only B is missed: its eroded centroid (4, 14). Then no error
        # is left after erosion: 2 of the 5 initial clicks.
        ("click", Click(4, 5, 7, True)),
        ("click", Click(4, 4, 14, True)),
        ("propagate", None, "both", False),
        # Round 1: A+B on slices 1-7, plus F on slice 6 (tracked with A). Slice Dice: 1.0
        # everywhere but slice 6: 2*74 / (109 + 116) = 0.658 -> slice 6. FN E eroded:
        # centre (11, 15), positive. FP F eroded (20 px > 15): centroid (11.5, 5) ->
        # (11, 5), negative; the random click goes to the larger region, F.
        ("click", Click(6, 11, 15, True)),
        ("click", Click(6, 11, 5, False)),
        ("click", Click(6, 10 + k_f // 5, 3 + k_f % 5, False)),
        ("propagate", None, "both", False),
        # Round 2: the negative click removed A+F on slice 6, so tracking from slice 4 loses
        # A on slice 7 (Dice 2*25/99 = 0.505, the worst unprompted slice). FN = A: eroded
        # centre (5, 5), positive, and a random positive in the eroded A.
        ("click", Click(7, 5, 5, True)),
        ("click", Click(7, 3 + k_a // 5, 3 + k_a % 5, True)),
        ("propagate", None, "both", False),
        # Round 3: slices 1-5 and 7 are perfect, 4, 6, 7 prompted: nothing left to pick.
    ]
    assert result.prompted_slices == [4, 6, 7]
    # Dice: round 1 2*518/(553+560); round 2 2*420/(553+420); round 3 2*469/(553+469).
    assert result.to_json_dict()["round_dice"] == pytest.approx(
        [1036 / 1113, 840 / 973, 938 / 1022]
    )
    assert result.best_dice == pytest.approx(1036 / 1113)
    assert [r.clicks for r in result.rounds] == [2, 5, 7]


def test_he2024_code_variant_centres(case):
    # code: initial click at the pixel nearest (m, m), m = 412/68 = 6.06 -> (6, 6);
    # then B' alone: m = (36 + 126)/18 = 9 -> (5, 13). On slice 6: E' m = 13 -> (12, 13),
    # F' m = 8.25 -> (10, 7).
    clicks = [p[1] for p in prompts(run("he2024-code", case, seed=3), case[0]) if p[0] == "click"]
    assert clicks[:4] == [
        Click(4, 6, 6, True),
        Click(4, 5, 13, True),
        Click(6, 12, 13, True),
        Click(6, 10, 7, False),
    ]


def test_he2024_stops_at_max_slices_and_bg_removal_scope(case):
    result = run("he2024:max_slices=2,bg_removal=true", case)
    assert result.prompted_slices == [4, 6]
    assert result.eval_slices == "foreground"
    assert result.protocol == "he2024:max_slices=2,bg_removal=true"


def test_ma2024_box_forward_reset_backward(case):
    # Extent slices 1-7 -> middle slice 4; reference on it: A + B, bounding box rows 2-8,
    # cols 2-16. Propagated both ways with a reset between; only slices 1-7 scored.
    result = run("ma2024", case)
    assert prompts(result, case[0]) == [("box", 4, (2, 2, 8, 16)), ("propagate", 4, "both", True)]
    assert result.eval_slices == "foreground"
    assert result.to_json_dict()["dice"] == pytest.approx(1036 / 1113)


def test_dong2024_one_and_three_slices(case):
    # Object slices 1..7 (N = 7): middle = index 7 // 2 = 3 -> slice 4. Largest 8-connected
    # component there is A (49 px), its deepest pixel is the centre (5, 5).
    assert prompts(run("dong2024", case), case[0]) == [
        ("click", Click(4, 5, 5, True)),
        ("propagate", 4, "both", True),
    ]
    # 3 slices: indices 7//4 = 1, 14//4 = 3, 21//4 = 5 -> slices 2, 4, 6. On slice 6 the
    # components are A (49), E (35), B (25): A again, centre (5, 5). Start at the middle one.
    assert prompts(run("dong2024-3slices", case), case[0]) == [
        ("click", Click(2, 5, 5, True)),
        ("click", Click(4, 5, 5, True)),
        ("click", Click(6, 5, 5, True)),
        ("propagate", 4, "both", True),
    ]


def test_shen2024_clicks_resent_each_round(case):
    # Centre slice (1 + 7) // 2 = 4 shows 74 px (the default needs > 100, see below).
    # Click 1: deepest FN is A's centre (5, 5) (depth 4; B's is 3): the engine takes A.
    # Click 2: only B is missed: its centre (4, 14). All clicks are re-sent after a clear.
    # Then slice 4 is perfect: stop after 2 of the 5 clicks.
    result = run("shen2024-clicks:min_pixels=50", case)
    assert prompts(result, case[0]) == [
        ("click", Click(4, 5, 5, True)),
        ("propagate", 4, "both", False),
        ("clear",),
        ("click", Click(4, 5, 5, True)),
        ("click", Click(4, 4, 14, True)),
        ("propagate", 4, "both", False),
    ]
    # Round 1: A on slices 1-7 plus F: 2*343/(553+385); round 2: A+B (+F): 2*518/(553+560).
    assert result.to_json_dict()["round_dice"] == pytest.approx([686 / 938, 1036 / 1113])
    assert [r.clicks for r in result.rounds] == [1, 2]


def test_shen2024_skips_small_centre_slices(case):
    result = run("shen2024-clicks", case)
    assert result.status == "skipped"
    assert result.reason == "centre slice 4 shows 74 <= 100 pixels of the object"
    assert result.to_json_dict()["dice"] is None
    salient = run("shen2024-mask:salient=true", case)
    assert salient.status == "skipped" and "256" in salient.reason


def test_shen2024_mask_on_centre_slice(case):
    volume, reference = case
    result = run("shen2024-mask:min_pixels=50", case)
    assert prompts(result, volume) == [("mask", 4), ("propagate", 4, "both", False)]
    mask_event = next(e for e in result.events if e["kind"] == "mask")
    from sam2vol.prompts import event_from_dict

    np.testing.assert_array_equal(event_from_dict(mask_event).to_array(), reference[:, :, 4])
    assert result.to_json_dict()["dice"] == pytest.approx(1036 / 1113)


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_replaying_the_log_reproduces_the_run(case, name):
    volume = case[0]
    spec = name if name.startswith(("he", "ma", "dong", "suggest")) else f"{name}:min_pixels=50"
    result = run(spec, case, seed=11)
    assert result.status == "ok"
    events = json.loads(json.dumps(result.to_json_dict()["events"]))  # through JSON
    session = replay(volume, events, ThresholdEngine(), axis=result.axis)
    np.testing.assert_array_equal(session.mask(1), result.mask)
    again = run(spec, case, seed=11)
    assert again.to_json_dict()["events"] == result.to_json_dict()["events"]


def test_absent_object_and_bad_specs(case):
    volume, reference = case
    result = create_protocol("dong2024").run(volume, np.zeros_like(reference), ThresholdEngine())
    assert (result.status, result.reason) == ("skipped", "the object is absent")
    with pytest.raises(InputError, match="--protocol must be one of"):
        create_protocol("nope")
    with pytest.raises(InputError, match="bad option"):
        create_protocol("ma2024:clicks=3")
    with pytest.raises(InputError, match="expected int"):
        create_protocol("shen2024-clicks:clicks=many")
    with pytest.raises(InputError, match="variant"):
        create_protocol("he2024:variant=median")
    assert create_protocol("he2024:variant=code,initial_clicks=none").spec == "he2024-code"
