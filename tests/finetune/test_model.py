"""Training steps with a random-weight tiny SAM 2 at 128 px on synthetic clips of 3 slices."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sam2vol.finetune.clips import CaseSlices, ClipData, sample_clips
from sam2vol.finetune.losses import srpp_loss
from sam2vol.finetune.model import ClipModel
from tests.finetune.synthetic import CONFIG, IMAGE_SIZE, stack

STEPS = 24  # 6 passes over 4 clips


@dataclass
class Run:
    model: ClipModel
    before: dict[str, torch.Tensor]
    history: np.ndarray  # [steps, 3]: seg, srpp, bd
    cases: list[CaseSlices]
    clips: list[ClipData]  # the training clips


def tiny_model(**options) -> ClipModel:
    from sam2vol.engines.sam2.checkpoints import resolve_source
    from sam2vol.finetune.model import build_sam2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = resolve_source(f"random:{CONFIG}")
    sam = build_sam2(source, IMAGE_SIZE, torch.device("cpu"))
    return ClipModel(sam, feature_cache_bytes=1 << 30, **options)


def synthetic_case(seed: int, n_slices: int = 8) -> CaseSlices:
    image, mask = stack(n_slices, 48, seed)
    return CaseSlices(f"case{seed}", image, {"blob": mask})


@pytest.fixture(scope="module")
def run() -> Run:
    torch.manual_seed(0)
    model = tiny_model().train()
    before = {k: v.detach().clone() for k, v in model.sam.state_dict().items()}
    cases = [synthetic_case(seed) for seed in range(3)]
    rng = np.random.default_rng(0)
    clips = [ClipData.of(c, clip) for c in cases[:2] for clip in sample_clips(c, 2, 3, rng)]
    optimizer = torch.optim.AdamW(
        [
            {"params": model.sam_parameters(), "lr": 3e-4},
            {"params": model.head_parameters(), "lr": 1e-3},
        ]
    )
    history = []
    for step in range(STEPS):
        inputs = model.prepare([clips[step % len(clips)]])
        terms = model.losses(model(inputs), inputs)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
        history.append([terms.seg.item(), terms.srpp.item(), terms.bd.item()])  # type: ignore[union-attr]
    return Run(model, before, np.array(history), cases, clips)


def test_only_memory_attention_and_mask_decoder_change(run):
    after = run.model.sam.state_dict()
    changed = {k.split(".")[0] for k, v in after.items() if not torch.equal(v, run.before[k])}
    assert changed == {"memory_attention", "sam_mask_decoder"}
    assert not any(p.requires_grad for p in run.model.sam.image_encoder.parameters())
    # The encoder is frozen and in eval mode even while the model trains.
    assert not run.model.sam.image_encoder.training and run.model.sam.memory_attention.training
    # Its features were computed once per slice and reused.
    assert run.model.store.hits > run.model.store.misses


def test_each_loss_decreases(run):
    first, last = run.history[:8].mean(axis=0), run.history[-8:].mean(axis=0)
    for name, a, b in zip(("seg", "srpp", "bd"), first, last, strict=True):
        assert b < 0.9 * a, f"{name} loss {a:.4f} -> {b:.4f}"


def srpp_error(model: ClipModel, clips: list[ClipData]) -> tuple[float, float]:
    """Mean SRPP loss of the model's own head on clips, and that of predicting zero offsets."""
    was_training = model.training
    model.eval()
    losses, zeros = [], []
    with torch.no_grad():
        for clip in clips:
            inputs = model.prepare([clip])
            prediction = model(inputs).srpp
            losses.append(float(srpp_loss(prediction, inputs.positions)))
            zeros.append(float(srpp_loss(torch.zeros_like(prediction), inputs.positions)))
    model.train(was_training)
    return float(np.mean(losses)), float(np.mean(zeros))


def test_srpp_head_learns_slice_order(run):
    """Training makes the model's own SRPP head predict its training clips' offsets.

    The synthetic background is flat, so a slice's position shows only in the object's
    shape (and, for the clip order, in the memory features). Compared with the same model
    before training (same seed, same initial weights) and with predicting zero offsets
    (the best guess when the direction of a clip is unknown, 2.0 for clips of 3): an
    untrained head, or one the SRPP loss does not reach, fails both. Measured: about 0.5
    against 2.07 and 2.0. The head does not generalise to a held-out case within these
    few steps (measured 2.4 there, worse than zero offsets), so this asserts learning on
    the clips the loss optimises, not generalisation.
    """
    trained, zero = srpp_error(run.model, run.clips)
    torch.manual_seed(0)
    untrained, _ = srpp_error(tiny_model(), run.clips)
    assert trained < 0.5 * untrained and trained < 0.5 * zero, (trained, untrained, zero)


def test_srpp_head_on_encoder_features_generalises_to_a_held_out_case():
    """With ``srpp_features="encoder"`` the trained SRPP head predicts a new case's offsets.

    Trained as in the fixture (segmentation + SRPP at the default weight, BD off) for 36
    steps on 16 clips of two cases, it is scored on clips of a third, flat-background case:
    measured 0.43 against 1.96 before training and 2.0 for zero offsets (0.25-0.43 over
    four clip draws). Memory-conditioned features (the default) do not get there within a
    test's budget: see test_srpp_head_learns_slice_order.
    """
    torch.manual_seed(0)
    model = tiny_model(srpp_features="encoder", bd=False).train()
    cases = [synthetic_case(seed) for seed in range(3)]
    rng = np.random.default_rng(0)
    clips = [ClipData.of(c, clip) for c in cases[:2] for clip in sample_clips(c, 8, 3, rng)]
    held = [
        ClipData.of(cases[2], clip)
        for clip in sample_clips(cases[2], 12, 3, np.random.default_rng(1))
    ]
    untrained, zero = srpp_error(model, held)
    optimizer = torch.optim.AdamW(
        [
            {"params": model.sam_parameters(), "lr": 3e-4},
            {"params": model.head_parameters(), "lr": 1e-3},
        ]
    )
    for step in range(36):
        inputs = model.prepare([clips[step % len(clips)]])
        terms = model.losses(model(inputs), inputs)
        optimizer.zero_grad()
        terms.total.backward()
        optimizer.step()
    trained, _ = srpp_error(model, held)
    assert trained < 0.5 * untrained and trained < 0.5 * zero, (trained, untrained, zero)


@pytest.mark.parametrize(
    ("features", "reaches_memory_attention"), [("memory", True), ("encoder", False)]
)
def test_srpp_features_choose_what_srpp_trains(features, reaches_memory_attention):
    torch.manual_seed(0)
    model = tiny_model(srpp_features=features, bd=False).train()
    case = synthetic_case(5)
    clip = sample_clips(case, 1, 3, np.random.default_rng(0))[0]
    inputs = model.prepare([ClipData.of(case, clip)])
    output = model(inputs)
    model.zero_grad()
    srpp_loss(output.srpp, inputs.positions).backward()
    attention = [p.grad for p in model.sam.memory_attention.parameters()]
    reached = any(g is not None and float(g.abs().sum()) > 0 for g in attention)
    assert reached == reaches_memory_attention
    assert any(p.grad is not None for p in model.srpp_head.parameters())
