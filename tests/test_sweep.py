"""Sweeps: a manifest of tiny models on real MNIST with the local and the Ray engine (same cards),
statuses, failures recorded, a killed sweep resumed, an offline RobustBench sweep with placed
checkpoints, --plan, and the manifest format."""

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
import yaml

from rb_crossclass import cli
from rb_crossclass.core.names import MODEL_ID_PATTERN
from rb_crossclass.core.threat import EPS_PATTERN
from rb_crossclass.models import save_safetensors, sha256_file
from rb_crossclass.sweep import (
    JobResult,
    ManifestError,
    SweepError,
    SweepSettings,
    load_manifest,
    manifest_schema,
    plan_sweep,
    run_sweep,
)
from rb_crossclass.sweep.worker import count_passes

from conftest import OFFICIAL_CARDS, SHARED_DATA, needs_shared

ROOT = Path(__file__).resolve().parent.parent
TEST_MODELS = Path(__file__).resolve().parent / "models_for_tests.py"
N = 12


def _checkpoint(tmp_path: Path, name: str, build: str, seed: int) -> tuple[str, str]:
    """Seeded random weights of ``build`` (from models_for_tests) saved as safetensors; (path, sha256)."""
    sys.path.insert(0, str(TEST_MODELS.parent))
    try:
        import models_for_tests
    finally:
        sys.path.pop(0)
    net = getattr(models_for_tests, build)()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    path = tmp_path / "ckpt" / f"{name}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    return str(path), save_safetensors(net, path)


def _manifest(tmp_path: Path, models: list[dict], **top) -> Path:
    data = {"dataset": "mnist", "threat_model": "Linf", "eps": "0.1", "models": models, **top}
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _tiny_models(tmp_path: Path) -> list[dict]:
    out = []
    for i, (name, build) in enumerate((("TinyConv", "tiny_mnist_convnet"), ("TinyMLP", "tiny_mnist_mlp"),
                                        ("TinyConvHead", "tiny_mnist_conv_head"))):
        ckpt, sha = _checkpoint(tmp_path, name, build, seed=i)
        out.append({"name": name, "source": f"py:{TEST_MODELS}:{build}", "checkpoint": ckpt, "sha256": sha,
                    "card": {"name": f"A tiny {build}", "authors": "Tests", "venue": "CI 2026",
                             "clean_acc": 11.5}})
    return out


def _without_times(card: dict) -> dict:
    card = json.loads(json.dumps(card))
    for key in ("date", "seconds", "cost"):  # cost: wall seconds and CPU threads of the process
        card.get("evaluation", {}).pop(key, None)
    return card


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@needs_shared
def test_manifest_sweep_local_and_ray_give_identical_cards(tmp_path, ray_local):
    manifest = _manifest(tmp_path, _tiny_models(tmp_path))
    common = dict(manifest=manifest, data_dir=str(SHARED_DATA), n_examples=N, autoattack=True, batch_size=8,
                  cpus_per_model=1, progress=False)
    local = run_sweep(tmp_path / "local", engine="local", **common)
    ray = run_sweep(tmp_path / "ray", engine="ray", **common)
    for report in (local, ray):
        statuses = {n: r["status"] for n, r in report.rows.items()}
        assert statuses == {"TinyConv": "done", "TinyMLP": "done", "TinyConvHead": "not_applicable"}
        assert report.rows["TinyConvHead"]["reason"] == "no_linear_head"
        assert report.counts == {"done": 2, "not_applicable": 1, "failed": 0, "pending": 0}
        assert (report.out / "leaderboard" / "leaderboard.json").is_file()
    for name in ("TinyConv", "TinyMLP"):
        a = json.loads((tmp_path / "local" / "cards" / "mnist" / "Linf" / f"{name}.json").read_text())
        b = json.loads((tmp_path / "ray" / "cards" / "mnist" / "Linf" / f"{name}.json").read_text())
        assert _without_times(a) == _without_times(b)
        # the card: AutoAttack accuracy, CAS of the paper's PGD-20 protocol, AutoAttack's examples beside it
        assert a["name"] == f"A tiny {'tiny_mnist_convnet' if name == 'TinyConv' else 'tiny_mnist_mlp'}"
        assert a["x_reported_clean_acc"] == "11.50" and a["eps"] == "0.1" and a["dataset"] == "mnist"
        assert a["cross_class"]["attack"]["name"] == "pgd" and a["cross_class"]["attack"]["steps"] == 20
        assert a["cross_class"]["autoattack"]["attack"]["name"] == "autoattack"
        assert set(a["evaluation"]["per_class"]) >= {"worst_class", "robust_accuracy", "spread"}
        assert a["evaluation"]["n_examples"] == N and a["evaluation"]["autoattack_version"] == "standard"
    record = json.loads((tmp_path / "ray" / "sweep.json").read_text())
    row = record["models"]["TinyConv"]
    assert row["device"] == "cpu" and row["seconds"] > 0 and row["attempts"] == 1
    assert row["passes"]["forward_samples"] >= N * 22 and row["passes"]["backward_samples"] >= N * 20
    assert record["engine"] == "ray" and record["settings"]["n_examples"] == N


