"""Running a protocol over a dataset: resumable, in parallel locally or on Ray.

Output folder::

    OUT/run.json        the run's configuration (checked on --resume)
    OUT/results.jsonl   one line per (case, object), appended as each case ends

Cases run in the calling process (``workers=1``), in a local process pool
(``workers > 1``), or as Ray tasks (``ray_address``: a cluster address, or
``"local"`` to start a local Ray instance), one GPU per task when the cluster
has GPUs. Whatever runs them, only this process writes the results file.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam2vol.errors import InputError
from sam2vol.evaluation.results import DONE, ResultsFile
from sam2vol.evaluation.tasks import CaseTask, RunConfig, iter_case, run_case

RESULTS_NAME = "results.jsonl"
CONFIG_NAME = "run.json"
# Test hook: the process kills itself (SIGKILL) after writing this many lines.
KILL_AFTER_ENV = "SAM2VOL_TEST_KILL_AFTER"


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        out: The output folder.
        cases_run: Cases run now.
        cases_skipped: Cases already done (``--resume``).
        records: Lines written now.
        errors: Lines with status ``error`` written now.
        results: The results file.
    """

    out: Path
    cases_run: int
    cases_skipped: int
    records: int
    errors: int

    @property
    def results(self) -> Path:
        return self.out / RESULTS_NAME


def plan(
    config: RunConfig, records: list[dict[str, Any]], limit: int | None = None
) -> tuple[list[CaseTask], int]:
    """Tasks for the cases not yet finished, and how many cases were finished.

    A case is finished when it has a done line (``ok`` or ``skipped``) for
    each of its objects (every line records ``case_objects``).
    """
    from sam2vol.datasets import open_dataset

    dataset = open_dataset(config.dataset, channel=config.channel, merge=config.merge)
    case_ids = dataset.case_ids()[:limit] if limit is not None else dataset.case_ids()
    done: dict[str, set[str]] = {}
    expected: dict[str, int] = {}
    for r in records:
        if r.get("status") in DONE and "object" in r:
            done.setdefault(r["case"], set()).add(r["object"])
            expected[r["case"]] = int(r["case_objects"])
    tasks, finished = [], 0
    for case_id in case_ids:
        names = done.get(case_id, set())
        if names and len(names) >= expected[case_id]:
            finished += 1
        else:
            tasks.append(CaseTask(config, case_id, frozenset(names)))
    return tasks, finished


def _check_config(out: Path, config: RunConfig, resume: bool) -> None:
    """Refuse a run that cannot go in ``out``; writes nothing."""
    path = out / CONFIG_NAME
    results = out / RESULTS_NAME
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; give a folder")
    parent = next((p for p in (out, *out.parents) if p.exists()), Path("."))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: folder {parent} is not writable")
    if path.exists():
        try:
            stored = RunConfig.from_json_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: not a sam2vol run configuration ({exc})") from exc
        if not resume:
            raise InputError(f"--out {out}: holds a run already; pass --resume or another --out")
        if stored != config:
            diff = [
                f"{k}: {v!r} (stored) != {getattr(config, k)!r}"
                for k, v in stored.to_json_dict().items()
                if config.to_json_dict()[k] != v
            ]
            raise InputError(f"--resume {out}: the run was started differently; " + "; ".join(diff))
    elif results.exists() and results.stat().st_size:
        raise InputError(f"{results}: results without {CONFIG_NAME}; use another --out")


def _write_config(out: Path, config: RunConfig) -> None:
    """Create ``out`` and write ``run.json`` (once the dataset has opened)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{CONFIG_NAME}.tmp"
        tmp.write_text(json.dumps(config.to_json_dict(), indent=1))
        os.replace(tmp, out / CONFIG_NAME)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot write {CONFIG_NAME} ({exc.strerror})") from exc


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when its parent dies, even by SIGKILL.

    Linux: the kernel's parent-death signal (prctl); elsewhere a thread that
    watches the parent process id.
    """
    import signal
    import threading
    import time

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()


# Each backend yields (records, whether the case is done).
Batches = Iterator[tuple[list[dict[str, Any]], bool]]


def _inline(tasks: list[CaseTask], started: Callable[[str], None]) -> Batches:
    for task in tasks:
        started(task.case_id)
        for record in iter_case(task):
            yield [record], False  # each object's line as soon as it ends
        yield [], True


def _pool(tasks: list[CaseTask], workers: int, started) -> Batches:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        futures = {pool.submit(run_case, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                started(futures[future].case_id)
                yield future.result(), True
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ray(tasks: list[CaseTask], address: str, workers: int, started) -> Batches:
    try:
        import ray
    except ImportError as exc:
        raise InputError("--ray needs Ray: pip install 'sam2vol[ray]'") from exc
    own = not ray.is_initialized()
    if own:
        if address == "local":
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus)(run_case)  # retried if a node dies
        pending = {remote.remote(task): task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            started(task.case_id)
            yield ray.get(ready[0]), True
    finally:
        if own:
            ray.shutdown()


def run_evaluation(
    config: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    workers: int = 1,
    ray_address: str | None = None,
    limit: int | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
) -> RunSummary:
    """Evaluate ``config.protocol`` on every case of ``config.dataset``.

    Args:
        config: What to run.
        out: Output folder.
        resume: Continue a run in ``out``, skipping finished (case, object) keys.
        workers: Local worker processes (1 = this process); Ray task CPUs.
        ray_address: Run cases as Ray tasks on this cluster (``"local"``: start one).
        limit: Only the first ``limit`` cases.
        progress: Show a progress bar (default: when stderr is a terminal).
        echo: Where to print one-line notes (default: nowhere).

    Returns:
        A :class:`RunSummary`; the results file is sorted and deduplicated.
    """
    from sam2vol.protocols import create_protocol

    if workers < 1:
        raise InputError(f"--workers must be >= 1, got {workers}")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be >= 1, got {limit}")
    config = RunConfig(**{**config.__dict__, "protocol": create_protocol(config.protocol).spec})
    out = Path(out)
    _check_config(out, config, resume)
    results = ResultsFile(out / RESULTS_NAME)
    records = results.repair() if (out / RESULTS_NAME).exists() else []
    tasks, finished = plan(config, records, limit)  # opens the dataset: a typo stops here
    _write_config(out, config)
    if echo and finished:
        echo(f"resuming: {finished} case(s) already done, {len(tasks)} to run")
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    written = errors = 0
    bar = _progress_bar(len(tasks), progress)

    def started(case_id: str) -> None:
        bar.set_postfix_str(case_id, refresh=True)

    if ray_address:
        batches: Batches = _ray(tasks, ray_address, workers, started)
    elif workers > 1 and len(tasks) > 1:
        batches = _pool(tasks, min(workers, len(tasks)), started)
    else:
        batches = _inline(tasks, started)
    try:
        for batch, case_done in batches:
            for record in batch:
                results.append(record)
                written += 1
                errors += record.get("status") == "error"
                if kill_after and written >= kill_after:
                    import signal

                    os.kill(os.getpid(), signal.SIGKILL)
            if case_done:
                bar.update(1)
    finally:
        bar.close()
    results.finalize()
    return RunSummary(out, len(tasks), finished, written, errors)


def _progress_bar(total: int, show: bool | None):
    from tqdm import tqdm

    disable = not sys.stderr.isatty() if show is None else not show
    return tqdm(total=total, desc="cases", unit="case", file=sys.stderr, disable=disable)
