"""`rb-crossclass reproduce dynamics` on a tiny preset: the outputs' structure, and resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_train import TINY_MODELS

from rb_crossclass.cli import main

from conftest import SHARED_DATA, needs_shared


def tiny_preset(tmp_path: Path, epochs: int = 2) -> Path:
    models = tmp_path / "tiny_models.py"
    models.write_text(TINY_MODELS)
    preset = {
        "name": "tiny", "description": "two recipes, a few dozen MNIST images",
        "base": {
            "seed": 0,
            "model": {"source": f"py:{models}:tiny", "extra": {"in_chans": 1}},
            "data": {"train": "mnist", "train_split": "test", "n_train": 48, "eval": "mnist", "n_eval": 24,
                     "data_dir": str(SHARED_DATA)},
            "recipe": {"params": {"steps": 2}},
            "optim": {"lr": 0.05, "batch_size": 16, "epochs": epochs, "schedule": "multistep",
                      "milestones": [1]},
            "eval": {"steps": 3, "batch_size": 24},
            "runtime": {"device": "cpu", "num_threads": 1, "progress": False},
        },
        "runs": [{"recipe": "pgd_at", "eps": "0.1"}, {"recipe": "pgd_at", "eps": "0.2"},
                 {"recipe": "kd", "eps": "0.2", "teacher": "pgd_at_eps0.2", "params": {"lam": 0.5}}],
        "compare": ["pgd_at_eps0.2"],
    }
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump(preset))
    return path


@needs_shared
def test_runs_not_trained_get_no_row_and_no_panel(tmp_path, capsys):
    from rb_crossclass.figures import dynamics as dynamics_figure

    panels = []
    real_plot = dynamics_figure.plot_dynamics

    def counting(runs, *args, **kwargs):
        panels.append([r["name"] for r in runs])
        return real_plot(runs, *args, **kwargs)

    out = tmp_path / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dynamics_figure, "plot_dynamics", counting)
        assert main(["reproduce", "dynamics", "--preset", str(tiny_preset(tmp_path, epochs=1)), "--runs",
                     "pgd_at_eps0.1", "--out", str(out)]) == 0
    assert panels == [["pgd_at_eps0.1"]]
    table = (out / "table.md").read_text()
    assert "| pgd_at_eps0.1 | pgd_at | 0.1 |" in table and "| pgd_at_eps0.2 |" not in table
    assert "Not trained yet (no evaluated epoch): pgd_at_eps0.2, kd_eps0.2." in table


@needs_shared
def test_reproduce_writes_json_png_table_and_diff(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "dynamics", "--preset", str(tiny_preset(tmp_path)), "--out", str(out)]) == 0
    data = json.loads((out / "dynamics.json").read_text())
    expected = [("pgd_at", "0.1"), ("pgd_at", "0.2"), ("kd", "0.2")]
    assert [(r["recipe"], r["eps"]) for r in data["runs"]] == expected
    for run in data["runs"]:
        assert run["finished"] and [e["epoch"] for e in run["epochs"]] == [1, 2]
        for e in run["epochs"]:
            assert 0 <= e["clean_acc"] <= 100 and 0 <= e["robust_acc"] <= 100 and e["cas"] >= 0
    kd_config = yaml.safe_load((out / "runs" / "kd_eps0.2" / "config.yaml").read_text())
    teacher = kd_config["recipe"]["params"]["teacher_checkpoint"]
    assert teacher.endswith("pgd_at_eps0.2/checkpoints/best/model.safetensors")
    assert (out / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "attribution_matrix_diff_pgd_at_eps0.2.png").is_file()
    table = (out / "table.md").read_text()
    assert "| pgd_at_eps0.1 | pgd_at | 0.1 |" in table and "Best − last gap against ε" in table
    printed = capsys.readouterr().out
    assert "3 run(s) trained" in printed
    assert "run 1 of 3: pgd_at_eps0.1 (pgd_at, eps 0.1); ETA after the first run" in printed
    assert "run 3 of 3: kd_eps0.2" in printed and "for this and the remaining runs" in printed
    # the per-epoch scores are crossclass.json-compatible: `score --compare` reads them
    epoch1 = out / "runs" / "pgd_at_eps0.2" / "scores" / "epoch_001.json"
    assert len(json.loads(epoch1.read_text())["matrix"]) == 10
    # rerunning skips the finished runs
    assert main(["reproduce", "dynamics", "--preset", str(tiny_preset(tmp_path)), "--out", str(out)]) == 0
    assert "0 run(s) trained, 3 already finished" in capsys.readouterr().out


@needs_shared
@pytest.mark.slow
def test_reproduce_resumes_after_a_kill(tmp_path):
    preset = tiny_preset(tmp_path, epochs=3)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rb_crossclass", "reproduce", "dynamics", "--preset", str(preset),
           "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    second = out / "runs" / "pgd_at_eps0.2" / "checkpoints" / "last" / "meta.json"
    deadline = time.time() + 300
    try:
        while not second.is_file():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.time() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # during the second run
    finally:
        proc.wait()
    first_rows = (out / "runs" / "pgd_at_eps0.1" / "metrics.jsonl").read_text()
    killed_epoch = json.loads(second.read_text())["epoch"]
    assert killed_epoch < 3
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    assert (out / "runs" / "pgd_at_eps0.1" / "metrics.jsonl").read_text() == first_rows  # not retrained
    data = json.loads((out / "dynamics.json").read_text())
    assert all(r["finished"] and [e["epoch"] for e in r["epochs"]] == [1, 2, 3] for r in data["runs"])


@pytest.mark.parametrize("name", ["cpu", "paper"])
def test_packaged_presets_make_valid_training_configs(name, tmp_path):
    from fractions import Fraction

    from rb_crossclass.core.threat import parse_eps
    from rb_crossclass.reproduce.dynamics import load_preset, run_config
    from rb_crossclass.train import config_from_dict

    preset = load_preset(name)
    names = [r.name for r in preset.runs]
    # the minimum: pgd_at at 2, 4 and 8/255 and at least two soft-label recipes
    assert {"pgd_at_eps2-255", "pgd_at_eps4-255", "pgd_at_eps8-255"} <= set(names)
    assert len({r.recipe for r in preset.runs} & {"kd", "ema_self_distill", "label_smoothing"}) >= 2
    assert preset.compare == ["pgd_at_eps8-255"]
    for spec in preset.runs:
        cfg = config_from_dict(run_config(preset, spec, tmp_path), name)
        params = cfg.recipe.params
        steps = params["steps"]
        # the attack step is step_ratio * eps / steps, exact: 8/255 with 10 steps is the paper's 2/255
        expected = Fraction(2.5) * Fraction(spec.eps.split("/")[0]) / (255 * steps)
        assert Fraction(params["step_size"]) == expected
        assert parse_eps(params["eps"]) == parse_eps(cfg.eval.eps) == parse_eps(spec.eps)
    if name == "paper":
        pgd8 = run_config(preset, preset.runs[names.index("pgd_at_eps8-255")], tmp_path)
        assert pgd8["recipe"]["params"]["step_size"] == "2/255" and pgd8["optim"]["epochs"] == 200


def test_preset_errors_name_the_problem(tmp_path):
    from rb_crossclass.reproduce.dynamics import ReproduceError, load_preset

    with pytest.raises(ReproduceError, match="unknown preset"):
        load_preset("gpu-large")
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: {}\nruns: [{recipe: kd, eps: 8/255, teacher: later}, {recipe: pgd_at, eps: 8/255, "
                   "name: later}]\n")
    with pytest.raises(ReproduceError, match="must be an earlier run"):
        load_preset(str(bad))
    bad.write_text("base: {seed: 0}\nruns: [{recipe: pgd_at}]\n")
    with pytest.raises(ReproduceError, match=r"runs\[0\] needs 'recipe' and 'eps'"):
        load_preset(str(bad))


# --------------------------------------------------------------------------- what the command tells
def test_run_progress_counts_runs_and_estimates_the_rest():
    from types import SimpleNamespace

    from rb_crossclass.reproduce import RunProgress, format_duration, resume_command

    lines, now = [], iter([0.0, 90.0, 100.0, 400.0])
    progress = RunProgress([0, 1], write=lines.append, clock=lambda: next(now))
    spec = SimpleNamespace(name="pgd_8", recipe="pgd_at", eps="8/255")
    progress.on_plan("cpu", 0)
    assert lines == []  # nothing to train: no plan line
    progress.on_plan("cpu", 3)
    progress.on_run(0, spec, "start")
    progress.on_run(0, spec, "done")
    progress.on_run(1, spec, "start")
    assert lines == [
        "reproduce dynamics (cpu): 3 run(s) to train over seeds [0, 1]; Ctrl-C stops, rerunning the "
        "same command resumes",
        "run 1 of 3: seed 0: pgd_8 (pgd_at, eps 8/255); ETA after the first run",
        "run 1 of 3 done: seed 0: pgd_8 in 1 min 30 s",
        "run 2 of 3: seed 1: pgd_8 (pgd_at, eps 8/255); ETA 3 min 00 s for this and the remaining runs"]
    resume = resume_command("cpu", "runs/d x", ["optim.epochs=2"], ["pgd_8"], [0, 1])
    assert resume == ("rb-crossclass reproduce dynamics --preset cpu --out 'runs/d x' --set optim.epochs=2 "
                      "--runs pgd_8 --seeds 0 1")
    assert progress.interrupted(resume).startswith("\ninterrupted during run 2 of 3: finished runs are kept")
    assert progress.interrupted(resume).endswith(f"Resume with:\n  {resume}")
    assert format_duration(3725) == "1 h 02 min" and format_duration(59.6) == "1 min 00 s"


def test_report_lines_of_one_seed_and_of_an_aggregate(tmp_path):
    from rb_crossclass.reproduce import ReproductionReport, report_lines

    one = ReproductionReport("cpu", tmp_path, trained=2, skipped=1, seconds=12.4, table="| t |")
    assert report_lines(one, out="runs/x") == [
        "reproduce dynamics (cpu): 2 run(s) trained, 1 already finished, 12 s",
        "wrote runs/x/dynamics.json, dynamics.png, table.md", "| t |"]
    seeds = ReproductionReport("cpu", tmp_path, table="| a |", paths={"json": tmp_path / "dynamics.json"},
                               aggregate={"seeds": [0, 1], "seeds_with_finished_runs": [0]})
    assert report_lines(seeds, trained=False) == [
        f"aggregated seeds [0, 1] (with finished runs: [0]); wrote {tmp_path / 'dynamics.json'}", "| a |"]
