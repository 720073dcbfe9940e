"""The test data each model of a sweep gets: the same tensors ``evaluate`` and ``score`` would
feed it.

RobustBench gives ImageNet models their own preprocessing (``Crop288`` for Wong2020Fast,
``BicubicRes256Crop224``, ``Res224``, timm's data config for some; ``Res256Crop224`` otherwise), so
one split cannot serve a whole ImageNet board. :class:`SplitCache` reads the split once per
distinct preprocessing (:func:`~rb_crossclass.data.benchmark.preprocessing_key`) and hands every
job the one of its model; other datasets (and ``npz:`` files, already tensors) have one split.
"""

from __future__ import annotations

from ..data import Split, open_split
from ..data.benchmark import preprocessing_key
from .jobs import ModelJob, SweepSettings


def model_name_for_data(job: ModelJob) -> str | None:
    """The RobustBench name whose preprocessing the job's images get (as ``evaluate`` decides:
    a ``robustbench:`` source's name, else ``None``, RobustBench's default)."""
    return job.robustbench_name


def open_job_split(job: ModelJob | None, settings: SweepSettings) -> Split:
    """Read the test split for ``job`` (``None``: the default preprocessing)."""
    spec = settings.data_spec
    return open_split(spec, "test", settings.n_examples, settings.data_dir,
                      dataset_name=settings.dataset if spec.startswith("npz:") else None,
                      model_name=model_name_for_data(job) if job is not None else None,
                      threat_model=settings.threat_model)


class SplitCache:
    """``cache(job) -> Split``: one read per distinct preprocessing, kept for the whole sweep."""

    def __init__(self, settings: SweepSettings) -> None:
        self.settings = settings
        self._splits: dict[str, Split] = {}

    def key(self, job: ModelJob | None) -> str:
        if self.settings.data_spec.startswith("npz:"):
            return "npz"
        name = model_name_for_data(job) if job is not None else None
        return preprocessing_key(self.settings.data_spec, name, self.settings.threat_model)

    def __call__(self, job: ModelJob | None) -> Split:
        key = self.key(job)
        if key not in self._splits:
            self._splits[key] = open_job_split(job, self.settings)
        return self._splits[key]

    def __len__(self) -> int:
        return len(self._splits)
