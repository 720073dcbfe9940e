"""What a sweep is made of: the models to score (:class:`ModelJob`), the settings every model is
scored with (:class:`SweepSettings`) and what scoring one model gives (:class:`JobResult`).

All three are plain, picklable dataclasses, so an engine can ship them to another process or
machine (a Ray task) and back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import RBCrossclassError
from ..core.threat import PAPER_PGD_STEPS, format_eps

STATUSES = ("done", "not_applicable", "failed")
FINISHED = ("done", "not_applicable")  # what a resumed sweep does not run again
MAX_ERROR = 2000  # characters of a failure's one-line error (longer ones end at a whole word)


class SweepError(RBCrossclassError, ValueError):
    """A sweep cannot start (bad manifest, board, settings or output folder); the message says why."""


@dataclass(frozen=True)
class ModelJob:
    """One model of a sweep.

    ``name`` is its model ID (the card's file name); ``source`` a model-source string
    (``robustbench:<Name>``, ``py:/abs/file.py:build``, ``timm:<name>``, ``zoo:<Name>``) with file
    paths already absolute; ``checkpoint`` an absolute path or an http(s) URL, checked against
    ``sha256`` when given; ``head`` the name of the head ``nn.Linear`` when it is not the last one;
    ``url`` the checkpoint's original download address, used when ``checkpoint`` is absent or
    not on disk (then checked against ``sha256``);
    ``kwargs`` extra keyword arguments of the source's builder; ``card`` the card fields the
    model's card starts from (the official RobustBench card, or the manifest's ``card:``).
    """

    name: str
    source: str
    checkpoint: str | None = None
    sha256: str | None = None
    url: str | None = None
    head: str | None = None
    kwargs: dict = field(default_factory=dict)
    card: dict = field(default_factory=dict)

    @property
    def robustbench_name(self) -> str | None:
        """The zoo name of a ``robustbench:`` source, else ``None``."""
        prefix, _, rest = self.source.partition(":")
        return rest if prefix == "robustbench" else None


@dataclass(frozen=True)
class SweepSettings:
    """How every model of a sweep is scored.

    The first ``n_examples`` test points (``None``: all) of ``data`` (a dataset name, or
    ``npz:PATH`` holding ``dataset``) under ``data_dir``; ``threat_model`` ``Linf``/``L2`` with
    radius ``eps``; clean accuracy and the cross-class scores under the paper's PGD-20 protocol
    (seed ``seed``), and with ``autoattack`` also AutoAttack ``aa_version`` (seed 0, RobustBench's
    protocol) whose own examples are scored too. ``batch_size`` serves every pass (per-point
    results depend on it, as in pyautoattack). ``threads``: torch CPU threads of a job (``None``:
    :func:`~rb_crossclass.core.runtime.cpu_threads`). ``model_dir``: robustbench's checkpoint
    folder, also where checkpoints given by URL are downloaded. ``state_dir``: where each model's
    AutoAttack progress is saved per attack and batch (``<state_dir>/<Name>/``, an
    :class:`~rb_crossclass.evaluate.EvalState`), so an interrupted sweep resumes a model mid-attack;
    the folder is removed when the model's card is written. ``extra_eps``: further radii at which
    every model also gets the PGD-20 protocol (the card's ``cross_class.other_eps``). ``state_dir``
    is not part of :meth:`fingerprint`: the state checks its own settings, model and data.
    ``aa_exact``: AutoAttack attacks each model as it is (bare pyautoattack's arithmetic) instead
    of its faster copy (:func:`~rb_crossclass.evaluate.attack_model.attack_model`).
    """

    dataset: str
    threat_model: str
    eps: float
    n_examples: int | None = None
    data: str = ""
    data_dir: str | None = None
    model_dir: str = "./models"
    autoattack: bool = False
    aa_version: str = "standard"
    batch_size: int = 250
    seed: int = 0
    threads: int | None = None
    progress: bool = True
    state_dir: str | None = None
    extra_eps: tuple[float, ...] = ()
    aa_exact: bool = False

    def model_state_dir(self, name: str) -> Path | None:
        """The AutoAttack resume folder of model ``name`` (``None`` without ``state_dir``)."""
        return Path(self.state_dir) / name if self.state_dir else None

    @property
    def version(self) -> str:
        """Deprecated name of :attr:`aa_version` (the CLI's ``--aa-version``)."""
        import warnings

        warnings.warn("SweepSettings.version is deprecated; use aa_version", DeprecationWarning, stacklevel=2)
        return self.aa_version

    @property
    def data_spec(self) -> str:
        return self.data or self.dataset

    def fingerprint(self) -> dict[str, Any]:
        """What a finished model's result depends on: a resumed sweep must use the same. The
        AutoAttack version is ``aa_version`` (records written before it was named so hold
        ``version``; :class:`~rb_crossclass.sweep.record.SweepRecord` reads both)."""
        return {"dataset": self.dataset, "threat_model": self.threat_model, "eps": self.eps,
                "eps_string": format_eps(self.eps), "n_examples": self.n_examples, "data": self.data_spec,
                "autoattack": self.autoattack, "aa_version": self.aa_version if self.autoattack else None,
                "batch_size": self.batch_size, "seed": self.seed, "pgd_steps": PAPER_PGD_STEPS,
                **({"extra_eps": [format_eps(e) for e in self.extra_eps]} if self.extra_eps else {}),
                **({"aa_exact": True} if self.aa_exact and self.autoattack else {})}


@dataclass
class JobResult:
    """What scoring one model gave.

    ``status``: ``done`` (``card`` holds the validated card), ``not_applicable`` (``reason``: why
    the cross-class metric is undefined, e.g. ``ensemble``; ``detail`` in words) or ``failed``
    (``reason``: the one-line error). ``seconds`` of wall time, ``passes`` through the model
    (forward/backward calls and samples), ``device`` it ran on; ``metrics`` the headline numbers
    (accuracies as fractions, CAS) and ``record`` the full result (per-point flags, per-stage
    seconds) written to ``results/<name>.json``.
    """

    name: str
    status: str
    reason: str | None = None
    detail: str | None = None
    seconds: float = 0.0
    passes: dict[str, int] = field(default_factory=dict)
    device: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    card: dict | None = None
    record: dict | None = None

    def summary(self) -> dict[str, Any]:
        """The entry of ``sweep.json`` (without the card and the full record)."""
        d = asdict(self)
        d.pop("card")
        d.pop("record")
        d.pop("name")
        d["seconds"] = round(self.seconds, 3)
        return d


def one_line(err: BaseException, limit: int = MAX_ERROR) -> str:
    """An error as one line: our errors by their message, others prefixed with their type."""
    message = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, RBCrossclassError):
        message = f"{type(err).__name__}: {message}"
    if len(message) <= limit:
        return message
    cut = message[:limit].rsplit(" ", 1)[0]  # whole words: a cut message still reads
    return f"{cut} ... ({len(message) - len(cut)} more characters)"
