"""The settings of a fine-tuning run (no torch needed)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from sam2vol.errors import InputError

CLIP_LENGTHS = (3, 6, 12)  # the paper's choices; others are allowed (>= 2)

# Settings that must not change when a run resumes (the rest may, e.g. epochs).
# The checkpoint path may change (the same weights moved), its config may not.
# Settings a resumed run may change; every other one must equal the saved run's (a rate, a
# weight or a radius changed half-way would be ignored or mixed, and last.pt would record
# values that were never used).
CHANGEABLE_ON_RESUME = ("out", "epochs", "device", "feature_cache_gb")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved in every checkpoint.

    Attributes:
        dataset: Dataset spec (``msd:PATH``, ``folder:PATH``, ``samples:``...).
        checkpoint: SAM 2 weights file, or ``random:CONFIG`` (tests only).
        out: Output folder.
        config: SAM 2 config name; default detected from the checkpoint.
        image_size: Model input size; default the size the checkpoint records
            (a ``sam2vol train`` output), else 512 for MedSAM2 files, else 1024.
        clip_length: Slices per clip (the paper: 6 lung, 12 spleen/pancreas).
        epochs: Passes over the training cases.
        clips_per_case: Clips drawn from each training case per epoch.
        batch_size: Clips per optimiser step (all from the same case).
        lr: Learning rate of the SAM 2 parts being trained.
        head_lr: Learning rate of the SRPP and BD heads.
        weight_decay: AdamW weight decay.
        warmup_fraction: Share of the steps with a linear warm-up, then cosine decay.
        grad_clip: Gradient norm clip (0: none).
        srpp: Train with the SRPP head.
        bd: Train with the BD head.
        srpp_weight: Weight of the SRPP loss.
        bd_weight: Weight of the BD loss.
        boundary_radius: Radius r in input pixels of the square structuring element
            of the morphological gradient giving the boundary labels (band 2r wide).
        train_memory_encoder: Fine-tune the memory encoder too (paper: frozen).
        reverse_prob: Chance that a clip is tracked towards lower slice indices.
        val_fraction: Share of the cases held out (by case, seeded).
        val_clips_per_case: Fixed validation clips per held-out case.
        seed: Seed of the split, the clip sampling and the heads' initialisation.
        axis: Slicing view.
        intensity: Intensity preset (see :mod:`sam2vol.intensity`).
        channel: Channel of 4D images.
        merge: Label values trained as one object (``"1+2"``).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        amp: Mixed precision (CUDA only; bfloat16 where supported, else float16).
        feature_cache_gb: Memory for caching frozen image-encoder features across
            epochs (0: encode every step).
        limit: Use only the first N cases of the dataset.
    """

    dataset: str
    checkpoint: str
    out: Path
    config: str | None = None
    image_size: int | None = None
    clip_length: int = 6
    epochs: int = 20
    clips_per_case: int = 8
    batch_size: int = 1
    lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    srpp: bool = True
    bd: bool = True
    srpp_weight: float = 0.01
    bd_weight: float = 0.1
    boundary_radius: int = 2
    bd_loss: str = "normalised"
    srpp_features: str = "memory"
    train_memory_encoder: bool = False
    reverse_prob: float = 0.5
    val_fraction: float = 0.2
    val_clips_per_case: int = 4
    seed: int = 0
    axis: str = "axial"
    intensity: str = "auto"
    channel: int | str | None = None
    merge: tuple[str, ...] = ()
    device: str = "auto"
    amp: bool = True
    feature_cache_gb: float = 0.0
    limit: int | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.merge = tuple(self.merge)

    def validate(self) -> None:
        """Check the settings a user gives.

        Raises:
            InputError: A setting is out of range.
        """
        checks = [
            (self.clip_length >= 2, f"--clip-length must be >= 2, got {self.clip_length}"),
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.clips_per_case >= 1, f"--clips-per-case must be >= 1, got {self.clips_per_case}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lr > 0 and self.head_lr > 0, "learning rates must be > 0"),
            (0 <= self.warmup_fraction < 1, "--warmup-fraction must be in [0, 1)"),
            (
                0 <= self.val_fraction < 1,
                f"--val-fraction must be in [0, 1), got {self.val_fraction}",
            ),
            (self.val_clips_per_case >= 1, "--val-clips-per-case must be >= 1"),
            (0 <= self.reverse_prob <= 1, "--reverse-prob must be in [0, 1]"),
            (self.boundary_radius >= 1, "--boundary-radius must be >= 1"),
            (self.srpp_weight >= 0 and self.bd_weight >= 0, "loss weights must be >= 0"),
            (self.feature_cache_gb >= 0, "--feature-cache-gb must be >= 0"),
            (
                self.bd_loss in ("normalised", "unnormalised"),
                f"--bd-loss must be normalised or unnormalised, got {self.bd_loss!r}",
            ),
            (
                self.srpp_features in ("memory", "encoder"),
                f"--srpp-features must be memory or encoder, got {self.srpp_features!r}",
            ),
            (self.limit is None or self.limit >= 1, "--limit must be >= 1"),
        ]
        if self.image_size is not None:
            ok = self.image_size >= 64 and self.image_size % 32 == 0
            checks.append((ok, f"--image-size must be a multiple of 32, >= 64: {self.image_size}"))
        for ok, message in checks:
            if not ok:
                raise InputError(message)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (for checkpoints and ``train.json``)."""
        data = asdict(self)
        data["out"] = str(self.out)
        data["merge"] = list(self.merge)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["merge"] = tuple(values.get("merge", ()))
        return cls(**values)

    def resume_conflicts(self, saved: TrainConfig) -> list[str]:
        """Settings that differ from the run being resumed (and must not)."""
        return [
            f"--{f.name.replace('_', '-')} {getattr(saved, f.name)!r} -> {getattr(self, f.name)!r}"
            for f in fields(self)
            if f.name not in CHANGEABLE_ON_RESUME
            and getattr(saved, f.name) != getattr(self, f.name)
        ]