@needs_shared
def test_pgd_only_card_keeps_pgd_out_of_autoattack_acc(tmp_path):
    manifest = _manifest(tmp_path, _tiny_models(tmp_path)[:1])
    report = run_sweep(tmp_path / "out", manifest=manifest, data_dir=str(SHARED_DATA), n_examples=N,
                       progress=False)
    card = json.loads((tmp_path / "out" / "cards" / "mnist" / "Linf" / "TinyConv.json").read_text())
    m = report.rows["TinyConv"]["metrics"]
    assert "autoattack_acc" not in card and "evaluation" not in card and "no AutoAttack" in card["footnote"]
    assert report.leaderboard is None and "--autoattack" in report.leaderboard_note  # nothing to rank by
    assert "--official-cards" not in report.leaderboard_note  # a manifest's models have no official cards
    assert card["cross_class"]["robust_accuracy"] == m["pgd_robust_acc"]
    assert card["cross_class"]["attack"]["name"] == "pgd" and card["cross_class"]["cas"] == m["cas_pgd"]
    # passes: one clean forward, 20 PGD steps (forward + backward) and the final forward per point
    assert report.rows["TinyConv"]["passes"] == {"forward_passes": 22, "forward_samples": 22 * N,
                                                 "backward_passes": 20, "backward_samples": 20 * N}


@needs_shared
def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path):
    import shutil

    models = _tiny_models(tmp_path)[:2]
    good = tmp_path / "good.safetensors"
    shutil.copy(models[0]["checkpoint"], good)
    shutil.copy(models[1]["checkpoint"], models[0]["checkpoint"])  # a different file: sha256 mismatch
    missing = tmp_path / "later" / "missing.safetensors"
    models.append({"name": "Missing", "source": models[1]["source"], "checkpoint": str(missing)})
    manifest = _manifest(tmp_path, models)
    out = tmp_path / "out"
    args = dict(manifest=manifest, data_dir=str(SHARED_DATA), n_examples=N, progress=False)
    rows = run_sweep(out, **args).rows
    assert [rows[n]["status"] for n in ("TinyConv", "TinyMLP", "Missing")] == ["failed", "done", "failed"]
    assert "sha256" in rows["TinyConv"]["reason"] and "\n" not in rows["TinyConv"]["reason"]
    assert rows["Missing"]["reason"] == f"checkpoint {missing} not found"
    assert not (out / "cards" / "mnist" / "Linf" / "TinyConv.json").exists()
    # the files fixed, the same call: failed models run again, the finished one is skipped
    shutil.copy(good, models[0]["checkpoint"])
    missing.parent.mkdir()
    shutil.copy(models[1]["checkpoint"], missing)
    report = run_sweep(out, **args)
    assert report.counts == {"done": 3, "not_applicable": 0, "failed": 0, "pending": 0}
    assert {n: r["attempts"] for n, r in report.rows.items()} == {"TinyConv": 2, "TinyMLP": 1, "Missing": 2}
    assert report.resumed == 1
    # another manifest (or other settings) in the same folder is refused, not mixed
    _manifest(tmp_path, models[:2])
    with pytest.raises(SweepError, match="different source"):
        run_sweep(out, **args)
    with pytest.raises(SweepError, match="different settings"):
        run_sweep(out, **{**args, "n_examples": N + 1, "manifest": _manifest(tmp_path, models)})


