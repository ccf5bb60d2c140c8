"""The bundled samples (:mod:`sam2vol.samples`) as a dataset: ``samples:`` or ``samples:lung2``."""

from __future__ import annotations

from sam2vol.datasets.base import Dataset, read_case_pair
from sam2vol.errors import InputError
from sam2vol.samples import SAMPLES, sample_path

# What label 1 is in each sample.
OBJECT_NAMES = {
    "lung2": "lung_mass",
    "brain1": "brain_tumour",
    "brain2": "brain_tumour",
    "breast1": "breast_lesion",
    "lung1": "lung_nodule",
}


class SamplesDataset(Dataset):
    """The bundled samples; ``names`` picks some (comma-separated), default all."""

    kind = "samples"

    def __init__(self, names: str = "", **options) -> None:
        self._names = [n for n in (x.strip() for x in str(names).split(",")) if n] or list(SAMPLES)
        for name in self._names:
            if name not in SAMPLES:
                raise InputError(f"--dataset samples:{names}: unknown sample {name!r}")
        super().__init__(sample_path(SAMPLES[0]).parent, **options)

    @property
    def spec(self) -> str:
        return "samples:" + ",".join(self._names)

    def case_ids(self) -> list[str]:
        return list(self._names)

    def load(self, case_id):
        case = super().load(case_id)
        case.objects = [
            type(o)(OBJECT_NAMES[case_id], o.values) if o.values == (1,) else o
            for o in case.objects
        ]
        return case

    def read_pair(self, case_id):
        if case_id not in self._names:
            raise InputError(f"{self.spec}: no case {case_id!r}")
        return read_case_pair(sample_path(case_id), sample_path(case_id, "label"))
