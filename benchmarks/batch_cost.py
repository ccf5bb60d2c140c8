"""What a batch of rows costs in SAM 2's memory attention, against one row.

Batched tracking (``batch_objects``) and overlapped walks (``overlap_walks``)
save time only where a batch of ``b`` rows costs less than ``b`` single rows.
This times one memory-attention call (the bulk of a tracking step) on random
inputs at batch 1, 2, 4 and 6, a full memory (7 frames and 16 object
pointers, as once the memory bank and the pointer window are full), the
official call and the padded one (:mod:`sam2vol.engines.sam2.padded_attention`,
rows one frame and one pointer apart). Medians of ``--repeats`` calls, modes
taking turns.

Prints a line per batch size and, last, ``batch2_cost_in_rows=<x>`` (the
official call at batch 2 over batch 1; 2.0 means batching saves nothing).

Usage:
    python benchmarks/batch_cost.py [--image-size 256] [--device cpu] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--checkpoint", default="random:sam2.1_hiera_t")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)

    import torch

    from sam2vol.engines.sam2 import Sam2Engine
    from sam2vol.engines.sam2.padded_attention import padded_memory_attention

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = Sam2Engine(
            checkpoint=args.checkpoint, image_size=args.image_size, device=args.device
        )
    predictor = engine.predictor
    attention = predictor.memory_attention
    device = engine.device
    hw = (args.image_size // 16) ** 2
    channels, mem_channels = predictor.hidden_dim, predictor.mem_dim
    pointer_tokens = 16 * (channels // mem_channels)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def row(frames: int, pointers: int) -> tuple[torch.Tensor, ...]:
        n = frames * hw + pointers
        return (
            torch.randn(hw, 1, channels, device=device),
            torch.randn(hw, 1, channels, device=device),
            torch.randn(n, 1, mem_channels, device=device),
            torch.randn(n, 1, mem_channels, device=device),
        )

    def official(b: int) -> Callable[[], object]:
        curr, pos, memory, memory_pos = (torch.cat([t] * b, dim=1) for t in row(7, pointer_tokens))
        return lambda: attention(
            curr=[curr],
            curr_pos=[pos],
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=pointer_tokens,
        )

    def padded(b: int) -> Callable[[], object]:
        layouts = [(7 - i % 2, pointer_tokens - (i % 2) * 4) for i in range(b)]
        rows = [(*row(f, p), p) for f, p in layouts]
        curr = torch.cat([r[0] for r in rows], dim=1)
        pos = torch.cat([r[1] for r in rows], dim=1)
        return lambda: padded_memory_attention(
            attention, curr, pos, [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows]
        )

    calls = {
        (name, b): make(b)
        for b in (1, 2, 4, 6)
        for name, make in (("official", official), ("padded", padded))
    }
    seconds: dict[tuple[str, int], list[float]] = {key: [] for key in calls}
    with torch.inference_mode(), predictor.autocast():
        for call in calls.values():
            call()  # warm-up
        for _ in range(args.repeats):
            for key, call in calls.items():
                sync()
                t0 = time.perf_counter()
                call()
                sync()
                seconds[key].append(time.perf_counter() - t0)
    median = {key: statistics.median(v) * 1e3 for key, v in seconds.items()}
    one = median[("official", 1)]
    print(
        f"memory attention, {args.checkpoint}, image size {args.image_size} ({hw} tokens), "
        f"{device}, {engine.precision}, 7 frames + {pointer_tokens} pointer tokens, "
        f"medians of {args.repeats}"
    )
    for b in (1, 2, 4, 6):
        o, p = median[("official", b)], median[("padded", b)]
        print(
            f"  batch {b}: official {o:.2f} ms ({o / one:.2f} rows), "
            f"padded {p:.2f} ms ({p / one:.2f} rows)"
        )
    print(f"batch2_cost_in_rows={median[('official', 2)] / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
