"""Benchmark: seconds per fine-tuning step and peak memory (clip length 6, image size 512).

One training step as ``sam2vol train`` takes it: the clip's slices through the
frozen image encoder, the clip tracked from its prompted first slice, the
segmentation + SRPP + BD losses, backward, gradient clipping and an AdamW
step. It is timed twice per device:

* ``encoder``: the image encoder runs on every slice (the first epoch, or no
  ``--feature-cache-gb``);
* ``cached``: the frozen encoder's features come from the cache (later epochs
  with a cache).

Peak memory: on the CPU the process's peak resident memory (it includes the
model and everything before); on a GPU the peak of allocated GPU memory
during the steps. Weights are random (the cost does not depend on them);
slices are 512 x 512 like a CT slice. Mixed precision (bfloat16) on CUDA as
in training.

Run: ``python benchmarks/train_step.py`` (``--devices cpu,cuda`` where CUDA
is available; it is used by default then). The last line is
``seconds_per_step=<x>``: the CPU step with the encoder.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import warnings

import numpy as np
import torch

from sam2vol.engines.sam2.checkpoints import resolve_source
from sam2vol.finetune.clips import Clip, ClipData, centre_point
from sam2vol.finetune.model import ClipModel, build_sam2


def synthetic_clip(length: int, size: int = 512, seed: int = 0) -> ClipData:
    """A growing disk on noise, ``length`` slices of ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    s, r, c = np.meshgrid(np.arange(length), np.arange(size), np.arange(size), indexing="ij")
    mask = (r - size / 2) ** 2 + (c - size / 2) ** 2 < (size / 8 + 4 * s) ** 2
    image = np.clip(0.2 + 0.5 * mask + rng.normal(0, 0.05, mask.shape), 0, 1).astype(np.float32)
    clip = Clip(f"bench{seed}", "disk", tuple(range(length)), centre_point(mask[0]))
    return ClipData(clip, image, mask)


def run_device(args: argparse.Namespace, device: torch.device) -> list[tuple[str, float, float]]:
    """Median seconds per step and peak memory (GiB) with and without the encoder."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = resolve_source(args.checkpoint or f"random:{args.config}")
    torch.manual_seed(0)
    sam = build_sam2(source, args.image_size, device)
    model = ClipModel(sam, srpp=not args.no_srpp, bd=not args.no_bd, feature_cache_bytes=8 << 30)
    model.train()
    optimizer = torch.optim.AdamW(
        [
            {"params": model.sam_parameters(), "lr": 1e-4},
            {"params": model.head_parameters(), "lr": 1e-3},
        ],
        weight_decay=0.01,
    )
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    params = model.sam_parameters() + model.head_parameters()

    def step(data: ClipData) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            inputs = model.prepare([data])
            output = model(inputs)
        terms = model.losses(output, inputs)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    rows = []
    for mode in ("encoder", "cached"):
        clips = [synthetic_clip(args.clip_length, seed=k) for k in range(args.steps + 1)]
        if mode == "cached":
            clips = [clips[0]] * (args.steps + 1)  # the same slices: features from the cache
        step(clips[0])  # warm-up (and fills the cache)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for data in clips[1:]:
            if mode == "encoder":
                model.store = type(model.store)(0)  # no cache: encode every slice
            start = time.perf_counter()
            step(data)
            times.append(time.perf_counter() - start)
            if mode == "encoder":
                model.store = type(model.store)(8 << 30)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2**30
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        rows.append((mode, statistics.median(times), peak))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="sam2.1_hiera_t")
    parser.add_argument("--checkpoint", default=None, help="weights file (default: random)")
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--clip-length", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode")
    parser.add_argument("--devices", default=None, help="e.g. cpu,cuda (default: cpu + cuda)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-srpp", action="store_true")
    parser.add_argument("--no-bd", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.devices.split(",") if args.devices else ["cpu"]
    if args.devices is None and torch.cuda.is_available():
        names.append("cuda")
    print(
        f"fine-tuning step: {args.config} (random weights unless --checkpoint), image size "
        f"{args.image_size}, clip length {args.clip_length}, batch 1, SRPP "
        f"{'off' if args.no_srpp else 'on'}, BD {'off' if args.no_bd else 'on'}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    print(f"{'device':<28} {'mode':<8} {'s/step':>8} {'peak GiB':>9}")
    cpu_seconds = None
    for name in names:
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        for mode, seconds, peak in run_device(args, device):
            print(f"{label:<28} {mode:<8} {seconds:>8.2f} {peak:>9.2f}")
            if device.type == "cpu" and mode == "encoder":
                cpu_seconds = seconds
        sys.stdout.flush()
    if cpu_seconds is not None:
        print(f"seconds_per_step={cpu_seconds:.2f}")


if __name__ == "__main__":
    main()
