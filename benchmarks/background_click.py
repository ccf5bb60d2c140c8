"""Click on an untouched slice through the web API, with and without background encoding.

A real server (``serve_in_background``, uvicorn on a free port) runs the SAM 2
engine with random weights (tiny model, image size 512, CPU). For each trial a
fresh session opens a synthetic volume (a bright blob over noise, 512x512
slices); the page is told it shows the middle slice (``POST .../view``, as the
page does), then, after some idle time, the user clicks a slice a few slices
away that nothing has touched. The time measured is the click's HTTP request:
``POST /api/sessions/<id>/prompts`` until its answer (the new state and the
slice's overlay PNG) is back.

- ``off``: the server runs with ``background_encoding=False`` (the click runs
  the image encoder);
- ``reached``: background encoding on, the click comes as soon as the
  background thread has encoded the clicked slice (it still encodes others);
- ``done``: background encoding on, the click comes once every slice is
  encoded (the user was idle long enough).

The idle time each needed is printed. Trials run in turn (off, reached, done,
off, ...), so all modes see the same machine load. The last line is
``click_untouched_speedup=<x>``: the median ``off`` time over the median
``reached`` time.

Run: ``python benchmarks/background_click.py [--slices 20] [--trials 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

MODES = ("off", "reached", "done")


def synthetic_volume(n_slices: int, size: int) -> np.ndarray:
    """[i, j, k] float32: a bright blob drifting through the slices, over noise."""
    rng = np.random.default_rng(0)
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    data = rng.normal(100.0, 20.0, (size, size, n_slices)).astype(np.float32)
    for k in range(n_slices):
        blob = (i - size // 2 - 2 * k) ** 2 + (j - size // 2) ** 2 < (size // 6) ** 2
        data[..., k][blob] += 400.0
    return data


def make_engine(image_size: int):
    from sam2vol.engines.sam2 import Sam2Engine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Sam2Engine("random:sam2.1_hiera_t", image_size=image_size, device="cpu")


def warm_up(image_size: int) -> None:
    """One click on a small image, so that no trial pays for the model's first run."""
    from sam2vol.engines.base import SlicePrompts

    engine = make_engine(image_size)
    engine.set_image(np.random.default_rng(0).random((1, 64, 64), np.float32), (1, 1, 1))
    prompt = SlicePrompts()
    prompt.add_point(32, 32, True)
    engine.predict_slice(0, prompt, object_id=1)


def trial(server, http, mode: str, args: argparse.Namespace) -> tuple[float, float]:
    """One fresh session, one click; returns (idle seconds before the click, click seconds)."""
    r = http.post("api/sessions", json={"path": "blob.nii"})
    assert r.status_code == 200, r.text
    sid = r.json()["sid"]
    job = http.get(f"api/sessions/{sid}/job", params={"wait": 120}).json()["job"]
    assert job["state"] == "done", job
    center, target = args.slices // 2, args.slices // 2 + args.offset
    r = http.post(f"api/sessions/{sid}/view", json={"view": "axial", "slice": center})
    assert r.json()["background_encoding"] == (mode != "off"), r.text
    engine = server.app.state.store.get(sid).session.engine  # (only to know when to click)
    idle = time.perf_counter()
    if mode == "reached":
        while target not in engine.cache:
            time.sleep(0.01)
    elif mode == "done":
        while engine.cache.stats.stored < args.slices:
            time.sleep(0.01)
    else:
        time.sleep(1.0)  # idle too; nothing happens meanwhile
    idle = time.perf_counter() - idle
    encoded_before = engine.cache.stats.encoded
    body = {"view": "axial", "slice": target, "row": 256, "col": 256, "object_id": 1}
    t0 = time.perf_counter()
    r = http.post(f"api/sessions/{sid}/prompts", json=body)
    seconds = time.perf_counter() - t0
    r.raise_for_status()
    assert r.json()["overlay"] is not None
    meanwhile = engine.cache.stats.encoded - encoded_before
    print(
        f"  {mode:<8} idle {idle:5.1f} s, click {seconds * 1000:6.0f} ms; slices encoded "
        f"during the click: {meanwhile} ({'the click' if mode == 'off' else 'background'})",
        flush=True,
    )
    http.delete(f"api/sessions/{sid}").raise_for_status()
    return idle, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=20)
    parser.add_argument("--slice-size", type=int, default=512)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--offset", type=int, default=4, help="clicked slice: middle + offset")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()

    import httpx

    from sam2vol.io import write_volume
    from sam2vol.volume import Volume
    from sam2vol.web.background import serve_in_background
    from sam2vol.web.config import ServerConfig

    print(
        f"click on untouched slice {args.slices // 2 + args.offset} of {args.slices} "
        f"({args.slice_size}x{args.slice_size}), SAM 2 tiny, random weights, image size "
        f"{args.image_size}, CPU, torch threads {__import__('torch').get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        volume = Volume(synthetic_volume(args.slices, args.slice_size), np.eye(4), "blob")
        write_volume(volume, data / "blob.nii")
        servers = {}
        for background in (False, True):
            config = ServerConfig(
                state_dir=Path(tmp) / f"state-{background}",
                data_dir=data,
                engine_factory=lambda: make_engine(args.image_size),
                background_encoding=background,
            )
            servers[background] = serve_in_background(config)
        warm_up(args.image_size)
        try:
            for _ in range(args.trials):
                for mode in MODES:
                    server = servers[mode != "off"]
                    with httpx.Client(base_url=server.url, timeout=300) as http:
                        results[mode].append(trial(server, http, mode, args))
        finally:
            for server in servers.values():
                server.stop()
    medians = {}
    for mode in MODES:
        idle = statistics.median(i for i, _ in results[mode])
        medians[mode] = statistics.median(s for _, s in results[mode]) * 1000
        print(f"{mode:<8} median click {medians[mode]:6.0f} ms after {idle:5.1f} s idle")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"click_untouched_done_speedup={medians['off'] / medians['done']:.1f}")
    print(f"click_untouched_speedup={medians['off'] / medians['reached']:.1f}")


if __name__ == "__main__":
    main()