@needs_shared
def test_the_head_is_found_from_the_computation_in_plan_and_run(tmp_path):
    """The handed case: an unused nn.Linear registered after the real head is scored (plan:
    applicable, head fc; run: done); a model where no Linear outputs the logits is not applicable
    and its message names the way out (--head NAME, the manifest's head: key)."""
    models = [{"name": "UnusedAfter", "source": f"py:{TEST_MODELS}:mnist_unused_linear_after_head"},
              {"name": "Tokens", "source": f"py:{TEST_MODELS}:mnist_linear_on_tokens"}]
    manifest = _manifest(tmp_path, models)
    plan = {e.name: e for e in plan_sweep(tmp_path / "plan", manifest=manifest, progress=False).entries}
    assert plan["UnusedAfter"].status == "applicable"
    assert plan["Tokens"].status == "not_applicable" and plan["Tokens"].reason == "head_not_final"
    assert "--head NAME" in plan["Tokens"].detail and "`head:` key" in plan["Tokens"].detail
    rows = run_sweep(tmp_path / "out", manifest=manifest, data_dir=str(SHARED_DATA), n_examples=N,
                     progress=False).rows
    assert rows["UnusedAfter"]["status"] == "done"
    assert rows["Tokens"]["status"] == "not_applicable" and "--head NAME" in rows["Tokens"]["detail"]


@needs_shared
def test_killed_sweep_resumes_without_redoing_finished_models(tmp_path):
    """SIGKILL (what the OOM killer sends) in the middle of the second of three models: the rerun
    records it as failed: killed without starting it again (it would die the same way), runs the
    third, exits 1 and logs plain progress lines; the run after that retries it."""
    from rb_crossclass.sweep.record import KILLED

    log_a, log_b, log_c, go = tmp_path / "a.log", tmp_path / "b.log", tmp_path / "c.log", tmp_path / "go"
    src = f"py:{TEST_MODELS}:logged_mnist_convnet"
    manifest = _manifest(tmp_path, [
        {"name": "First", "source": src, "kwargs": {"log": str(log_a)}},
        {"name": "Second", "source": src, "kwargs": {"log": str(log_b), "wait_for": str(go)}},
        {"name": "Third", "source": src, "kwargs": {"log": str(log_c)}},
    ])
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "rb_crossclass", "sweep", "--manifest", str(manifest), "--data-dir",
           str(SHARED_DATA), "--n-examples", str(N), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not log_b.exists():  # the first model is finished and recorded, the second is running
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the second model never started"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    record = json.loads((out / "sweep.json").read_text())
    assert record["models"]["First"]["status"] == "done" and record["models"]["Second"]["status"] == "running"
    assert "Third" not in record["models"]
    card = (out / "cards" / "mnist" / "Linf" / "First.json").read_text()
    # Second would wait 120 s for `go` if it were started again: the rerun must not start it
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=100)
    assert rerun.returncode == 1, rerun.stderr[-2000:]
    assert log_a.read_text().count("built") == 1  # not built, let alone scored, again
    assert log_b.read_text().count("built") == 1 and log_c.read_text().count("built") == 1
    assert (out / "cards" / "mnist" / "Linf" / "First.json").read_text() == card
    record = json.loads((out / "sweep.json").read_text())
    assert {n: r["status"] for n, r in record["models"].items()} == {
        "First": "done", "Second": "failed", "Third": "done"}
    assert record["models"]["Second"]["reason"] == KILLED and record["models"]["Second"]["attempts"] == 1
    assert f"failed          {KILLED}" in rerun.stdout and "(1 finished in an earlier run)" in rerun.stdout
    # not a terminal: plain progress lines, no cursor escapes or carriage returns in the log
    assert "\x1b[" not in rerun.stderr and "\r" not in rerun.stderr
    assert "models: 3/3 model (100%)" in rerun.stderr
    go.touch()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    record = json.loads((out / "sweep.json").read_text())
    assert record["models"]["Second"]["status"] == "done" and record["models"]["Second"]["attempts"] == 2
    assert log_b.read_text().count("built") == 2 and log_c.read_text().count("built") == 1


