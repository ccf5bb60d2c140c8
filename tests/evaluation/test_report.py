"""Report statistics and tables on hand-made result lines."""

from __future__ import annotations

import math

import pytest

from sam2vol import InputError
from sam2vol.evaluation import ResultsFile, make_report
from sam2vol.evaluation.report import ALL, build_rows, markdown_table
from sam2vol.evaluation.stats import (
    dice_at_prompted_slices,
    dice_at_round,
    mean_ci,
    pooled_slice_iou,
    relative_positions,
)


def record(key, dice, *, protocol="he2024", status="ok", rounds=(1, 2), round_dice=(0.5, 0.7)):
    return {
        "key": key,
        "case": key.split("/")[0],
        "object": key.split("/")[1],
        "dataset": "msd:/data/Task09_Spleen",
        "protocol": protocol,
        "engine": "default",
        "status": status,
        "dice": dice,
        "dice_all": dice,
        "dice_foreground": dice + 0.1,
        "best_dice": dice,
        "hd95_mm": "inf" if dice == 0 else 4.0,
        "nsd": dice,
        "round_prompted_slices": list(rounds),
        "round_dice_by_scope": {"all": list(round_dice), "foreground": list(round_dice)},
        "extent": [10, 14],
        "slice_dice": [[10, 0.2, 5], [12, 0.8, 9], [14, 0.4, 3]],
    }


def test_t_interval():
    # mean 0.9, s = 0.1, t(0.975, 2) = 4.303 -> 0.9 ± 0.2484
    r = mean_ci([0.8, 0.9, 1.0], bounds=None)
    assert (r.mean, r.low, r.high, r.n) == pytest.approx((0.9, 0.6516, 1.1484, 3), abs=1e-4)
    assert mean_ci([0.8, 0.9, 1.0]).format() == "0.900 [0.652, 1.000]"
    assert mean_ci([0.5]).format() == "0.500" and mean_ci([]).format() == "-"
    assert mean_ci([None, float("nan"), 0.5]).n == 1


def test_dice_at_prompted_slices_carries_the_last_round():
    r = record("a/x", 0.7, rounds=(2, 3, 4), round_dice=(0.4, 0.6, 0.65))
    values = [dice_at_prompted_slices(r, n, "all") for n in range(1, 7)]
    assert math.isnan(values[0])  # the first round already prompted 2 slices
    assert values[1:] == [0.4, 0.6, 0.65, 0.65, 0.65]
    # extent 10..14: slices 10, 12, 14 sit at 0, 0.5 and 1
    assert relative_positions(r) == [(0.0, 0.2), (0.5, 0.8), (1.0, 0.4)]


def test_rows_per_structure_and_pooled():
    records = [
        record("c1/spleen", 0.8),
        record("c2/spleen", 0.6),
        record("c1/liver", 0.9),
        record("c2/liver", 0.0, status="skipped"),
        record("c1/spleen", 0.5, protocol="dong2024"),
    ]
    rows = build_rows(records)
    assert [(r.protocol, r.structure, len(r.records), r.skipped) for r in rows] == [
        ("dong2024", "spleen", 1, 0),
        ("he2024", "liver", 1, 1),
        ("he2024", "spleen", 2, 0),
        ("he2024", ALL, 3, 1),
    ]
    table = markdown_table(rows)
    assert "| msd:Task09_Spleen | he2024 | spleen | 2 | 0.700 [0.000, 1.000] (?) | 0.700" in table
    pooled = build_rows(records, per_structure=False)
    assert [(r.protocol, r.structure) for r in pooled] == [("dong2024", ALL), ("he2024", ALL)]


def test_make_report_writes_tables_and_figures(tmp_path):
    results = ResultsFile(tmp_path / "results.jsonl")
    for n, dice in enumerate((0.8, 0.6, 0.7)):
        results.append(record(f"c{n}/spleen", dice))
    report = make_report([results.path], tmp_path / "rep")
    assert report.csv.read_text().splitlines()[1].startswith("msd:Task09_Spleen,he2024,spleen,3,")
    assert "![dice_vs_prompted_slices](dice_vs_prompted_slices.png)" in report.markdown.read_text()
    assert all(p.stat().st_size > 1000 for p in report.figures)
    with pytest.raises(InputError, match=r"no results\.jsonl"):
        make_report([tmp_path / "nothing"], tmp_path / "rep2")


def test_dice_at_round_is_nan_after_a_run_stopped():
    r = record("a/x", 0.7, rounds=(1, 2), round_dice=(0.4, 0.6))
    values = [dice_at_round(r, n, "all") for n in range(1, 4)]
    assert values[:2] == [0.4, 0.6] and math.isnan(values[2])


def test_pooled_slice_iou_and_paper_nsd_columns():
    a = record("c1/spleen", 0.8)
    b = {**record("c2/spleen", 0.6), "slice_dice": [[3, 1.0, 4]]}
    for r, nsd in ((a, 0.5), (b, 0.7)):
        r.update(protocol_version=2, nsd_paper={"tolerance": 1.0, "units": "voxel", "nsd": nsd})
    # IoU = d / (2 - d): 0.2/1.8, 0.8/1.2, 0.4/1.6 and 1.0, pooled over the 4 slices
    expected = (0.2 / 1.8 + 0.8 / 1.2 + 0.4 / 1.6 + 1.0) / 4
    assert pooled_slice_iou([a, b]).mean == pytest.approx(expected)
    (row,) = build_rows([a, b])
    assert row.nsd_paper[0].mean == pytest.approx(0.6) and row.nsd_paper[1] == "1 voxel"
    assert row.versions == "2"
    assert f"| 0.600 (1 voxel) | {expected:.3f} (4 slices) |" in markdown_table([row])


def test_report_names_versions_and_draws_dice_vs_clicks(tmp_path):
    results = ResultsFile(tmp_path / "results.jsonl")
    for n, dice in enumerate((0.8, 0.6)):
        r = record(f"c{n}/spleen", dice, protocol="shen2024-clicks", round_dice=(0.5, dice))
        r.update(protocol_version=2, round_clicks=[1, 2], round_dice=[0.5, dice])
        results.append(r)
    report = make_report([results.path], tmp_path / "rep")
    text = report.markdown.read_text()
    assert "Protocol version(s): 2." in text
    assert "![dice_vs_clicks](dice_vs_clicks.png)" in text
    assert report.csv.read_text().splitlines()[1].endswith(",2,0.700000,?")


def test_click_series_groups_exact_runs_by_clicks():
    from sam2vol.evaluation.report import click_series

    def shen(key, protocol, clicks, dice):
        r = record(key, dice[-1], protocol=protocol)
        r.update(round_clicks=clicks, round_dice=dice)
        return r

    records = [
        shen("c1/x", "shen2024-clicks:clicks=1", [1], [0.5]),
        shen("c1/x", "shen2024-clicks", [3], [0.7]),  # 5 asked, stopped after 3
        shen("c2/x", "shen2024-clicks", [5], [0.9]),
        shen("c1/x", "shen2024-clicks:propagate=each", [1, 2], [0.4, 0.6]),
        record("c1/x", 0.8, protocol="he2024"),
    ]
    assert click_series(records) == {
        "msd:Task09_Spleen shen2024-clicks": [(1, 0.5), (3, 0.7), (5, 0.9)],
        "msd:Task09_Spleen shen2024-clicks:propagate=each": [(1, 0.4), (2, 0.6)],
    }
