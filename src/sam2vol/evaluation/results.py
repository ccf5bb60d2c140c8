"""The results file: one JSON line per (case, object), appended as each ends.

Lines are appended with flush and fsync, so a run killed at any moment loses
at most the line being written; :meth:`ResultsFile.read` drops such a torn last
line (and :meth:`ResultsFile.repair` cuts it off before appending again).
When a run ends, :meth:`ResultsFile.finalize` rewrites the file sorted by key
with one line per key (the last one written), so an interrupted and resumed
run ends with the same lines as an uninterrupted one; only the ``timings``
field of each line differs between runs (see :func:`comparable`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from sam2vol.datasets.base import natural_key
from sam2vol.errors import InputError

DONE = ("ok", "skipped")  # statuses that count as finished; "error" lines are retried


def clean_json(value: Any) -> Any:
    """``value`` with NaN as None and infinities as ``"inf"``/``"-inf"`` (strict JSON).

    Example:
        >>> clean_json({"a": [float("inf"), float("nan"), 1.5]})
        {'a': ['inf', None, 1.5]}
    """
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return clean_json(value.item())
    return value


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without the fields that differ between identical runs (``timings``)."""
    return {k: v for k, v in record.items() if k != "timings"}


def sort_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per key (the last), sorted by key in natural order.

    A case-level error line (key ``CASE/*``: the case could not be loaded) is
    dropped once the case has per-object lines from a later attempt.
    """
    last = {r["key"]: r for r in records}
    cases = {r.get("case") for r in last.values() if not r["key"].endswith("/*")}
    keep = [k for k, r in last.items() if not (k.endswith("/*") and r.get("case") in cases)]
    return [last[k] for k in sorted(keep, key=natural_key)]


class ResultsFile:
    """A ``results.jsonl`` file of per-object records.

    Args:
        path: The file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def read(self) -> list[dict[str, Any]]:
        """All complete records, in file order (a torn last line is left out)."""
        if not self.path.exists():
            return []
        records = []
        lines = self.path.read_text().split("\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):  # torn last line (no newline yet): the run was killed
                    break
                raise InputError(f"{self.path}:{number}: not a JSON line") from None
            if not isinstance(record, dict) or "key" not in record:
                raise InputError(f"{self.path}:{number}: a result line needs a 'key'")
            records.append(record)
        return records

    def repair(self) -> list[dict[str, Any]]:
        """Cut off a torn last line, so appending starts on a fresh line; returns the records."""
        records = self.read()
        if self.path.exists():
            text = self.path.read_bytes()
            if text and not text.endswith(b"\n"):
                self._write(records)
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Append one record and make it durable (flush + fsync)."""
        line = json.dumps(clean_json(record), allow_nan=False, separators=(",", ":"))
        with self.path.open("a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finalize(self) -> list[dict[str, Any]]:
        """Rewrite the file sorted by key, one line per key; returns the records."""
        records = sort_records(self.read())
        self._write(records)
        return records

    def _write(self, records: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with tmp.open("w") as f:
            for record in records:
                f.write(json.dumps(clean_json(record), allow_nan=False, separators=(",", ":")))
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
