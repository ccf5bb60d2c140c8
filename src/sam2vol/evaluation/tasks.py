"""The unit of work: one case of a dataset under one protocol, run in any process.

A :class:`CaseTask` holds only strings and numbers, so it travels to a process
pool or a Ray worker as is; the worker opens the dataset, loads the case,
builds the engine (once per process) and runs the protocol on each object
still to do, yielding one record per object.
"""

from __future__ import annotations

import json
import time
import traceback
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import import_module
from typing import Any

from sam2vol.errors import InputError

_ENGINES: dict[str, Any] = {}


@dataclass(frozen=True)
class RunConfig:
    """What a run evaluates; stored as ``run.json`` beside the results.

    Attributes:
        dataset: Dataset spec, e.g. ``msd:/data/Task09_Spleen``.
        protocol: Protocol spec, e.g. ``he2024`` or ``shen2024-clicks:clicks=3``.
        engine: Engine name (``default``, ``sam2``) or ``module:factory``.
        engine_options: Keyword arguments of the engine.
        seed: Run seed; each object's seed is derived from it and the object's key.
        axis: Slicing view.
        channel: Channel (modality) of multi-channel datasets.
        merge: Label-value groups evaluated as one object (``"1+2"``).
    """

    dataset: str
    protocol: str
    engine: str = "default"
    engine_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    axis: str = "axial"
    channel: int | str | None = None
    merge: tuple[str, ...] = ()

    def to_json_dict(self) -> dict[str, Any]:
        return {**asdict(self), "merge": list(self.merge)}

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(**{**data, "merge": tuple(data.get("merge", ()))})


@dataclass(frozen=True)
class CaseTask:
    """One case to run: the run's config, the case id and the objects already done."""

    config: RunConfig
    case_id: str
    done: frozenset[str] = frozenset()


def object_seed(seed: int, key: str) -> int:
    """The seed of one object: a hash of the run seed and its key (order-independent).

    Example:
        >>> object_seed(0, "case1/liver") == object_seed(0, "case1/liver")
        True
    """
    return zlib.crc32(f"{seed}:{key}".encode())


def make_engine(name: str, options: dict[str, Any]):
    """An engine by registry name, or by ``module:factory`` for custom engines."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise InputError(f"--engine {name!r}: cannot import it ({exc})") from exc
        return factory(**options)
    from sam2vol.engines import create_engine

    return create_engine(name, **options)


def engine_for(config: RunConfig):
    """The engine of a run, built once per process."""
    key = json.dumps([config.engine, config.engine_options], sort_keys=True)
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(config.engine, config.engine_options)
    return _ENGINES[key]


def _error(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename.split('/')[-1]}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


# Object name of the line recorded for a case whose label map holds no object.
NO_OBJECT = "(no object)"


def iter_case(task: CaseTask) -> Iterator[dict[str, Any]]:
    """Run the protocol on each object of a case not yet done, yielding one record each."""
    from sam2vol.datasets import open_dataset
    from sam2vol.protocols import create_protocol

    config = task.config
    base = {
        "case": task.case_id,
        "dataset": config.dataset,
        "protocol": config.protocol,
        "engine": config.engine,
    }
    start = time.perf_counter()
    try:
        dataset = open_dataset(config.dataset, channel=config.channel, merge=config.merge)
        case = dataset.load(task.case_id)
        protocol = create_protocol(config.protocol)
        engine = engine_for(config)
    except Exception as exc:
        yield {"key": f"{task.case_id}/*", **base, "status": "error", "error": _error(exc)}
        return
    load_s = round(time.perf_counter() - start, 4)
    if not case.objects:  # an empty label map: one line, so a resume does not run it again
        yield {
            "key": f"{task.case_id}/{NO_OBJECT}",
            **base,
            "object": NO_OBJECT,
            "case_objects": 1,
            "status": "skipped",
            "reason": "the label map is empty: no object to evaluate",
        }
        return
    for obj in case.objects:
        if obj.name in task.done:
            continue
        key = f"{task.case_id}/{obj.name}"
        seed = object_seed(config.seed, key)
        record: dict[str, Any] = {
            "key": key,
            **base,
            "object": obj.name,
            "label_values": list(obj.values),
            "case_objects": len(case.objects),
            "seed": seed,
        }
        try:
            result = protocol.run(
                case.image, case.mask(obj), engine, seed=seed, axis=config.axis
            ).to_json_dict()
            result.pop("protocol")
            result["timings"]["load_case"] = load_s
            record.update(result)
        except Exception as exc:
            record.update(status="error", error=_error(exc))
        yield record


def run_case(task: CaseTask) -> list[dict[str, Any]]:
    """All records of one case (for process pools and Ray)."""
    return list(iter_case(task))
