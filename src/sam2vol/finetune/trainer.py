"""The training loop: epochs of clips, validation, checkpoints, resume, loss log and plot.

Files in the output folder:

| file        | what                                                                  |
|-------------|-----------------------------------------------------------------------|
| split.json  | the train/validation split by case                                    |
| last.pt     | everything to resume (written after every epoch, atomically)          |
| best.pt     | the SAM 2 weights of the best epoch, in the official format          |
| log.csv     | one row per training step and per validation                          |
| loss.png    | the losses over the steps and the validation Dice per epoch           |

``best.pt`` is ``{"model": state_dict}`` with SAM 2's own key names, plus
``config`` (e.g. ``sam2.1_hiera_t``), ``image_size`` and ``finetune`` (how it
was trained); the SRPP and BD heads are not in it. ``last.pt`` holds only the
weights being trained (the frozen ones are those of ``--checkpoint``, which a
resumed run loads again), the heads, the optimiser, the scheduler, the random
states, the progress and the split.
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2vol.datasets import open_dataset
from sam2vol.engines.sam2.checkpoints import resolve_source
from sam2vol.engines.sam2.device import pick_device
from sam2vol.errors import InputError
from sam2vol.finetune.clips import CaseSlices, ClipData, load_case, sample_clips
from sam2vol.finetune.config import TrainConfig
from sam2vol.finetune.model import ClipModel, build_sam2, dice_scores
from sam2vol.finetune.split import SPLIT_FILE, Split, load_or_make_split, write_split

FORMAT = "sam2vol-finetune/1"
LAST, BEST, LOG, PLOT = "last.pt", "best.pt", "log.csv", "loss.png"
CASE_CACHE_BYTES = 2 << 30


@dataclass
class TrainState:
    """Progress of a run.

    Attributes:
        epoch: Epochs completed.
        step: Optimiser steps taken.
        best_metric: Best validation Dice so far (minus the mean training loss
            when there is no validation case).
        best_epoch: The epoch it was reached (0: none yet).
    """

    epoch: int = 0
    step: int = 0
    best_metric: float = -math.inf
    best_epoch: int = 0


@dataclass
class LogRow:
    """One row of ``log.csv`` (empty strings where a value does not apply)."""

    epoch: int
    step: int
    phase: str  # "train" or "val"
    loss: float
    seg: float | str = ""
    srpp: float | str = ""
    bd: float | str = ""
    dice: float | str = ""
    lr: float | str = ""
    seconds: float | str = ""


LOG_FIELDS = [f.name for f in fields(LogRow)]


@dataclass
class TrainSummary:
    """What a run did.

    Attributes:
        out: The output folder.
        epochs: Epochs completed in total.
        steps: Optimiser steps in total.
        best_epoch: Epoch of ``best.pt``.
        best_metric: Its validation Dice (or minus its training loss).
        best: Path of ``best.pt``.
    """

    out: Path
    epochs: int
    steps: int
    best_epoch: int
    best_metric: float
    best: Path


class _CaseCache:
    """Recently loaded cases, within a byte budget."""

    def __init__(self, load: Callable[[str], CaseSlices], budget: int = CASE_CACHE_BYTES) -> None:
        self.load = load
        self.budget = budget
        self._cases: OrderedDict[str, CaseSlices] = OrderedDict()

    def __call__(self, case_id: str) -> CaseSlices:
        case = self._cases.pop(case_id, None) or self.load(case_id)
        self._cases[case_id] = case
        while len(self._cases) > 1 and self._bytes() > self.budget:
            self._cases.popitem(last=False)
        return case

    def _bytes(self) -> int:
        return sum(
            c.image.nbytes + sum(m.nbytes for m in c.masks.values()) for c in self._cases.values()
        )


def _save_atomic(data: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


def _lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 1% of the peak."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))


class Trainer:
    """One fine-tuning run.

    Args:
        config: The settings.
        resume: Continue the run in ``config.out`` from its ``last.pt``.
        echo: Where one-line messages go.
        progress: Show progress bars (default: when stderr is a terminal).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        echo: Callable[[str], None] | None = None,
        progress: bool | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.echo = echo or (lambda text: print(text, file=sys.stderr))
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.out = Path(config.out)
        last = self.out / LAST
        if resume and not last.is_file():
            raise InputError(f"--resume: no {LAST} in {self.out}")
        if not resume and last.is_file():
            raise InputError(f"{self.out} holds a run ({LAST}); add --resume or pick another --out")
        self.device = pick_device(config.device)
        self.dataset = open_dataset(config.dataset, channel=config.channel, merge=config.merge)
        case_ids = self.dataset.case_ids()[: config.limit]
        source = resolve_source(config.checkpoint, config.config, config.seed)
        config.config = source.config
        if config.image_size is None:
            config.image_size = source.default_image_size
        saved = torch.load(last, map_location="cpu", weights_only=True) if resume else None
        if saved is not None:
            conflicts = config.resume_conflicts(TrainConfig.from_dict(saved["train_config"]))
            if conflicts:
                raise InputError(f"--resume with other settings: {'; '.join(conflicts)}")
            self.split = Split.from_dict(saved["split"])
            if not (self.out / SPLIT_FILE).is_file():
                write_split(self.split, self.out)
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            self.split = load_or_make_split(
                self.out, case_ids, config.val_fraction, config.seed, config.dataset
            )

        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        sam = build_sam2(source, config.image_size, self.device)
        self.model = ClipModel(
            sam,
            srpp=config.srpp,
            bd=config.bd,
            train_memory_encoder=config.train_memory_encoder,
            seed=config.seed,
            feature_cache_bytes=int(config.feature_cache_gb * (1 << 30)),
            srpp_features=config.srpp_features,
        )
        self.optimizer = torch.optim.AdamW(
            [
                {"params": self.model.sam_parameters(), "lr": config.lr},
                {"params": self.model.head_parameters(), "lr": config.head_lr},
            ],
            weight_decay=config.weight_decay,
        )
        self.steps_per_epoch = len(self.split.train) * math.ceil(
            config.clips_per_case / config.batch_size
        )
        total = config.epochs * self.steps_per_epoch
        warmup = int(config.warmup_fraction * total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _lr_factor(step, total, warmup)
        )
        self.autocast_dtype: torch.dtype | None = None
        self.scaler: torch.amp.GradScaler | None = None
        if self.device.type == "cuda" and config.amp:
            if torch.cuda.is_bf16_supported():
                self.autocast_dtype = torch.bfloat16
            else:
                self.autocast_dtype = torch.float16
                self.scaler = torch.amp.GradScaler("cuda")
        self.state = TrainState()
        self.cases = _CaseCache(self._load_case)
        if saved is not None:
            self._restore(saved)
        self._rewrite_log()

    # ----- data -----------------------------------------------------------------------------
    def _load_case(self, case_id: str) -> CaseSlices:
        return load_case(
            self.dataset, case_id, axis=self.config.axis, intensity=self.config.intensity
        )

    def _train_batches(self) -> Iterator[list[ClipData]]:
        """This epoch's batches: the training cases in a random order, clips of each case."""
        config = self.config
        for k in self.rng.permutation(len(self.split.train)):
            case = self.cases(self.split.train[int(k)])
            clips = sample_clips(
                case, config.clips_per_case, config.clip_length, self.rng,
                reverse_prob=config.reverse_prob,
            )  # fmt: skip
            for start in range(0, len(clips), config.batch_size):
                yield [ClipData.of(case, clip) for clip in clips[start : start + config.batch_size]]

    def _val_clips(self) -> list[ClipData]:
        """The fixed validation clips (the same for every epoch and on resume)."""
        config = self.config
        rng = np.random.default_rng([config.seed, 1])
        out = []
        for case_id in self.split.val:
            case = self._load_case(case_id)
            clips = sample_clips(
                case, config.val_clips_per_case, config.clip_length, rng,
                reverse_prob=config.reverse_prob,
            )  # fmt: skip
            out += [ClipData.of(case, clip).compact() for clip in clips]
        return out

    # ----- steps ----------------------------------------------------------------------------
    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _losses(self, clips: list[ClipData]) -> tuple[Any, Any, Any]:
        config = self.config
        with self._autocast():
            inputs = self.model.prepare(clips)
            output = self.model(inputs)
        terms = self.model.losses(
            output,
            inputs,
            srpp_weight=config.srpp_weight,
            bd_weight=config.bd_weight,
            boundary_radius=config.boundary_radius,
            bd_loss=config.bd_loss,
        )
        return terms, output, inputs

    def train_step(self, clips: list[ClipData]) -> LogRow:
        """One optimiser step on a batch of clips."""
        start = time.perf_counter()
        self.model.train()
        terms, _, _ = self._losses(clips)
        self.optimizer.zero_grad(set_to_none=True)
        params = self.model.sam_parameters() + self.model.head_parameters()
        if self.scaler is not None:
            self.scaler.scale(terms.total).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            terms.total.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        self.state.step += 1
        return LogRow(
            epoch=self.state.epoch + 1,
            step=self.state.step,
            phase="train",
            loss=terms.total.item(),
            seg=terms.seg.item(),
            srpp="" if terms.srpp is None else terms.srpp.item(),
            bd="" if terms.bd is None else terms.bd.item(),
            lr=lr,
            seconds=round(time.perf_counter() - start, 4),
        )

    @torch.no_grad()
    def validate(self, clips: list[ClipData]) -> LogRow | None:
        """Mean losses and Dice over the validation clips (None without any)."""
        if not clips:
            return None
        start = time.perf_counter()
        self.model.eval()
        sums: dict[str, float] = {"loss": 0.0, "seg": 0.0, "srpp": 0.0, "bd": 0.0, "dice": 0.0}
        for data in clips:
            terms, output, inputs = self._losses([data])
            sums["loss"] += float(terms.total)
            sums["seg"] += float(terms.seg)
            sums["srpp"] += 0.0 if terms.srpp is None else float(terms.srpp)
            sums["bd"] += 0.0 if terms.bd is None else float(terms.bd)
            sums["dice"] += float(dice_scores(output, inputs.target).mean())
        n = len(clips)
        return LogRow(
            epoch=self.state.epoch + 1,
            step=self.state.step,
            phase="val",
            loss=sums["loss"] / n,
            seg=sums["seg"] / n,
            srpp=sums["srpp"] / n if self.config.srpp else "",
            bd=sums["bd"] / n if self.config.bd else "",
            dice=sums["dice"] / n,
            seconds=round(time.perf_counter() - start, 4),
        )

    # ----- the run --------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        """Train the remaining epochs; returns where the best weights are."""
        config = self.config
        val_clips = self._val_clips()
        if self.split.val and not val_clips:
            self.echo("warning: no validation case has room for a clip; best.pt by training loss")
        self.echo(
            f"training {config.config} at {config.image_size} px on {self.device}: "
            f"{len(self.split.train)} training / {len(self.split.val)} validation cases, "
            f"clips of {config.clip_length}, {self.steps_per_epoch} steps per epoch"
            + ("" if config.srpp else ", no SRPP")
            + ("" if config.bd else ", no BD")
        )
        for epoch in range(self.state.epoch + 1, config.epochs + 1):
            rows = self._train_epoch(epoch)
            if not rows:
                raise InputError(
                    f"no training case has an object and {config.clip_length} slices for a clip"
                )
            val = self.validate(val_clips)
            mean_loss = float(np.mean([r.loss for r in rows]))
            metric = float(val.dice) if val is not None else -mean_loss  # type: ignore[arg-type]
            self.state.epoch = epoch
            improved = metric > self.state.best_metric
            if improved:
                self.state.best_metric = metric
                self.state.best_epoch = epoch
                self._save_best(val)
            self._append_log(rows + ([val] if val is not None else []))
            self._save_last()
            self._plot()
            shown = f", val loss {val.loss:.4f}, val Dice {val.dice:.4f}" if val else ""
            self.echo(
                f"epoch {epoch}/{config.epochs}: train loss {mean_loss:.4f}{shown}"
                + (" (best)" if improved else "")
            )
        return TrainSummary(
            self.out,
            self.state.epoch,
            self.state.step,
            self.state.best_epoch,
            self.state.best_metric,
            self.out / BEST,
        )

    def _train_epoch(self, epoch: int) -> list[LogRow]:
        from tqdm import tqdm

        rows: list[LogRow] = []
        bar = tqdm(
            total=self.steps_per_epoch,
            desc=f"epoch {epoch}/{self.config.epochs}",
            unit="step",
            disable=not self.progress,
            leave=False,
        )
        with bar:
            for clips in self._train_batches():
                row = self.train_step(clips)
                rows.append(row)
                bar.update(1)
                bar.set_postfix(loss=f"{row.loss:.3f}")
        return rows

    # ----- checkpoints ----------------------------------------------------------------------
    def _model_payload(self) -> dict[str, Any]:
        return {
            "model": self.model.sam.state_dict(),
            "config": self.config.config,
            "image_size": self.config.image_size,
        }

    def _save_best(self, val: LogRow | None) -> None:
        payload = self._model_payload()
        payload["finetune"] = {
            "format": FORMAT,
            "epoch": self.state.epoch,
            "val_dice": None if val is None else val.dice,
            "train_config": self.config.to_dict(),
        }
        _save_atomic(payload, self.out / BEST)

    def _save_last(self) -> None:
        rng: dict[str, Any] = {
            "numpy": self.rng.bit_generator.state,
            "torch": torch.get_rng_state(),
            "python": random.getstate(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        trained = self.model.trained_parts
        weights = self.model.sam.state_dict()
        payload: dict[str, Any] = {
            "trained_weights": {k: v for k, v in weights.items() if k.split(".")[0] in trained},
            "config": self.config.config,
            "image_size": self.config.image_size,
        }
        payload.update(
            format=FORMAT,
            heads=self.model.heads_state(),
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict(),
            scaler=None if self.scaler is None else self.scaler.state_dict(),
            rng=rng,
            state=asdict(self.state),
            train_config=self.config.to_dict(),
            split=self.split.to_dict(),
        )
        _save_atomic(payload, self.out / LAST)

    def _restore(self, saved: dict[str, Any]) -> None:
        # The frozen weights are those of --checkpoint, loaded already.
        result = self.model.sam.load_state_dict(saved["trained_weights"], strict=False)
        if result.unexpected_keys:
            raise InputError(f"{self.out / LAST}: unknown weights {result.unexpected_keys[:3]}")
        self.model.load_heads_state(saved["heads"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.scaler is not None and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        self.state = TrainState(**saved["state"])
        rng = saved["rng"]
        self.rng.bit_generator.state = rng["numpy"]
        torch.set_rng_state(rng["torch"])
        random.setstate(rng["python"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.echo(f"resuming {self.out} after epoch {self.state.epoch} (step {self.state.step})")

    # ----- log and plot ---------------------------------------------------------------------
    def _rewrite_log(self) -> None:
        """Start ``log.csv``, keeping only rows up to the epoch being resumed from."""
        path = self.out / LOG
        kept = []
        if self.state.epoch and path.is_file():
            with path.open(newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(r["epoch"]) <= self.state.epoch]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(kept)

    def _append_log(self, rows: list[LogRow]) -> None:
        with (self.out / LOG).open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writerows(asdict(r) for r in rows)

    def _plot(self) -> None:
        try:
            plot_log(self.out / LOG, self.out / PLOT)
        except ImportError:
            warnings.warn("matplotlib is not installed: no loss plot", stacklevel=2)


def plot_log(log: Path, png: Path) -> None:
    """Plot ``log.csv``: training losses per step (left), validation Dice per epoch (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with Path(log).open(newline="") as f:
        rows = list(csv.DictReader(f))
    train = [r for r in rows if r["phase"] == "train"]
    val = [r for r in rows if r["phase"] == "val"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [int(r["step"]) for r in train]
    for key, label in (("loss", "total"), ("seg", "seg"), ("srpp", "SRPP"), ("bd", "BD")):
        values = [float(r[key]) if r[key] != "" else math.nan for r in train]
        if not all(math.isnan(v) for v in values):
            left.plot(steps, _smooth(values), label=f"train {label}")
    if val:
        left.plot([int(r["step"]) for r in val], [float(r["loss"]) for r in val], "o-",
                  label="val total")  # fmt: skip
        right.plot([int(r["epoch"]) for r in val], [float(r["dice"]) for r in val], "o-")
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.set_yscale("log")
    left.legend(fontsize=8)
    right.set_xlabel("epoch")
    right.set_ylabel("validation Dice")
    right.set_ylim(0, 1)
    fig.tight_layout()
    tmp = Path(png).with_name(Path(png).stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, png)


def _smooth(values: list[float], window: int = 20) -> list[float]:
    """Running mean over up to ``window`` past values (NaN kept)."""
    out, recent = [], []
    for v in values:
        recent = [*recent[-(window - 1) :], v] if window > 1 else [v]
        out.append(float(np.nanmean(recent)) if not all(math.isnan(x) for x in recent) else v)
    return out
