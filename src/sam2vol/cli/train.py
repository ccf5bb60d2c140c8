"""``sam2vol train``: fine-tune SAM 2 on labelled volumes (SAM2-3dMed; extras sam2 + train)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    dataset: Annotated[
        str,
        typer.Option(
            help="KIND:PATH with KIND msd, brats, btcv, abdomenct1k, folder; or samples:[NAMES]."
        ),
    ],
    checkpoint: Annotated[
        str, typer.Option(help="SAM 2 / MedSAM2 weights to start from (random:CONFIG for tests).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder (best.pt, last.pt, log.csv, ...).")],
    config: Annotated[str | None, typer.Option(help="SAM 2 config name (else detected).")] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="Model input size (default: the checkpoint's, else 1024; MedSAM2 512)."),
    ] = None,
    clip_length: Annotated[
        int, typer.Option(help="Slices per clip (paper: 6 lung, 12 spleen and pancreas).")
    ] = 6,
    epochs: Annotated[int, typer.Option(help="Passes over the training cases.")] = 20,
    clips_per_case: Annotated[int, typer.Option(help="Clips per training case per epoch.")] = 8,
    batch_size: Annotated[int, typer.Option(help="Clips per optimiser step.")] = 1,
    lr: Annotated[float, typer.Option(help="Learning rate of the SAM 2 parts trained.")] = 1e-4,
    head_lr: Annotated[float, typer.Option(help="Learning rate of the SRPP and BD heads.")] = 1e-3,
    srpp: Annotated[
        bool, typer.Option("--srpp/--no-srpp", help="Slice relative position prediction head.")
    ] = True,
    bd: Annotated[bool, typer.Option("--bd/--no-bd", help="Boundary detection head.")] = True,
    train_memory_encoder: Annotated[
        bool,
        typer.Option(
            help="Fine-tune the memory encoder too (default: frozen; the paper names only "
            "memory attention and the mask decoder as trained)."
        ),
    ] = False,
    srpp_features: Annotated[
        str,
        typer.Option(
            help="SRPP input: memory (memory-conditioned features; default) or encoder (the "
            "frozen encoder's features, as summaries of the paper describe; then SRPP trains "
            "its own head only)."
        ),
    ] = "memory",
    bd_loss: Annotated[
        str,
        typer.Option(
            help="BD loss: normalised (class-balanced BCE divided by its weights, the scale of "
            "a BCE; default) or unnormalised (the earlier form, for ablations)."
        ),
    ] = "normalised",
    boundary_radius: Annotated[
        int, typer.Option(help="Boundary label band: 2 x this many input pixels.")
    ] = 2,
    val_fraction: Annotated[float, typer.Option(help="Share of cases held out.")] = 0.2,
    val_clips_per_case: Annotated[
        int, typer.Option(help="Fixed validation clips per held-out case.")
    ] = 4,
    seed: Annotated[int, typer.Option(help="Seed of the split, clips and heads.")] = 0,
    axis: Annotated[str, typer.Option(help="Slicing view: axial, coronal or sagittal.")] = "axial",
    intensity: Annotated[str, typer.Option(help="Intensity preset (see docs).")] = "auto",
    channel: Annotated[
        str | None, typer.Option(help="Channel of 4D images (MSD index; BraTS flair/t1/t1ce/t2).")
    ] = None,
    merge: Annotated[
        list[str] | None, typer.Option(help="Train label values as one object, e.g. 1+2.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    amp: Annotated[bool, typer.Option(help="Mixed precision (CUDA only).")] = True,
    feature_cache_gb: Annotated[
        float, typer.Option(help="Cache frozen encoder features across epochs (GB; 0: off).")
    ] = 0.0,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from last.pt.")] = False,
    progress: Annotated[
        bool | None, typer.Option(help="Progress bars (default: on a terminal).")
    ] = None,
) -> None:
    """Fine-tune SAM 2 after SAM2-3dMed: frozen image encoder, clips of slices, SRPP and BD.

    Writes OUT/split.json, OUT/last.pt (every epoch; --resume continues from it),
    OUT/best.pt (SAM 2 format: use it with --engine sam2 --checkpoint), OUT/log.csv
    and OUT/loss.png.
    """
    from sam2vol.errors import InputError

    try:
        from sam2vol.finetune.config import TrainConfig
        from sam2vol.finetune.trainer import Trainer
    except ImportError as exc:
        from sam2vol.engines.registry import SAM2_INSTALL

        raise InputError(
            f"sam2vol train cannot load ({exc}): {SAM2_INSTALL}; pip install 'sam2vol[train]'"
        ) from exc
    chosen_channel: int | str | None = channel
    if channel is not None and channel.isdigit():
        chosen_channel = int(channel)
    settings = TrainConfig(
        dataset=dataset,
        checkpoint=checkpoint,
        out=out,
        config=config,
        image_size=image_size,
        clip_length=clip_length,
        epochs=epochs,
        clips_per_case=clips_per_case,
        batch_size=batch_size,
        lr=lr,
        head_lr=head_lr,
        srpp=srpp,
        bd=bd,
        train_memory_encoder=train_memory_encoder,
        srpp_features=srpp_features,
        bd_loss=bd_loss,
        boundary_radius=boundary_radius,
        val_fraction=val_fraction,
        val_clips_per_case=val_clips_per_case,
        seed=seed,
        axis=axis,
        intensity=intensity,
        channel=chosen_channel,
        merge=tuple(merge or ()),
        device=device,
        amp=amp,
        feature_cache_gb=feature_cache_gb,
        limit=limit,
    )
    trainer = Trainer(
        settings, resume=resume, echo=lambda text: typer.echo(text, err=True), progress=progress
    )
    summary = trainer.run()
    typer.echo(
        f"{summary.best}: epoch {summary.best_epoch} of {summary.epochs} "
        f"({summary.steps} steps); use it with: sam2vol evaluate ... --engine sam2 "
        f"--checkpoint {summary.best}"
    )
