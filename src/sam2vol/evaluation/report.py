"""Tables and figures from one or more runs, to compare with the papers.

For every (dataset, protocol, structure): the mean Dice with a 95% Student-t
confidence interval over objects, on all slices and with background-slice
removal (only slices where the reference has the object), the mean best Dice
over rounds, the median HD95 and the mean NSD. Written as Markdown and CSV,
with two PNG figures: mean Dice against the number of prompted slices (He et
al.'s figure) and mean per-slice Dice by position in the object's extent.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2vol.errors import InputError
from sam2vol.evaluation.results import ResultsFile
from sam2vol.evaluation.runner import CONFIG_NAME, RESULTS_NAME
from sam2vol.evaluation.stats import MeanCI, mean_ci, median, pooled_slice_iou

ALL = "all structures"
CSV_COLUMNS = (
    "dataset",
    "protocol",
    "structure",
    "n",
    "dice_all_mean",
    "dice_all_ci_low",
    "dice_all_ci_high",
    "dice_fg_mean",
    "dice_fg_ci_low",
    "dice_fg_ci_high",
    "best_dice_mean",
    "hd95_mm_median",
    "nsd_mean",
    "skipped",
    "errors",
    "nsd_paper_mean",
    "nsd_paper_tolerance",
    "slice_iou_pooled",
    "protocol_version",
    "dice_scope_mean",
    "eval_slices",
)


@dataclass
class Row:
    """One line of the table."""

    dataset: str
    protocol: str
    structure: str
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    errors: int = 0

    @property
    def dice(self) -> MeanCI:
        """Dice in each protocol's own slice scope (its headline)."""
        return mean_ci([r.get("dice") for r in self.records])

    @property
    def scopes(self) -> str:
        return ",".join(sorted({str(r.get("eval_slices", "?")) for r in self.records}))

    @property
    def dice_all(self) -> MeanCI:
        return mean_ci([r.get("dice_all") for r in self.records])

    @property
    def dice_fg(self) -> MeanCI:
        return mean_ci([r.get("dice_foreground") for r in self.records])

    @property
    def best_dice(self) -> MeanCI:
        return mean_ci([r.get("best_dice") for r in self.records])

    @property
    def hd95_median(self) -> float:
        return median([r.get("hd95_mm") for r in self.records])

    @property
    def nsd(self) -> MeanCI:
        return mean_ci([r.get("nsd") for r in self.records])

    @property
    def nsd_paper(self) -> tuple[MeanCI, str]:
        """The paper's own NSD and its tolerance (``""`` when the protocol has none)."""
        papers = [r.get("nsd_paper") for r in self.records if r.get("nsd_paper")]
        if not papers:
            return mean_ci([]), ""
        tolerances = sorted({f"{p['tolerance']:g} {p['units']}" for p in papers})
        return mean_ci([p.get("nsd") for p in papers]), ", ".join(tolerances)

    @property
    def slice_iou(self) -> MeanCI:
        """Dong et al.'s 2D IoU over object slices, pooled across volumes."""
        return pooled_slice_iou(self.records)

    @property
    def versions(self) -> str:
        """The protocol versions of the records (``?`` for lines written before versions)."""
        return ",".join(sorted({str(r.get("protocol_version", "?")) for r in self.records}))


@dataclass
class Report:
    """What :func:`make_report` wrote."""

    rows: list[Row]
    markdown: Path
    csv: Path
    figures: list[Path]


def dataset_label(spec: str) -> str:
    """``msd:/data/Task09_Spleen`` -> ``msd:Task09_Spleen``."""
    kind, _, path = spec.partition(":")
    return f"{kind}:{Path(path).name}" if path and kind != "samples" else spec.rstrip(":")


def load_records(paths: list[Path]) -> list[dict[str, Any]]:
    """Records of runs: each path a run folder (with results.jsonl) or a results file."""
    records = []
    for path in paths:
        path = Path(path)
        file = path / RESULTS_NAME if path.is_dir() else path
        if not file.is_file():
            raise InputError(f"{path}: no {RESULTS_NAME} here; give a run folder from evaluate")
        config = {}
        if (file.parent / CONFIG_NAME).is_file():
            config = json.loads((file.parent / CONFIG_NAME).read_text())
        for record in ResultsFile(file).read():
            record.setdefault("dataset", config.get("dataset", "?"))
            record.setdefault("protocol", config.get("protocol", "?"))
            records.append(record)
    if not records:
        raise InputError(f"no result lines in {', '.join(map(str, paths))}")
    return records


