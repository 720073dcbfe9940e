"""Training loop: config resolution, PGD-AT vs standard on real data, resume bit-identity
(killed subprocess), DDP with 2 CPU ranks, NaN guard, outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rb_crossclass.cli import main
from rb_crossclass.models.checkpoint import read_state_dict
from rb_crossclass.train import (
    ConfigError,
    TrainingDivergedError,
    config_from_dict,
    config_to_yaml,
    list_presets,
    load_checkpoint,
    load_config,
    train,
)

from conftest import SHARED_DATA, needs_shared

REPO = Path(__file__).resolve().parent.parent

TINY_MODELS = '''
import torch
from torch import nn


class Tiny(nn.Module):
    """[B,C,H,W] in [0,1] -> [B,K]; no BatchNorm, so per-rank batches give full-batch results."""

    def __init__(self, num_classes=10, in_chans=1, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_chans, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def tiny(num_classes=10, in_chans=1):
    return Tiny(num_classes, in_chans)


class Exploding(Tiny):
    """Returns NaN logits from its 4th training forward on."""

    def __init__(self, num_classes=10, in_chans=1):
        super().__init__(num_classes, in_chans)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        h = self.body(x)
        if self.training:
            self.calls += 1
            if self.calls > 3:
                h = h * float("nan")
        return self.fc(h)


class MnistNet(nn.Module):
    """Strided convs + two linear layers: learns MNIST in a few hundred steps."""

    def __init__(self, num_classes=10, in_chans=1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_chans, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1),
                                  nn.ReLU(), nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU())
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.body(x))


def mnist_net(num_classes=10, in_chans=1):
    return MnistNet(num_classes, in_chans)


def exploding(num_classes=10, in_chans=1):
    return Exploding(num_classes, in_chans)
'''


@pytest.fixture(scope="module")
def models_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny_models.py"
    path.write_text(TINY_MODELS)
    return path


def mnist_config(models_file: Path, **over) -> dict:
    """Tiny model on real MNIST test images (training = first n_train, held-out = first n_eval)."""
    cfg = {
        "name": "t", "seed": 0,
        "model": {"source": f"py:{models_file}:tiny", "extra": {"in_chans": 1}},
        "data": {"train": "mnist", "train_split": "test", "n_train": 256, "eval": "mnist",
                 "n_eval": 64, "data_dir": str(SHARED_DATA)},
        "recipe": {"name": "pgd_at", "params": {"eps": 0.1, "step_size": 0.05, "steps": 2}},
        "optim": {"lr": 0.05, "batch_size": 64, "epochs": 2, "schedule": "constant"},
        "eval": {"eps": 0.1, "steps": 5, "batch_size": 256, "cas": False},
        "runtime": {"device": "cpu", "num_threads": 1, "progress": False},
    }
    for key, value in over.items():
        node = cfg
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return cfg


# --------------------------------------------------------------------------- config
def test_presets_resolve_and_overrides_are_typed():
    names = list_presets()
    assert {"paper_pgd_at", "paper_trades", "cpu_small_pgd_at", "cpu_small_trades"} <= set(names)
    cfg = load_config("paper_pgd_at")
    assert (cfg.model.source, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (
        "timm:resnet18", 0.1, 0.9, 5e-4)
    assert (cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.milestones) == (128, 200, [100, 150])
    assert cfg.recipe.params == {"eps": "8/255", "step_size": "2/255", "steps": 10, "bn_mode": "train"}
    cfg = load_config("cpu_small_pgd_at", ["optim.lr=0.05", "recipe.params.steps=3", "eval.cas=false"])
    assert cfg.optim.lr == 0.05 and cfg.recipe.params["steps"] == 3 and cfg.eval.cas is False
    with pytest.raises(ConfigError, match="optim.lrr"):
        load_config("cpu_small_pgd_at", ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="optim.epochs must be int"):
        load_config("cpu_small_pgd_at", ["optim.epochs=many"])
    with pytest.raises(ConfigError, match="neither a file nor a preset"):
        load_config("no_such_preset")


def test_cli_print_config(capsys):
    assert main(["train", "--config", "cpu_small_trades", "--set", "optim.epochs=3", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "name: trades" in out and "epochs: 3" in out


def test_changing_the_source_refuses_the_presets_model_keys(capsys):
    """The handed case: the preset's model.extra (narrow ResNet-10t widths) would silently shape
    timm:resnet18; the source change is refused unless the stale keys are set too."""
    with pytest.raises(ConfigError, match=r"model.extra=.*belongs to timm:resnet10t.*--set model.extra=\{\}"):
        load_config("cpu_small_pgd_at", ["model.source=timm:resnet18"])
    assert main(["train", "--config", "cpu_small_pgd_at", "--set", "model.source=timm:resnet18",
                 "--print-config"]) != 0
    assert "model.extra" in capsys.readouterr().err
    cfg = load_config("cpu_small_pgd_at", ["model.source=timm:resnet18", "model.extra={}"])
    assert (cfg.model.source, cfg.model.extra) == ("timm:resnet18", {})
    # the same source, or a file without source-bound keys, is not a change to refuse
    assert load_config("cpu_small_pgd_at", ["model.source=timm:resnet10t"]).model.extra
    assert load_config("paper_pgd_at", ["model.source=timm:resnet34"]).model.source == "timm:resnet34"
    # a checkpoint belongs to its source as well
    with pytest.raises(ConfigError, match="model.checkpoint=.*--set model.checkpoint=null"):
        _with_file_keys({"checkpoint": "/w/r18.safetensors"}, "timm:resnet34")


def _with_file_keys(model_keys: dict, new_source: str):
    import tempfile

    import yaml

    data = yaml.safe_load((REPO / "rb_crossclass" / "configs" / "paper_pgd_at.yaml").read_text())
    data["model"].update(model_keys)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(data, f)
    try:
        return load_config(f.name, [f"model.source={new_source}"])
    finally:
        os.unlink(f.name)


@pytest.mark.parametrize("override, message", [
    ("recipe.name=nope", "unknown recipe 'nope'"),
    ("recipe.params.no_such_param=1", "no parameter"),
    ("model.source=nosuch:thing", "model.source 'nosuch:thing'"),
    ("model.source=resnet18", "must be <prefix>:<name>"),
])
def test_the_whole_config_is_checked_before_printing(override, message, capsys):
    assert main(["train", "--config", "paper_pgd_at", "--set", override, "--set", "model.extra={}",
                 "--print-config"]) != 0
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_presets_needing_shared_data_say_so_up_front(monkeypatch, capsys, tmp_path):
    """After a plain pip install there is no ../shared: the presets that read it fail at load time
    naming what they need and the way out; the help lists them; the others load."""
    import rb_crossclass.data
    from rb_crossclass.train.config import presets_needing_shared_data

    needing = presets_needing_shared_data()
    assert set(needing) == {n for n in list_presets()
                            if "${shared}" in (REPO / "rb_crossclass" / "configs" / f"{n}.yaml").read_text()}
    assert len(needing) == 6
    monkeypatch.setattr(rb_crossclass.data, "shared_data_dir", lambda: None)
    from rb_crossclass.reproduce.dynamics import load_preset

    for name in needing:
        with pytest.raises(ConfigError, match="RB_CROSSCLASS_SHARED.*--set data.train="):
            load_preset("cpu") if name == "reproduce_dynamics_cpu" else load_config(name)
    teacher = {"paper_kd": ["recipe.params.teacher=timm:resnet18"]}  # the preset asks for one
    for name in set(list_presets()) - set(needing):
        load_preset("paper") if name == "reproduce_dynamics_paper" else load_config(name, teacher.get(name))
    out = tmp_path / "run"
    assert main(["train", "--config", needing[0], "--out", str(out)]) != 0
    assert "shared data folder" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"{', '.join(needing)} train on the partial CIFAR-10 of the project's shared data" in shown


@needs_shared
def test_card_and_summary_record_the_parameter_count_of_the_trained_network(models_file, tmp_path):
    """What was trained is on the card: Tiny(10, in_chans=1) has conv 1->8 (3x3), conv 8->16
    (3x3) and a Linear(16, 10): 8*9+8 + 16*8*9+16 + 16*10+10 = 1418 parameters."""
    cfg = config_from_dict(mnist_config(models_file, **{"optim.epochs": 1, "data.n_train": 64,
                                                        "data.n_eval": 20, "eval.cas": True,
                                                        "eval.steps": 1}))
    result = train(cfg, tmp_path / "run")
    expected = (8 * 9 + 8) + (16 * 8 * 9 + 16) + (16 * 10 + 10)
    assert result.parameters == expected
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["parameters"] == expected
    assert json.loads((tmp_path / "run" / "card.json").read_text())["training"]["parameters"] == expected


# --------------------------------------------------------------------------- learning
@needs_shared
@pytest.mark.slow
def test_pgd_at_is_more_robust_than_standard_twin(models_file, mnist_test, tmp_path):
    common = {"data.n_train": 2000, "data.n_eval": 300, "optim.epochs": 3, "optim.lr": 0.05,
              "optim.batch_size": 50, "eval.eps": 0.1, "eval.steps": 10,
              "model.source": f"py:{models_file}:mnist_net"}
    # held-out = the second half of the MNIST test split
    x, y = mnist_test
    npz = tmp_path / "mnist_halves.npz"
    import numpy as np

    np.savez(npz, x=(x[5000:] * 255).round().byte().numpy(), y=y[5000:].numpy())
    runs = {}
    for recipe, params in (("standard", {}), ("pgd_at", {"eps": 0.1, "step_size": 0.03, "steps": 5})):
        cfg = config_from_dict(mnist_config(models_file, **common, **{
            "recipe.name": recipe, "recipe.params": params, "data.eval": f"npz:{npz}",
            "data.data_dir": str(SHARED_DATA)}))
        runs[recipe] = train(cfg, tmp_path / recipe)
    std, at = runs["standard"].final, runs["pgd_at"].final
    print({k: (r.final["clean_acc"], r.final["robust_acc"]) for k, r in runs.items()})
    assert std["clean_acc"] > 0.8 and at["clean_acc"] > 0.6, (std, at)
    # seed 0 gives standard 86.3% clean / 47.0% PGD-10, PGD-AT 77.3% / 63.7% (eps 0.1)
    assert at["robust_acc"] > std["robust_acc"] + 0.12, (std, at)


# --------------------------------------------------------------------------- outputs + resume
@needs_shared
def test_outputs_and_resume_bit_identical_after_kill(models_file, tmp_path):
    over = {"optim.epochs": 3, "data.n_train": 256, "recipe.name": "ema_self_distill",
            "recipe.params": {"decay": 0.9, "lam_max": 0.5, "ramp_start": 1, "ramp_end": 3,
                              "inner": "pgd_at", "eps": 0.1, "step_size": 0.05, "steps": 2},
            "checkpoint.every": 2, "data.n_eval": 32}
    cfg_dict = mnist_config(models_file, **over)
    full = train(config_from_dict(cfg_dict), tmp_path / "full")
    out = tmp_path / "full"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and full.best_epoch in (1, 2, 3)
    assert all({"clean_acc", "robust_acc", "train_loss", "lr", "train_images_per_second"} <= set(r)
               for r in rows)
    for sub in ("last", "best", "epoch_002"):
        assert (out / "checkpoints" / sub / "model.safetensors").is_file(), sub
    assert (out / "curves.png").stat().st_size > 5000 and (out / "config.yaml").is_file()
    meta, _, state, recipe_state = load_checkpoint(out / "checkpoints" / "last")
    assert meta["epoch"] == 3 and "teacher" in recipe_state and "optimizer" in state

    # the same run in a subprocess, killed after its first epoch, then resumed
    import yaml

    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg_dict))
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "rb_crossclass", "train", "--config", str(cfg_file), "--out", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    meta_file = run_dir / "checkpoints" / "last" / "meta.json"
    deadline = time.time() + 120
    while not meta_file.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(meta_file.read_text())["epoch"]
    assert killed_at < 3, "the run finished before it could be interrupted"
    subprocess.run(cmd + ["--resume"], env=env, check=True, capture_output=True)
    a = read_state_dict(out / "checkpoints" / "last" / "model.safetensors")
    b = read_state_dict(run_dir / "checkpoints" / "last" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _, _, _, rs = load_checkpoint(run_dir / "checkpoints" / "last")
    assert all(torch.equal(recipe_state["teacher"][k], rs["teacher"][k]) for k in rs["teacher"])
    resumed = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert [r["robust_acc"] for r in resumed] == [r["robust_acc"] for r in rows]


@needs_shared
def test_existing_run_needs_resume_and_same_config(models_file, tmp_path):
    cfg = config_from_dict(mnist_config(models_file, **{"optim.epochs": 1, "data.n_train": 64}))
    train(cfg, tmp_path)
    with pytest.raises(Exception, match="--resume"):
        train(cfg, tmp_path)
    changed = config_from_dict(mnist_config(models_file, **{"optim.epochs": 1, "data.n_train": 64,
                                                            "optim.lr": 0.5}))
    with pytest.raises(Exception, match="optim.lr"):
        train(changed, tmp_path, resume=True)


@needs_shared
def test_eval_intervals_write_a_cas_bootstrap_per_epoch_and_change_no_weight(models_file, tmp_path):
    """``eval.intervals``: each epoch's score file gains the bootstrap interval of CAS (the multi-seed
    reproduction reads it as measurement noise); the bootstrap draws from its own generator, so the
    trained weights are those of a run without it, and the key may change on resume."""
    # 400 held-out points: at least 20 per class, so the interval is not withheld
    over = {"optim.epochs": 1, "data.n_train": 64, "eval.cas": True, "data.n_eval": 400}
    plain = train(config_from_dict(mnist_config(models_file, **over)), tmp_path / "plain")
    cfg = config_from_dict(mnist_config(models_file, **over, **{"eval.intervals": True}))
    with_ci = train(cfg, tmp_path / "ci")
    score = json.loads((tmp_path / "ci" / "scores" / "epoch_001.json").read_text())
    lo, hi = score["intervals"]["cas"]
    assert 0 <= lo < hi and score["intervals"]["bootstrap_resamples"] > 0
    plain_score = json.loads((tmp_path / "plain" / "scores" / "epoch_001.json").read_text())
    assert "cas" not in plain_score["intervals"]
    assert with_ci.history[0]["cas"] == plain.history[0]["cas"]
    a = read_state_dict(tmp_path / "plain" / "checkpoints" / "last" / "model.safetensors")
    b = read_state_dict(tmp_path / "ci" / "checkpoints" / "last" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    longer = config_from_dict(mnist_config(models_file, **{**over, "optim.epochs": 2}))  # intervals off
    train(longer, tmp_path / "ci", resume=True)  # eval.intervals is a resumable change


@needs_shared
def test_bf16_refused_without_native_hardware_accepted_with_it(models_file, tmp_path, monkeypatch):
    from rb_crossclass.core import runtime

    cfg = config_from_dict(mnist_config(models_file, **{"optim.epochs": 1, "data.n_train": 64,
                                                        "runtime.bf16": True}))
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(runtime.Bf16UnsupportedError, match="^runtime.bf16: this CPU has no native bf16"):
        train(cfg, tmp_path / "refused")
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    result = train(cfg, tmp_path / "bf16")
    assert result is not None and (tmp_path / "bf16" / "metrics.jsonl").is_file()


# --------------------------------------------------------------------------- NaN guard
@needs_shared
def test_nan_loss_stops_and_keeps_last_good_checkpoint(models_file, tmp_path):
    cfg = config_from_dict(mnist_config(models_file, **{
        "model.source": f"py:{models_file}:exploding", "recipe.name": "standard", "recipe.params": {},
        "data.n_train": 128, "optim.epochs": 3}))  # 2 steps per epoch; NaN from step 4 (epoch 2)
    with pytest.raises(TrainingDivergedError, match=r"nan at epoch 2, step 1.*epoch 1\)"):
        train(cfg, tmp_path)
    meta, weights, _, _ = load_checkpoint(tmp_path / "checkpoints" / "last")
    assert meta["epoch"] == 1 and all(torch.isfinite(v.float()).all() for v in weights.values())


# --------------------------------------------------------------------------- DDP
@needs_shared
@pytest.mark.slow
def test_ddp_two_cpu_ranks_match_single_process(models_file, tmp_path):
    import yaml

    cfg_dict = mnist_config(models_file, **{
        "optim.epochs": 1, "data.n_train": 128, "optim.batch_size": 64, "data.augment": False,
        "recipe.params": {"eps": 0.1, "step_size": 0.05, "steps": 2, "random_start": False},
        "runtime.log_every": 1})
    single = train(config_from_dict(cfg_dict), tmp_path / "single")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg_dict))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "rb_crossclass", "train", "--config", str(cfg_file), "--out", str(tmp_path / "ddp")]
    res = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    log1 = [json.loads(x) for x in (tmp_path / "single" / "train_log.jsonl").read_text().splitlines()]
    log2 = [json.loads(x) for x in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert log1[0]["step"] == log2[0]["step"] == 0
    assert log2[0]["loss"] == pytest.approx(log1[0]["loss"], rel=1e-5)
    assert log2[1]["loss"] == pytest.approx(log1[1]["loss"], rel=1e-4)  # after one synced update
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and single.world_size == 1
    a = read_state_dict(tmp_path / "single" / "checkpoints" / "last" / "model.safetensors")
    b = read_state_dict(tmp_path / "ddp" / "checkpoints" / "last" / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_threat_model_key_and_its_deprecated_norm_spelling(capsys):
    """The YAML key is `threat_model` (the CLI's --threat-model); `norm` still reads, with a warning."""
    cfg = load_config("cpu_small_pgd_at", ["eval.threat_model=L2", "eval.eps=0.5"])
    assert cfg.eval.threat_model == "L2" and "warning" not in capsys.readouterr().err
    assert "threat_model: L2" in config_to_yaml(cfg) and "norm:" not in config_to_yaml(cfg)
    old = config_from_dict({"eval": {"norm": "L2", "eps": "0.5"},
                            "recipe": {"name": "pgd_at", "params": {"norm": "L2", "eps": 0.5}}}, "old.yaml")
    assert old.eval.threat_model == "L2" and old.recipe.params["threat_model"] == "L2"
    err = capsys.readouterr().err.splitlines()
    assert err == ["warning: old.yaml: eval.norm is deprecated; use eval.threat_model (same values)",
                   "warning: old.yaml: recipe.params.norm is deprecated; use recipe.params.threat_model "
                   "(same values)"]
    with pytest.raises(ConfigError, match="both given"):
        config_from_dict({"eval": {"norm": "L2", "threat_model": "L2"}})
    from importlib import resources

    folder = resources.files("rb_crossclass") / "configs"
    for name in list_presets():  # the shipped presets never use the old key
        assert "norm:" not in (folder / f"{name}.yaml").read_text(encoding="utf-8"), name


def test_load_config_data_dir_and_the_train_summary(tmp_path):
    from types import SimpleNamespace

    from rb_crossclass.train import train_summary

    for odd in ("123", "yes", "a: b", str(tmp_path)):  # kept a string whatever YAML would make of it
        assert load_config("cpu_small_pgd_at", ["optim.epochs=1"], data_dir=odd).data.data_dir == odd
    cfg = load_config("cpu_small_pgd_at")
    result = SimpleNamespace(parameters=1_418_000, epochs=2, seconds=61.4, train_images_per_second=250.4,
                             world_size=1, best_epoch=2, best_clean_acc=0.5, best_robust_acc=0.25,
                             best_cas=1.5, final={"attack": "PGD-10"})
    lines = train_summary(cfg, result, tmp_path).splitlines()
    assert lines[0] == (f"run {cfg.name}: {cfg.recipe.name} on {cfg.model.source} (1.42M parameters), "
                        "2 epochs in 61 s (250 training images/s, 1 rank(s))")
    assert lines[1] == "best epoch 2: clean 50.00%, PGD-10 25.00%, CAS 1.50"
    assert lines[2] == (f"outputs in {tmp_path}: metrics.jsonl, curves.png, checkpoints/{{last,best}}, "
                        "summary.json")
    (tmp_path / "card.json").write_text("{}")
    result.best_epoch, result.parameters = None, None
    lines = train_summary(cfg, result, tmp_path).splitlines()
    assert len(lines) == 2 and "parameters" not in lines[0] and lines[1].endswith("summary.json, card.json")
