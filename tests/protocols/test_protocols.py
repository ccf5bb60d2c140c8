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


def test_shen2024_clicks_accumulate_then_one_propagation(case):
    # Video: the extent 1..7 widened by 5-9 slices each side, clipped to 0..9: centre 4
    # (74 px; the default skip needs > 100, see min_pixels). Click 1: the deepest FN is
    # A's centre (5, 5) (depth 4; B's is 3): the engine takes A. Click 2: only B is
    # missed: its centre (4, 14). Then slice 4 is perfect: 2 of the 5 clicks, no clear
    # (the clicks add up on the frame), one propagation.
    result = run("shen2024-clicks:min_pixels=50", case)
    assert prompts(result, case[0]) == [
        ("click", Click(4, 5, 5, True)),
        ("click", Click(4, 4, 14, True)),
        ("propagate", 4, "both", False),
    ]
    # A+B (+F) on slices 1-7: 2*518/(553+560), scored on the whole video (slices 0..9)
    assert result.to_json_dict()["round_dice"] == pytest.approx([1036 / 1113])
    assert [r.clicks for r in result.rounds] == [2]
    assert result.stopped_early == "no error region deeper than 1.42 pixels"


def test_shen2024_clicks_propagate_each_scores_every_click(case):
    result = run("shen2024-clicks:min_pixels=50,propagate=each", case)
    assert prompts(result, case[0]) == [
        ("click", Click(4, 5, 5, True)),
        ("propagate", 4, "both", False),
        ("click", Click(4, 4, 14, True)),
        ("propagate", 4, "both", False),
    ]
    # Round 1: A on slices 1-7 plus F: 2*343/(553+385); round 2: A+B (+F).
    assert result.to_json_dict()["round_dice"] == pytest.approx([686 / 938, 1036 / 1113])
    assert [r.clicks for r in result.rounds] == [1, 2]


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_replaying_the_log_reproduces_the_run(case, name):
    volume = case[0]
    spec = f"{name}:min_pixels=50" if name == "shen2024-clicks" else name
    result = run(spec, case, seed=11)
    assert result.status == "ok"
    events = json.loads(json.dumps(result.to_json_dict()["events"]))  # through JSON
    session = replay(volume, events, ThresholdEngine(), axis=result.axis)
    np.testing.assert_array_equal(session.mask(1), result.mask)
    again = run(spec, case, seed=11)
    assert again.to_json_dict()["events"] == result.to_json_dict()["events"]


def test_protocols_and_replays_never_encode_in_the_background(case):
    """A simulated user is never idle; background batches would make GPU runs unrepeatable."""
    volume = case[0]
    calls = []

    def recording():
        engine = ThresholdEngine()
        engine.start_background_encoding = lambda *args, **kwargs: calls.append(args)
        return engine

    result = create_protocol("he2024").run(volume, case[1], recording(), seed=0)
    replay(volume, result.to_json_dict()["events"], recording(), axis=result.axis)
    assert result.status == "ok" and calls == []


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
    for spec, message in (
        ("shen2024-clicks:propagate=sometimes", "propagate"),
        ("shen2024-mask:crop=wide", "crop"),
        ("ma2024:box_prompt=lasso", "box_prompt"),
        ("ma2024:box=sphere", "box"),
        ("dong2024:propagation=sideways", "propagation"),
        ("dong2024:slices=2", "slices"),
        ("he2024:quantize=uint16", "quantize"),
    ):
        with pytest.raises(InputError, match=message):
            create_protocol(spec)


def test_each_protocol_prepares_the_image_as_its_paper():
    ct = np.full((4, 4, 2), -1000.0)
    mr = np.zeros((4, 4, 2))
    expected = {
        "shen2024-mask": ("slice-minmax", "slice-minmax"),
        "shen2024-clicks": ("slice-minmax", "slice-minmax"),
        "he2024": ("ct-he2024", "auto"),
        "he2024-code": ("ct-he2024", "auto"),
        "ma2024": ("ct-abdomen", "mr-percentile"),
        "dong2024": ("auto", "auto"),
        "dong2024-3slices": ("auto", "auto"),
    }
    for name, (for_ct, for_mr) in expected.items():
        protocol = create_protocol(name)
        assert (protocol.intensity_for(ct), protocol.intensity_for(mr)) == (for_ct, for_mr)
    assert create_protocol("he2024:quantize=uint8").intensity_for(ct) == "ct-he2024+uint8"
    assert create_protocol("ma2024:intensity=ct-lung").intensity_for(ct) == "ct-lung"
    with pytest.raises(InputError, match="quantize"):
        create_protocol("ma2024:quantize=uint16").intensity_for(ct)
