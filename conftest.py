"""Test-suite structure: tests that need an optional extra carry its marker and skip without it.

Markers by extra (declared in pyproject.toml): ``sam2`` (torch + SAM 2), ``web`` (FastAPI),
``browser`` (Playwright and chromium), ``train`` (SAM 2 + matplotlib), ``ray`` and ``eval``
(matplotlib, for figures). They are given here from each test's place in the tree, so
``pytest`` runs with only the core installed: a test of a missing extra is skipped with the
reason, and a test module (or a doctest module under ``src/``) that fails to import because an
optional package is missing is reported as skipped, not as an error.

``make test`` sets ``SAM2VOL_ALL_EXTRAS=1``: there a missing extra is an error, never a skip
(except chromium for the browser tests, which the Makefile reports).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"

# What each extra's tests import.
EXTRA_MODULES = {
    "sam2": ("torch", "sam2", "hydra"),
    "web": ("fastapi", "uvicorn", "httpx"),
    "browser": ("playwright",),
    "train": ("torch", "sam2", "matplotlib"),
    "ray": ("ray",),
    "eval": ("matplotlib",),
}
# Optional packages (top-level import names) -> the extra that installs them.
OPTIONAL = {
    "torch": "sam2",
    "sam2": "sam2",
    "hydra": "sam2",
    "iopath": "sam2",
    "fastapi": "web",
    "uvicorn": "web",
    "starlette": "web",
    "httpx": "web",
    "playwright": "browser",
    "ray": "ray",
    "matplotlib": "eval",
    "pydicom": "dev",
    "surface_distance": "dev",
    "medpy": "dev",
    "monai": "dev",
}
# Where the tests of each extra live (paths relative to the repository, prefixes).
PLACES = (
    ("tests/web/test_browser", ("web", "browser")),  # test_browser*.py
    ("tests/web/test_sam2_", ("web", "sam2")),
    ("tests/web/", ("web",)),
    ("src/sam2vol/web/", ("web",)),
    ("tests/finetune/", ("train",)),
    ("src/sam2vol/finetune/", ("train",)),
    ("tests/engines/test_sam2_", ("sam2",)),
    ("tests/engines/sam2_helpers.py", ("sam2",)),
    ("src/sam2vol/engines/sam2/", ("sam2",)),
    ("tests/cli/test_cli_segment_sam2.py", ("sam2",)),
    ("tests/cli/test_evaluate_sam2.py", ("sam2",)),
    ("tests/evaluation/test_runner.py::test_ray_", ("ray",)),
    ("tests/evaluation/test_report.py::test_make_report_writes_tables_and_figures", ("eval",)),
    ("tests/evaluation/test_report.py::test_report_names_versions_and_draws_dice_vs", ("eval",)),
    ("tests/cli/test_evaluate_report.py::test_evaluate_and_report_on_", ("eval",)),
)
_MISSING_MODULE = re.compile(r"No module named '([\w.]+)'")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_for(extra: str) -> list[str]:
    """What the tests of ``extra`` need and this environment lacks."""
    missing = [m for m in EXTRA_MODULES[extra] if not _installed(m)]
    if extra == "browser" and not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    return missing


def extras_of(where: Path | str) -> tuple[str, ...]:
    """Extras needed at a path, or by a test id (``path::name``)."""
    if isinstance(where, Path):
        try:
            where = where.resolve().relative_to(ROOT).as_posix()
        except ValueError:
            return ()
    return next((extras for prefix, extras in PLACES if where.startswith(prefix)), ())


def _all_required() -> bool:
    return os.environ.get("SAM2VOL_ALL_EXTRAS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for extra in extras_of(item.nodeid):
            item.add_marker(getattr(pytest.mark, extra))
        for mark in item.iter_markers():
            if mark.name in EXTRA_MODULES and (missing := missing_for(mark.name)):
                reason = f"needs the {mark.name} extra ({', '.join(missing)} missing)"
                if _all_required() and mark.name != "browser":
                    raise pytest.UsageError(f"{item.nodeid}: {reason} (SAM2VOL_ALL_EXTRAS=1)")
                item.add_marker(pytest.mark.skip(reason=reason))


# Folders whose conftest imports an extra: left out as a whole without it (and said so).
FOLDERS = {"tests/web": "web"}
_LEFT_OUT: list[str] = []


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    try:
        rel = collection_path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    extra = FOLDERS.get(rel)
    if extra is None or _all_required():
        return None
    missing = missing_for(extra)
    if missing:
        _LEFT_OUT.append(f"{rel}: needs the {extra} extra ({', '.join(missing)} missing)")
        return True
    return None


def pytest_terminal_summary(terminalreporter) -> None:
    for line in _LEFT_OUT:
        terminalreporter.write_line(f"SKIPPED (folder) {line}")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A module that cannot import an optional package is skipped (not an error) without it."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    if _all_required():
        return  # make test: a missing extra stays an error
    path = Path(str(collector.path))
    found = _MISSING_MODULE.search(str(report.longrepr))
    top = found.group(1).split(".")[0] if found else None
    if top in OPTIONAL and not _installed(top):
        extra, what = (extras_of(path) or (OPTIONAL[top],))[0], top
    else:
        # A module in an extra's place that failed to import another way while that extra
        # is missing (a name from a sibling module that could not import).
        extra = next((e for e in extras_of(path) if missing_for(e)), None)
        if extra is None:
            return
        what = ", ".join(missing_for(extra))
    report.outcome = "skipped"
    report.longrepr = (str(collector.path), 0, f"Skipped: needs the {extra} extra ({what} missing)")