def build_rows(records: list[dict[str, Any]], *, per_structure: bool = True) -> list[Row]:
    """Rows per (dataset, protocol, structure), plus an "all structures" row per protocol.

    The "all structures" row is shown when there are several structures, or
    alone with ``per_structure=False``.
    """
    rows: dict[tuple[str, str, str], Row] = {}
    for record in records:
        dataset, protocol = dataset_label(record["dataset"]), record["protocol"]
        structure = record.get("object", "?")
        targets = [(dataset, protocol, structure), (dataset, protocol, ALL)]
        for key in targets:
            row = rows.setdefault(key, Row(*key))
            status = record.get("status")
            if status == "ok":
                row.records.append(record)
            elif status == "skipped":
                row.skipped += 1
            else:
                row.errors += 1
    structures: dict[tuple[str, str], int] = {}
    for dataset, protocol, structure in rows:
        if structure != ALL:
            structures[(dataset, protocol)] = structures.get((dataset, protocol), 0) + 1
    kept = [
        row
        for key, row in rows.items()
        if (key[2] == ALL and (not per_structure or structures.get(key[:2], 0) > 1))
        or (key[2] != ALL and per_structure)
    ]
    return sorted(kept, key=lambda r: (r.dataset, r.protocol, r.structure == ALL, r.structure))


def markdown_table(rows: list[Row]) -> str:
    """The table as Markdown."""
    head = (
        "| Dataset | Protocol | Structure | n | Dice, protocol's scope | Dice, all slices | "
        "Dice, background slices "
        "removed | Best Dice over rounds | HD95 mm (median) | NSD 2 mm | NSD, paper's "
        "tolerance | 2D IoU, object slices pooled | skipped |"
    )
    lines = [head, "|" + "---|" * 13]
    for row in rows:
        hd95 = "-" if row.hd95_median != row.hd95_median else f"{row.hd95_median:.1f}"
        paper, tolerance = row.nsd_paper
        paper_text = f"{paper.mean:.3f} ({tolerance})" if tolerance and paper.n else "-"
        iou = row.slice_iou
        iou_text = f"{iou.mean:.3f} ({iou.n} slices)" if iou.n else "-"
        lines.append(
            f"| {row.dataset} | {row.protocol} | {row.structure} | {len(row.records)} | "
            f"{row.dice.format()} ({row.scopes}) | "
            f"{row.dice_all.format()} | {row.dice_fg.format()} | {row.best_dice.format()} | "
            f"{hd95} | {row.nsd.format()} | {paper_text} | {iou_text} | "
            f"{row.skipped + row.errors} |"
        )
    return "\n".join(lines) + "\n"


def _csv_values(row: Row) -> list[Any]:
    def r(x: float) -> str:
        return "" if x != x else f"{x:.6f}"

    a, f = row.dice_all, row.dice_fg
    return [
        row.dataset,
        row.protocol,
        row.structure,
        len(row.records),
        r(a.mean),
        r(a.low),
        r(a.high),
        r(f.mean),
        r(f.low),
        r(f.high),
        r(row.best_dice.mean),
        r(row.hd95_median),
        r(row.nsd.mean),
        row.skipped,
        row.errors,
        r(row.nsd_paper[0].mean),
        row.nsd_paper[1],
        r(row.slice_iou.mean),
        row.versions,
        r(row.dice.mean),
        row.scopes,
    ]


