"""Benchmarking: run a protocol over a dataset (resumable, parallel, on Ray) and report.

- :func:`run_evaluation` writes ``OUT/results.jsonl``, one line per (case, object);
- :func:`make_report` turns runs into Markdown/CSV tables and PNG figures.
"""

from sam2vol.evaluation.report import Report, make_report
from sam2vol.evaluation.results import ResultsFile, comparable
from sam2vol.evaluation.runner import RunSummary, run_evaluation
from sam2vol.evaluation.tasks import CaseTask, RunConfig

__all__ = [
    "CaseTask",
    "Report",
    "ResultsFile",
    "RunConfig",
    "RunSummary",
    "comparable",
    "make_report",
    "run_evaluation",
]
