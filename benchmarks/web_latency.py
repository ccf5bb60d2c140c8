"""Latency of the annotation page, measured in a real headless Chromium with the default engine.

The bundled lung CT is opened in the page; the mass is clicked where it is largest (the first
click, on an unprompted slice), then clicked again and again on that now prompted slice (each
click undone with Ctrl+Z before the next, so every click meets the same prompts). The time of a
click is measured by the page itself: from the mouse release to the updated overlay drawn on the
canvas (request, engine, PNG, decode, draw). Then a full propagation of the sample is timed from
pressing Propagate to the final state and overlay on screen, with its server-side job time.

Needs the ``web`` extra, ``pip install playwright`` and Debian's chromium
(``apt-get install -y chromium``; no browser download).

Run: ``python benchmarks/web_latency.py [--clicks N]``. The last line is
``click_to_overlay_ms=<x>``: the median over clicks on the prompted slice (goal: under 150).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def mass_click() -> tuple[int, int, int]:
    """(slice, row, col) of the deepest label pixel on the slice where the mass is largest."""
    from sam2vol.io import read_label, read_volume
    from sam2vol.samples import sample_path
    from sam2vol.simulate import deepest_pixel
    from sam2vol.slicing import SliceGeometry

    image = read_volume(sample_path("lung2"))
    label = read_label(sample_path("lung2", "label"), like=image).data > 0
    g = SliceGeometry.for_volume(image, "axial")
    truth = g.to_stack(label)
    s = int(np.argmax(truth.sum(axis=(1, 2))))
    return (s, *deepest_pixel(truth[s], spacing_mm=g.pixel_spacing_mm))


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"median {statistics.median(values):.1f} ms, p90 {p90:.1f}, "
        f"min {ordered[0]:.1f}, max {ordered[-1]:.1f} (n={len(values)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=30, help="clicks on the prompted slice")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("this benchmark needs playwright: pip install playwright")

    from sam2vol.web.background import serve_in_background
    from sam2vol.web.config import ServerConfig

    s, row, col = mass_click()
    offsets = [(dr, dc) for dr in (-4, 0, 4) for dc in (-4, 0, 4)]
    with tempfile.TemporaryDirectory() as state_dir, sync_playwright() as playwright:
        server = serve_in_background(ServerConfig(state_dir=Path(state_dir)))
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url)
            page.wait_for_selector("#sample-select option", state="attached")
            page.select_option("#sample-select", "lung2")
            page.click("#open-sample")
            page.wait_for_selector("body[data-state=ready]", timeout=60_000)
            page.fill("#slice-input", str(s))
            page.press("#slice-input", "Enter")
            page.wait_for_function("s => sam2volApp.drawn && sam2volApp.drawn.slice === s", arg=s)

            def click(r: int, c: int) -> float:
                n = page.evaluate("() => sam2volApp.clicks.length")
                xy = page.evaluate("([r, c]) => sam2volApp.pixelToClient(r, c)", [r, c])
                page.mouse.click(xy["x"], xy["y"])
                page.wait_for_function("n => sam2volApp.clicks.length > n", arg=n)
                return page.evaluate("() => sam2volApp.clicks[sam2volApp.clicks.length - 1]")

            def undo() -> None:
                n = page.evaluate("() => sam2volApp.changes")
                page.keyboard.press("Control+z")
                page.wait_for_function("n => sam2volApp.changes > n", arg=n)

            first = click(row, col)
            times = []
            for k in range(args.clicks):
                dr, dc = offsets[k % len(offsets)]
                times.append(click(row + dr, col + dc))
                undo()

            before = page.evaluate("() => sam2volApp.progressEvents")
            page.click("#propagate")
            page.wait_for_function(
                "n => sam2volApp.progressEvents > n && sam2volApp.lastPropagationMs !== null",
                arg=before,
                timeout=120_000,
            )
            page_ms = page.evaluate("() => sam2volApp.lastPropagationMs")
            job = page.evaluate("() => sam2volApp.lastJob")
            events = page.evaluate("() => sam2volApp.progressEvents") - before
            obj = page.evaluate("() => sam2volApp.state.objects[0]")
        finally:
            browser.close()
            server.stop()

    print(f"lung2 (224x224x61), default engine, clicks at slice {s} row {row} col {col}")
    print(f"first click (unprompted slice) to overlay: {first:.1f} ms")
    print(f"click on the prompted slice to overlay: {summary(times)}")
    print(
        f"full propagation: {page_ms:.0f} ms from Propagate to the final overlay on the page "
        f"({job['seconds'] * 1000:.0f} ms on the server, {job['n_slices']} slices, "
        f"{events} progress events); mask on slices {obj['first_slice']}-{obj['last_slice']}, "
        f"{obj['volume_ml']:.2f} ml"
    )
    print(f"propagation_ms={page_ms:.0f}")
    print(f"click_to_overlay_ms={statistics.median(times):.1f}")


if __name__ == "__main__":
    main()
