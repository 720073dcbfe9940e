"""``DIR/sweep.json``: what a sweep has done, rewritten atomically after every model.

It holds the sweep's ``source`` (board or manifest), its ``settings`` (what a result depends on),
and per model ``status`` (``done | not_applicable | failed``), ``reason``, ``detail``,
``seconds``, ``passes``, ``device``, ``metrics``, ``card`` (path of the card, relative to DIR),
``finished`` (date) and ``attempts``. Rerunning the same sweep skips models that are ``done``
(with their card present) or ``not_applicable``; ``failed`` ones run again. A folder holding a
sweep with other settings is refused rather than mixed.

A model is marked ``running`` (with ``started``) before the local engine starts it. A process that
dies without a trace (the OOM killer's SIGKILL) leaves that mark behind; the next run turns it into
``failed`` with :data:`KILLED` and does not start that model again in the same run (it would die
the same way and stop every model after it); the run after that retries it like any failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.io import atomic_write_json
from ..core.provenance import now_iso
from .jobs import FINISHED, STATUSES, JobResult, SweepError

RECORD_FILE = "sweep.json"
RUNNING = "running"
KILLED = "killed (the process died while this model ran)"


class SweepRecord:
    """The state of a sweep in ``out/sweep.json``.

    ``source`` describes what is swept; ``settings`` is
    :meth:`~rb_crossclass.sweep.jobs.SweepSettings.fingerprint`. An existing record with another
    source or other settings raises :class:`~rb_crossclass.sweep.jobs.SweepError`.
    """

    def __init__(self, out: str | Path, source: dict[str, Any], settings: dict[str, Any]) -> None:
        self.out = Path(out)
        self.path = self.out / RECORD_FILE
        self.data: dict[str, Any] = {"source": source, "settings": settings, "created": now_iso(),
                                     "updated": None, "engine": None, "models": {}, "counts": {}}
        self.killed: list[str] = []  # models found ``running``: their process died (see the module)
        if self.path.is_file():
            self._resume(source, settings)

    def _resume(self, source: dict[str, Any], settings: dict[str, Any]) -> None:
        try:
            old = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise SweepError(f"{self.path} is not a readable sweep record ({err}); move it away to start "
                             "afresh") from err
        if not isinstance(old, dict) or not isinstance(old.get("models"), dict):
            raise SweepError(f"{self.path} is not a sweep record (no 'models'); choose another --out")
        old_settings = old.get("settings")
        if isinstance(old_settings, dict) and "version" in old_settings and "aa_version" not in old_settings:
            # written before the key was named as the CLI's --aa-version: same setting, resumable
            old["settings"] = {("aa_version" if k == "version" else k): v for k, v in old_settings.items()}
        for what, new in (("source", source), ("settings", settings)):
            if old.get(what) != new:
                diff = {k: (old.get(what, {}).get(k), v) for k, v in new.items()
                        if (old.get(what) or {}).get(k) != v}
                raise SweepError(f"{self.path} holds a sweep with different {what} ({_show(diff)}): rerun "
                                 "it with the same settings to resume, or choose another --out")
        self.data.update(old)
        self.killed = self._mark_killed()

    def _mark_killed(self) -> list[str]:
        """Models left ``running`` by a process that died: recorded as failed (``KILLED``)."""
        killed = [n for n, e in self.models.items() if e.get("status") == RUNNING]
        for name in killed:
            entry = self.models[name]
            entry.update(status="failed", reason=KILLED, finished=now_iso(),
                         detail=f"started {entry.get('started')}, never finished (e.g. out of memory); "
                         "skipped in this run so the models after it run, retried by the next run",
                         attempts=int(entry.get("attempts", 0)) + 1)
        if killed:
            self.save()
        return killed

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        return self.data["models"]

    def finished(self, name: str) -> bool:
        """Whether ``name`` needs no new run: not applicable, or done with its card in place."""
        entry = self.models.get(name)
        if not entry or entry.get("status") not in FINISHED:
            return False
        return entry["status"] != "done" or (self.out / entry.get("card", "")).is_file()

    def start(self, name: str) -> None:
        """Mark ``name`` as running (saved before the model is built)."""
        entry = dict(self.models.get(name, {}))
        entry.update(status=RUNNING, started=now_iso())
        self.models[name] = entry
        self.save()

    def add(self, result: JobResult, card_path: Path | None) -> None:
        """Record ``result`` (its card already written to ``card_path``) and save."""
        if result.status not in STATUSES:
            raise ValueError(f"unknown status {result.status!r}")
        entry = result.summary()
        entry["card"] = str(card_path.relative_to(self.out)) if card_path is not None else None
        entry["finished"] = now_iso()
        entry["attempts"] = int(self.models.get(result.name, {}).get("attempts", 0)) + 1
        if "started" in self.models.get(result.name, {}):
            entry["started"] = self.models[result.name]["started"]
        self.models[result.name] = entry
        self.save()

    def counts(self, names: list[str] | None = None) -> dict[str, int]:
        """Models per status (``pending``: not run yet), over ``names`` (default: all recorded)."""
        names = list(self.models) if names is None else names
        out = {s: 0 for s in (*STATUSES, "pending")}
        for n in names:
            status = self.models.get(n, {}).get("status", "pending")
            out[status if status in out else "pending"] += 1  # running: not finished yet
        return out

    def save(self, engine: str | None = None) -> None:
        if engine is not None:
            self.data["engine"] = engine
        self.data["updated"] = now_iso()
        self.data["counts"] = self.counts()
        atomic_write_json(self.path, self.data)


def _show(diff: dict) -> str:
    return ", ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in list(diff.items())[:4])
