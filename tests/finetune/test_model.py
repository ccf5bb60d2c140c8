"""Training steps with a random-weight tiny SAM 2 at 128 px on synthetic clips of 3 slices."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sam2vol.finetune.clips import CaseSlices, ClipData, sample_clips
from sam2vol.finetune.heads import SRPPHead
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
    return Run(model, before, np.array(history), cases)


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


def test_srpp_head_learns_slice_order(run):
    """A fresh SRPP head on the model's slice features predicts held-out offsets well."""
    model = run.model.eval()
    rng = np.random.default_rng(1)

    def features(case: CaseSlices, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        feats, positions = [], []
        with torch.no_grad():
            for clip in sample_clips(case, n, 4, rng):
                inputs = model.prepare([ClipData.of(case, clip)])
                feats.append(model(inputs).slice_features.transpose(0, 1))
                positions.append(inputs.positions)
        return torch.cat(feats), torch.cat(positions)

    train = [features(case, 12) for case in run.cases[:2]]
    x, y = torch.cat([f for f, _ in train]), torch.cat([p for _, p in train])
    held_x, held_y = features(run.cases[2], 12)  # a case never trained on
    torch.manual_seed(0)
    head = SRPPHead(x.shape[2])
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    for _ in range(100):
        pick = torch.randint(0, len(x), (8,))
        loss = srpp_loss(head(x[pick]), y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        prediction = head(held_x)
    error = float(srpp_loss(prediction, held_y))
    zero = float(srpp_loss(torch.zeros_like(prediction), held_y))
    assert error < 0.1 * zero, (error, zero)


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
