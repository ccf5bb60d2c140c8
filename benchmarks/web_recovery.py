"""Restart time of a web session against the length of its history: snapshot plus the events
after it, against replaying the whole prompt log.

A session on the bundled lung CT (default engine) gets a click and a propagation, N times over;
its autosave is flushed; then fresh servers on the same state folder bring it back: once from
its snapshot (the normal path) and once with the snapshot hidden (the whole log replayed).
Runs take turns, and each figure is the median of ``--repeats`` restarts.

Run: ``python benchmarks/web_recovery.py [--propagations 1 20] [--repeats 3]``. The last line is
``recovery_ratio_20_vs_1=<x>``: restart time after the most propagations over that after the
fewest, from the snapshot (goal: about 1, flat).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BASE = "http://127.0.0.1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--propagations", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import numpy as np
    from fastapi.testclient import TestClient

    from sam2vol.io import read_label, read_volume
    from sam2vol.samples import sample_path
    from sam2vol.simulate import deepest_pixel
    from sam2vol.slicing import SliceGeometry
    from sam2vol.web.app import create_app
    from sam2vol.web.autosave import SNAPSHOT_FILE
    from sam2vol.web.config import ServerConfig

    image = read_volume(sample_path("lung2"))
    truth = SliceGeometry.for_volume(image, "axial").to_stack(
        read_label(sample_path("lung2", "label"), like=image).data > 0
    )
    s = int(np.argmax(truth.sum(axis=(1, 2))))
    row, col = deepest_pixel(truth[s])

    def wait(client, sid):
        while True:
            job = client.get(f"/api/sessions/{sid}/job", params={"wait": 60}).json()["job"]
            if job["state"] != "running":
                break
        assert job["state"] == "done", job

    def restart(state_dir: Path, sid: str) -> float:
        with TestClient(create_app(ServerConfig(state_dir=state_dir)), base_url=BASE) as client:
            started = time.perf_counter()
            client.get(f"/api/sessions/{sid}")
            wait(client, sid)
            return time.perf_counter() - started

    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sessions = {}
        for n in args.propagations:
            state_dir = Path(tmp) / f"state{n}"
            with TestClient(create_app(ServerConfig(state_dir=state_dir)), base_url=BASE) as client:
                sid = client.post("/api/sessions", json={"sample": "lung2"}).json()["sid"]
                wait(client, sid)
                for k in range(n):
                    body = {"view": "axial", "slice": s + k % 3 - 1, "row": row, "col": col}
                    assert client.post(f"/api/sessions/{sid}/prompts", json=body).status_code == 200
                    client.post(f"/api/sessions/{sid}/propagate", json={})
                    wait(client, sid)
                client.app.state.store.saver.flush()
            sessions[n] = (state_dir, sid)
        times: dict[tuple[int, str], list[float]] = {}
        for _ in range(args.repeats):
            for n, (state_dir, sid) in sessions.items():
                snapshot = state_dir / "sessions" / sid / SNAPSHOT_FILE
                times.setdefault((n, "snapshot"), []).append(restart(state_dir, sid))
                hidden = snapshot.with_name("hidden.pkl")
                snapshot.rename(hidden)
                times.setdefault((n, "replay"), []).append(restart(state_dir, sid))
                hidden.rename(snapshot)
        for (n, how), values in sorted(times.items()):
            results.setdefault(n, {})[how] = statistics.median(values)
            print(f"propagations={n} {how}: restart {statistics.median(values):.2f} s")
    low, high = min(results), max(results)
    replay_ratio = results[high]["replay"] / results[low]["replay"]
    print(f"replay_ratio_{high}_vs_{low}={replay_ratio:.2f}")
    print(
        f"recovery_ratio_{high}_vs_{low}={results[high]['snapshot'] / results[low]['snapshot']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
