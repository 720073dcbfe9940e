"""The reproduction's table in the paper's terms: CAS and robust accuracy at an early epoch,
mid-training, the best epoch (by held-out robust accuracy) and the last epoch; best−last gaps; and
the best−last CAS gap against ε for PGD-AT."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.formatting import format_number
from ..core.threat import parse_eps

# The paper's anchors (PreActResNet-18, 200 epochs): epochs 10 and 70 as "early" and "mid".
EARLY, MID = 0.05, 0.35


def milestones(run: dict) -> dict[str, dict] | None:
    """The epochs the table reports for one run (``None`` when it has no evaluated epoch)."""
    epochs = run["epochs"]
    if not epochs:
        return None
    last = epochs[-1]
    best = max(epochs, key=lambda e: (e["robust_acc"], -e["epoch"]))  # first epoch of the maximum

    def at(fraction: float) -> dict:
        target = max(1, round(fraction * last["epoch"]))
        return min(epochs, key=lambda e: (abs(e["epoch"] - target), e["epoch"]))

    return {"early": at(EARLY), "mid": at(MID), "best": best, "last": last}



def dynamics_table(runs: Sequence[dict], preset: str) -> str:
    """Markdown text of the table (see the module docstring)."""
    lines = [f"# Training dynamics ({preset} preset)", "",
             "CAS of the held-out PGD-20 examples and PGD-20 robust accuracy (%) per run; the best epoch "
             "is the one with the highest held-out robust accuracy. Early and mid epochs are at 5 % and "
             "35 % of training (the paper's epochs 10 and 70 of 200).", "",
             "| run | recipe | ε | early: epoch, CAS, robust | mid | best | last | best − last CAS | "
             "best − last robust |",
             "|---|---|---|---|---|---|---|---|---|"]
    gaps = {}
    not_started = []
    for run in runs:
        m = milestones(run)
        if m is None:
            not_started.append(run["name"])
            continue
        cells = [f"{e['epoch']}: {format_number(e['cas'])}, {format_number(e['robust_acc'], '.1f')}" for e in
                 (m["early"], m["mid"], m["best"], m["last"])]
        both = None not in (m["best"]["cas"], m["last"]["cas"])
        cas_gap = m["best"]["cas"] - m["last"]["cas"] if both else None
        rob_gap = m["best"]["robust_acc"] - m["last"]["robust_acc"]
        if run["recipe"] == "pgd_at":
            gaps[run["eps"]] = (cas_gap, rob_gap)
        status = "" if run["finished"] else " (unfinished)"
        lines.append(f"| {run['name']}{status} | {run['recipe']} | {run['eps']} | " + " | ".join(cells)
                     + f" | {format_number(cas_gap)} | {format_number(rob_gap, '.1f')} |")
    if not_started:
        lines += ["", f"Not trained yet (no evaluated epoch): {', '.join(not_started)}."]
    if gaps:
        lines += ["", "Best − last gap against ε (PGD-AT):", "",
                  "| ε | best − last CAS | best − last robust (%) |", "|---|---|---|"]
        for eps in sorted(gaps, key=parse_eps):
            lines.append(f"| {eps} | {format_number(gaps[eps][0])} | {format_number(gaps[eps][1], '.1f')} |")
    return "\n".join(lines) + "\n"