def test_a_sweep_where_models_fail_exits_1_with_full_reasons(tmp_path, capsys):
    """Every model failed: exit status 1, each reason in full (not cut at 90 characters), and no
    'cards in' line for a cards folder that was never created."""
    long_dir = tmp_path / ("a_folder_with_a_rather_long_name_" * 3)
    models = [{"name": f"M{i}", "source": f"py:{TEST_MODELS}:tiny_mnist_convnet",
               "checkpoint": str(long_dir / f"missing_{i}.safetensors")} for i in range(2)]
    manifest = _manifest(tmp_path, models)
    out = tmp_path / "out"
    code = cli.main(["sweep", "--manifest", str(manifest), "--data-dir", str(SHARED_DATA), "--n-examples",
                     str(N), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    for m in models:
        assert f"checkpoint {m['checkpoint']} not found" in captured.out
    assert len(models[0]["checkpoint"]) > 90
    assert "cards in" not in captured.out and not (out / "cards").exists()
    assert "no cards (no model was scored)" in captured.out
    assert "2 model(s) failed" in captured.err


@needs_shared
def test_sweep_interrupted_mid_autoattack_resumes_the_model_where_it_stopped(tmp_path, monkeypatch):
    from rb_crossclass.evaluate import autoattack as aa_module

    real_perturb = aa_module._perturb
    calls: list[str] = []

    def counting(adversary, attack, x, y):
        calls.append(attack)
        if interrupt_at is not None and attack == interrupt_at:
            raise KeyboardInterrupt  # the sweep process is stopped half-way through the model
        return real_perturb(adversary, attack, x, y)

    monkeypatch.setattr(aa_module, "_perturb", counting)
    manifest = _manifest(tmp_path, _tiny_models(tmp_path)[:1], eps="0.02")
    common = dict(manifest=manifest, data_dir=str(SHARED_DATA), n_examples=24, autoattack=True, batch_size=4,
                  progress=False)
    interrupt_at = None
    run_sweep(tmp_path / "reference", **common)
    reference_calls = list(calls)
    assert reference_calls.count("apgd-ce") >= 1 and "apgd-t" in reference_calls  # some points reach apgd-t
    assert not (tmp_path / "reference" / "state" / "TinyConv").exists()  # removed once the card is written

    calls.clear()
    interrupt_at = "apgd-t"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(tmp_path / "out", **common)
    state = tmp_path / "out" / "state" / "TinyConv"
    assert (state / "meta.json").is_file() and list((state / "apgd-ce").glob("batch_*.pt"))
    calls.clear()
    interrupt_at = None
    report = run_sweep(tmp_path / "out", **common)
    assert report.counts["done"] == 1
    assert "apgd-ce" not in calls  # the finished attack is read back, not run again
    assert calls == [c for c in reference_calls if c != "apgd-ce"]
    assert not state.exists()
    a = json.loads((tmp_path / "reference" / "cards" / "mnist" / "Linf" / "TinyConv.json").read_text())
    b = json.loads((tmp_path / "out" / "cards" / "mnist" / "Linf" / "TinyConv.json").read_text())
    for card in (a, b):  # the pass counts say what this process ran: the resumed one ran less
        for key in ("forward_passes", "backward_passes", "forward_samples", "backward_samples"):
            card["evaluation"].pop(key)
    assert _without_times(a) == _without_times(b)


def _place_robustbench(model_dir: Path, name: str) -> None:
    from rb_crossclass.models.sources.robustbench import build_architecture

    torch.manual_seed(0)
    net = build_architecture(name, "cifar10", "Linf")
    path = model_dir / "cifar10" / "Linf" / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict()}, path)


@needs_shared
def test_offline_robustbench_sweep_with_placed_checkpoints(tmp_path, monkeypatch):
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    import robustbench.utils

    downloads = []

    def offline(*args, **kwargs):
        downloads.append(args)
        raise ConnectionError("no network")

    monkeypatch.setattr(robustbench.utils, "download_gdrive_new", offline)
    model_dir = tmp_path / "models"
    for name in ("Ding2020MMA", "Wong2020Fast"):
        _place_robustbench(model_dir, name)
    names = ["Ding2020MMA", "Wong2020Fast", "Chen2020Adversarial", "Sehwag2021Proxy_R18"]
    data = f"npz:{SHARED_DATA / 'cifar10_partial' / 'cifar10_test_first1017.npz'}"
    report = run_sweep(tmp_path / "out", robustbench="cifar10:Linf", models=names, model_dir=model_dir,
                       official_cards=OFFICIAL_CARDS, data_dir=data, n_examples=4, batch_size=4,
                       progress=False)
    rows = report.rows
    assert [rows[n]["status"] for n in names] == ["done", "done", "not_applicable", "failed"]
    assert rows["Chen2020Adversarial"]["reason"] == "ensemble"  # decided without any download
    missing = model_dir / "cifar10" / "Linf" / "Sehwag2021Proxy_R18.pt"
    assert f"{missing} is missing" in rows["Sehwag2021Proxy_R18"]["reason"]
    assert len(downloads) == 1  # only the missing file was asked for
    card = json.loads((tmp_path / "out" / "cards" / "cifar10" / "Linf" / "Ding2020MMA.json").read_text())
    official = json.loads((OFFICIAL_CARDS / "cifar10" / "Linf" / "Ding2020MMA.json").read_text())
    assert card["name"] == official["name"] and card["venue"] == official["venue"]
    assert card["x_reported_autoattack_acc"] == official["autoattack_acc"]
    board = json.loads((tmp_path / "out" / "leaderboard" / "leaderboard.json").read_text())
    measured = {e["model_id"]: e for e in board["entries"] if e["cas"] is not None}
    assert set(measured) == {"Ding2020MMA", "Wong2020Fast"}
    assert len(board["entries"]) == len(list((OFFICIAL_CARDS / "cifar10" / "Linf").glob("*.json")))
    # the official entry keeps the official robust accuracy; our block adds the cross-class scores
    assert measured["Ding2020MMA"]["autoattack_acc"] == float(official["autoattack_acc"])