def _series(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Plot lines: one per protocol (per structure when a single protocol is shown)."""
    # the shen2024-clicks:clicks=N runs are points of the Dice-per-click figure
    ok = [r for r in records if r.get("status") == "ok" and "clicks=" not in r["protocol"]]
    protocols = sorted({r["protocol"] for r in ok})
    datasets = sorted({dataset_label(r["dataset"]) for r in ok})
    out: dict[str, list[dict[str, Any]]] = {}
    for r in ok:
        parts = [] if len(datasets) == 1 else [dataset_label(r["dataset"])]
        parts.append(r["protocol"] if len(protocols) > 1 else r.get("object", "?"))
        out.setdefault(" ".join(parts), []).append(r)
    return dict(sorted(out.items()))


def click_series(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """``(clicks, Dice)`` points of the ``shen2024-clicks`` runs, one line per dataset and options.

    Runs that differ only in ``clicks=N`` form one line (``make results`` runs
    N = 1..5 for the exact curve); a ``propagate=each`` run gives a point per round.
    """
    out: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if r.get("status") != "ok" or not str(r.get("protocol", "")).startswith("shen2024-clicks"):
            continue
        name, _, options = r["protocol"].partition(":")
        kept = [o for o in options.split(",") if o and not o.startswith("clicks=")]
        label = f"{dataset_label(r['dataset'])} {name}" + (":" + ",".join(kept) if kept else "")
        pairs = list(zip(r.get("round_clicks") or [], r.get("round_dice") or [], strict=False))
        each = "propagate=each" in options
        out.setdefault(label, []).extend(
            (int(c), float(d)) for c, d in (pairs if each else pairs[-1:])
        )
    return dict(sorted(out.items()))


def make_report(
    runs: list[Path],
    out: Path,
    *,
    title: str = "sam2vol evaluation",
    per_structure: bool = True,
) -> Report:
    """Write ``report.md``, ``dice_table.csv`` and the PNG figures into ``out``.

    Args:
        runs: Run folders (or results files).
        out: Output folder.
        title: Heading of ``report.md``.
        per_structure: One row per structure (and a pooled one); else pooled rows only.
    """
    from sam2vol.evaluation import plots

    records = load_records(runs)
    rows = build_rows(records, per_structure=per_structure)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "dice_table.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(_csv_values(row) for row in rows)
    figures = []
    series = _series(records)
    if series:
        figures.append(plots.dice_vs_prompted_slices(series, out / "dice_vs_prompted_slices.png"))
        figures.append(plots.dice_by_slice_position(series, out / "dice_by_slice_position.png"))
    clicks = click_series(records)
    if clicks:
        figures.append(plots.dice_vs_clicks(clicks, out / "dice_vs_clicks.png"))
    engines = sorted({str(r.get("engine")) for r in records})
    versions = sorted({str(r.get("protocol_version", "?")) for r in records})
    text = [
        f"# {title}",
        "",
        f"Engine(s): {', '.join(engines)}. Protocol version(s): {', '.join(versions)}. "
        f"Runs: {', '.join(str(p) for p in runs)}.",
        "",
        markdown_table(rows),
        "Dice values are means over objects with a 95% Student-t confidence interval "
        "(mean ± t(0.975, n-1)·s/√n, clipped to [0, 1]; none for n = 1). *Protocol's "
        "scope*: the slices the paper scored (`video`: Shen et al.'s video range; "
        "`foreground`: slices showing the object; `all`). "
        "*Background slices removed*: only "
        "slices where the reference shows the object are scored. *Best Dice over rounds*: "
        "the best volume Dice after any round, in the protocol's own slice scope. HD95 and "
        "NSD (2 mm tolerance) in the protocol's slice scope. *NSD, paper's tolerance*: the "
        "paper's own NSD (Shen et al.: 1 voxel, unit spacing) in the same scope. *2D IoU, "
        "object slices pooled*: Dong et al.'s figure, the mean 2D IoU over every slice that "
        "shows the object, pooled across volumes. *skipped*: objects the "
        "protocol's rules exclude or that failed. Figures: 95% bands are drawn for up to "
        f"{plots.MAX_BANDS} lines a panel; protocols with one round are points with 95% "
        "error bars; n (objects, or slices per bin) is written at each point; runs that "
        "stopped early are left out of later rounds (n drops), and a dotted line shows "
        "the mean with their last Dice carried forward, as He et al.'s plotting code does.",
        "",
    ]
    for figure in figures:
        text += [f"![{figure.stem}]({figure.name})", ""]
    md_path = out / "report.md"
    md_path.write_text("\n".join(text), encoding="utf-8")
    return Report(rows, md_path, csv_path, figures)
