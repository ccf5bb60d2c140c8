"""Next slice to check, measured: Dice after 1, 3 and 5 corrected slices, three ways to choose them.

The ``suggest`` protocol on the bundled samples with the default engine: the
simulated user corrects only the slice the tool suggests (least confident),
He et al.'s oracle worst slice, or the slice nearest the centre of the
predicted extent. A run that runs out of slices keeps its last Dice. Writes
``docs/results/suggest_curve.png``; the last line is the headline figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2vol.io import read_label, read_volume
from sam2vol.protocols import create_protocol
from sam2vol.samples import SAMPLES, sample_path

OUT = Path(__file__).resolve().parents[1] / "docs" / "results" / "suggest_curve.png"
CORRECTIONS = 5


def curves() -> dict[str, np.ndarray]:
    out = {}
    for chooser in ("suggest", "oracle", "centre"):
        protocol = create_protocol(f"suggest:chooser={chooser},corrections={CORRECTIONS}")
        rows = []
        for name in SAMPLES:
            image = read_volume(sample_path(name))
            label = read_label(sample_path(name, "label"), like=image).data > 0
            dice = [r.dice for r in protocol.run(image, label, "default").rounds]
            rows.append(dice + [dice[-1]] * (CORRECTIONS + 1 - len(dice)))
            print(chooser, name, " ".join(f"{d:.3f}" for d in rows[-1]))
        out[chooser] = np.mean(rows, axis=0)
    return out


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = curves()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for chooser, y in means.items():
        ax.plot(range(CORRECTIONS + 1), y, marker="o", label=chooser)
    ax.set_xlabel("corrected slices after the start")
    ax.set_ylabel(f"mean Dice ({len(SAMPLES)} bundled objects)")
    ax.set_title("Which slice to correct next (default engine)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=120)
    for n in (1, 3, 5):
        print(f"after {n}: " + ", ".join(f"{c} {y[n]:.3f}" for c, y in means.items()))
    print(f"suggest_over_centre_dice_after_5={means['suggest'][5] / means['centre'][5]:.3f}")


if __name__ == "__main__":
    main()