@needs_shared
def test_plan_of_a_manifest(tmp_path):
    manifest = _manifest(tmp_path, _tiny_models(tmp_path))
    assert cli.main(["sweep", "--manifest", str(manifest), "--out", str(tmp_path / "plan"), "--plan"]) == 0
    plan = json.loads((tmp_path / "plan" / "plan.json").read_text())
    verdicts = {e["name"]: (e["status"], e["reason"], e["tier"]) for e in plan["entries"]}
    assert verdicts == {"TinyConv": ("applicable", "ok", "contract"),
                        "TinyMLP": ("applicable", "ok", "contract"),
                        "TinyConvHead": ("not_applicable", "no_linear_head", "contract")}
    assert plan["counts"] == {"ok": 2, "no_linear_head": 1}
    text = (tmp_path / "plan" / "plan.md").read_text()
    assert "| ok | 2 |" in text and "TinyConvHead: **no_linear_head**" in text


def test_plan_names_robustbench_reasons_without_weights(tmp_path):
    report = plan_sweep(tmp_path, robustbench="cifar10:Linf", progress=False, contract_max_params=0,
                        models=["Chen2020Adversarial", "Bai2024MixedNUTS", "Wong2020Fast"])
    got = {e.name: (e.reason, e.tier) for e in report.entries}
    assert got == {"Chen2020Adversarial": ("ensemble", "structure"),
                   "Bai2024MixedNUTS": ("mixing_network", "structure"), "Wong2020Fast": ("ok", "structure")}


# --------------------------------------------------------------------------- manifest format
def test_manifest_schema_patterns_match_the_project_rules():
    schema = manifest_schema()
    assert schema["properties"]["eps"]["anyOf"][0]["pattern"] == EPS_PATTERN
    assert schema["$defs"]["model"]["properties"]["name"]["pattern"] == MODEL_ID_PATTERN


def test_manifest_paths_are_relative_to_its_folder(tmp_path):
    folder = tmp_path / "boards" / "mnist"
    folder.mkdir(parents=True)
    path = _manifest(folder, [
        {"name": "A", "source": "py:archs.py:build", "checkpoint": "../w/a.pt", "sha256": "AB" * 32},
        {"name": "B", "source": "timm:resnet18", "checkpoint": "https://example.org/b.pt"},
        {"name": "C", "source": "py:my_package.models:build",
         "card": {"clean_acc": 98.5, "venue": "ICLR 2020"}},
    ], eps="8/255")
    m = load_manifest(path)
    a, b, c = m.jobs
    assert a.source == f"py:{folder / 'archs.py'}:build"
    assert a.checkpoint == str(tmp_path / "boards" / "w" / "a.pt")
    assert a.sha256 == "ab" * 32
    assert b.checkpoint == "https://example.org/b.pt" and b.source == "timm:resnet18"
    assert c.source == "py:my_package.models:build" and c.card == {"clean_acc": "98.50", "venue": "ICLR 2020"}
    assert m.dataset == "mnist" and m.threat_model == "Linf" and m.eps == pytest.approx(8 / 255)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["models"][0].update(sha256="xyz"), r"field \$\.models\[0\]\.sha256: 'xyz' is not valid"),
    (lambda d: d["models"][0].update(chekpoint="a.pt"), r"field \$\.models\[0\]\.chekpoint: unknown key"),
    (lambda d: d.pop("threat_model"), r"field \$\.threat_model: missing required key"),
    (lambda d: d.update(eps="8|255"), r"field \$\.eps: '8\|255' is not valid"),
    (lambda d: d["models"][0]["card"].update(clean_acc="high"), r"models\[0\]\.card\.clean_acc"),
    (lambda d: d["models"].append(dict(d["models"][0])), r"models\[1\]\.name: 'A' is also model 0"),
    (lambda d: d["models"][0].update(name="sweep"), "reserved"),
    (lambda d: d["models"][0].update(source="torch:resnet"), r"field \$\.models\[0\]\.source"),
])
def test_bad_manifests_name_file_and_field(tmp_path, change, message):
    data = {"dataset": "mnist", "threat_model": "Linf", "eps": "0.3",
            "models": [{"name": "A", "source": "py:a.py:b", "card": {"name": "T"}}]}
    change(data)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(Exception, match=message) as err:
        load_manifest(path)
    assert str(path) in str(err.value)


def test_unreadable_manifest(tmp_path):
    with pytest.raises(ManifestError, match="not found"):
        load_manifest(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [unclosed")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_manifest(bad)


def test_published_mnist_manifest():
    m = load_manifest(ROOT / "leaderboards" / "manifests" / "mnist_Linf.yaml")
    assert [j.name for j in m.jobs] == ["Ding2019Advertorch_LeNet5_PGD", "Ding2019Advertorch_LeNet5_Clean",
                                        "Wong2020Fast_PGD_MNIST"]
    assert m.dataset == "mnist" and m.eps == pytest.approx(0.3)
    for job in m.jobs:
        assert Path(job.checkpoint).parent == ROOT.parent / "shared" / "checkpoints" / "mnist"
        assert job.source.startswith(f"py:{ROOT / 'leaderboards' / 'manifests' / 'mnist_archs.py'}:")
        assert {"name", "link", "authors", "venue", "architecture", "clean_acc"} <= set(job.card)
        if Path(job.checkpoint).is_file():  # the weights sit beside the repository (not in CI clones)
            assert sha256_file(job.checkpoint) == job.sha256


# --------------------------------------------------------------------------- CLI and helpers
@pytest.mark.parametrize("argv, message", [
    (["--out", "x"], "one of the arguments --robustbench --manifest is required"),
    (["--robustbench", "all", "--out", "x"], "--robustbench all is for --plan"),
    (["--robustbench", "mnist:Linf", "--out", "x"], "DATASET:THREAT_MODEL"),
    (["--robustbench", "cifar10:corruptions", "--out", "x"], "corruptions board can be planned"),
    (["--robustbench", "cifar10:Linf", "--models", "NoSuchModel", "--out", "x"], "no model"),
    (["--robustbench", "cifar10:Linf", "--engine", "ray", "--gpus-per-model", "-1", "--out", "x"],
     "must be a number >= 0"),
])
def test_cli_errors_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["sweep", *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("rb-crossclass sweep: error:") and message in err and "\n" not in err


def test_count_passes_counts_every_forward_and_backward(tiny_model):
    from rb_crossclass.attacks import PGDConfig
    from rb_crossclass.crossclass import score_model

    x, y = torch.rand(6, 3, 32, 32), torch.arange(6) % 10
    with count_passes(tiny_model) as counts:
        a = score_model(tiny_model, x, y, attack=PGDConfig(eps=8 / 255, steps=3), batch_size=4,
                        progress=False)
    assert counts == {"forward_passes": 2 * 5, "forward_samples": 6 * 5,
                      "backward_passes": 2 * 3, "backward_samples": 6 * 3}
    b = score_model(tiny_model, x, y, attack=PGDConfig(eps=8 / 255, steps=3), batch_size=4, progress=False)
    assert a.matrix == b.matrix and a.cas == b.cas  # counting changes no number


def test_job_result_summary_is_the_record_entry():
    r = JobResult("M", "failed", reason="boom", seconds=1.23456, passes={"forward_passes": 1}, device="cpu",
                  card={"x": 1}, record={"y": 2})
    assert r.summary() == {"status": "failed", "reason": "boom", "detail": None, "seconds": 1.235,
                           "passes": {"forward_passes": 1}, "device": "cpu", "metrics": {}}


def test_summary_totals_the_cost_of_every_model():
    """The sweep summary's last line sums wall seconds and samples over every model with a record
    (done, failed or not applicable alike) and names the devices."""
    from rb_crossclass.sweep.run import cost_total_line

    rows = {"A": {"status": "done", "seconds": 12.5, "device": "cpu",
                  "passes": {"forward_samples": 1000, "backward_samples": 400}},
            "B": {"status": "failed", "seconds": 2.25, "device": "cuda:0",
                  "passes": {"forward_samples": 24, "backward_samples": 0}},
            "C": {"status": "not_applicable", "seconds": 0.25},
            "D": {"status": "pending"}}
    assert cost_total_line(rows) == ("cost: 15.0 s of model time, 1,024 forward and 400 backward samples "
                                     "on cpu, cuda:0")
    assert cost_total_line({}) == "cost: 0.0 s of model time, 0 forward and 0 backward samples"


def test_sweep_record_key_aa_version_and_old_records_resume(tmp_path):
    """sweep.json names the AutoAttack version `aa_version` (the CLI's --aa-version); a record
    written before, with `version`, resumes as the same settings."""
    import warnings

    from rb_crossclass.sweep.record import SweepRecord

    settings = SweepSettings(dataset="cifar10", threat_model="Linf", eps=8 / 255, autoattack=True,
                             aa_version="rand")
    fingerprint = settings.fingerprint()
    assert fingerprint["aa_version"] == "rand" and "version" not in fingerprint
    with pytest.warns(DeprecationWarning, match="aa_version"):
        assert settings.version == "rand"
    old = {**{("version" if k == "aa_version" else k): v for k, v in fingerprint.items()}}
    (tmp_path / "sweep.json").write_text(json.dumps({"source": {"board": "x"}, "settings": old,
                                                     "models": {"A": {"status": "done"}}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        record = SweepRecord(tmp_path, {"board": "x"}, fingerprint)
    assert record.models == {"A": {"status": "done"}}
    other = SweepSettings(dataset="cifar10", threat_model="Linf", eps=8 / 255, autoattack=True).fingerprint()
    with pytest.raises(SweepError, match="different settings"):
        SweepRecord(tmp_path, {"board": "x"}, other)


def test_run_sweep_version_keyword_is_a_deprecated_alias(tmp_path):
    with (pytest.warns(DeprecationWarning, match="aa_version"),
          pytest.raises(SweepError, match="unknown engine")):
        run_sweep(tmp_path / "out", robustbench="cifar10:Linf", version="rand", engine="no_such_engine")
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_sweep_summary_failure_message_and_the_gpu_share_type(tmp_path):
    import argparse

    from rb_crossclass.commands.common import non_negative_float as gpus_per_model_arg
    from rb_crossclass.sweep import SweepReport, failure_message, sweep_summary

    assert gpus_per_model_arg("0.25") == 0.25 and gpus_per_model_arg("2") == 2.0
    for bad, message in (("x", "must be a number, got 'x'"), ("-1", "must be a number >= 0"),
                         ("nan", "must be a number >= 0")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            gpus_per_model_arg(bad)
    counts = {"done": 0, "not_applicable": 0, "failed": 1, "pending": 0}
    report = SweepReport(tmp_path, "cifar10", "Linf", 8 / 255, {"M": {"status": "failed", "reason": "boom"}},
                         counts, 0, None, leaderboard_note="no leaderboard: nothing scored")
    lines = sweep_summary(report).splitlines()
    assert lines[2].split()[:3] == ["M", "failed", "boom"]
    # the note only when a model was done
    assert lines[-1] == f"wrote {tmp_path / 'sweep.json'}, no cards (no model was scored)"
    assert failure_message(report) == ("1 model(s) failed (reasons above and in sweep.json); rerun the same "
                                       "command to retry them: exit status 1")
    (tmp_path / "cards" / "cifar10").mkdir(parents=True)
    (tmp_path / "cards" / "cifar10" / "M.json").write_text("{}")
    report.counts.update(done=1, failed=0)
    report.leaderboard = tmp_path / "leaderboard"
    lines = sweep_summary(report).splitlines()
    assert lines[-2:] == [f"wrote {tmp_path / 'sweep.json'}, cards in {tmp_path / 'cards'}, leaderboard "
                          f"{tmp_path / 'leaderboard'}", "no leaderboard: nothing scored"]
    assert failure_message(report) is None
    with pytest.raises(SweepError, match="--robustbench all is for --plan"):
        run_sweep(tmp_path / "all", robustbench="all")
