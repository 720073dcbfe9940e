"""evaluate: exact agreement with a direct pyautoattack run, kill-and-resume, 2-rank sharding,
the robustbench source offline, cards and CAS on AutoAttack's own examples."""

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

from rb_crossclass.cards import load_card
from rb_crossclass.cli import main
from rb_crossclass.evaluate import (
    AutoAttackConfig,
    EvalState,
    EvaluateError,
    PassCounter,
    evaluate_model,
    model_digest,
    result_card,
    run_autoattack,
    summary_table,
    tensor_digest,
)
from rb_crossclass.models import wrap_model
from rb_crossclass.scoring import score_examples

from conftest import (
    CIFAR_TEST_NPZ,
    OFFICIAL_CARDS,
    direct_pyautoattack,
    needs_shared,
    tiny_convnet,
    train_briefly,
)

pytestmark = needs_shared

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
EPS = 2 / 255
N = 24
# the per-batch / per-attack config of the resume and sharding tests (cheap: 100 iterations each)
CFG_B = AutoAttackConfig(eps=EPS, version="custom", attacks=("apgd-ce", "apgd-dlr"), batch_size=4)


@pytest.fixture(scope="session")
def one_thread():
    """Subprocesses run with one thread; in-process references do too, so floats agree exactly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, cifar_train, one_thread):
    """A TinyConvNet trained 3 epochs (~3 s) on real CIFAR-10: ~33% clean, some points robust at
    ε=2/255 and some not. Returns (model, checkpoint path)."""
    net = train_briefly(tiny_convnet(), *cifar_train, epochs=3)
    path = tmp_path_factory.mktemp("tiny") / "tiny.pt"
    torch.save(net.state_dict(), path)
    return wrap_model(net).eval(), path


@pytest.fixture(scope="session")
def points(cifar_test):
    x, y = cifar_test
    return x[:N].contiguous(), y[:N]


@pytest.fixture(scope="session")
def direct_b(trained, points):
    return direct_pyautoattack(trained[0], *points, CFG_B)


@pytest.fixture(scope="session")
def single_b(trained, points, one_thread):
    """Our in-process single-rank evaluation with CFG_B."""
    return evaluate_model(trained[0], *points, CFG_B, class_names=[str(i) for i in range(10)],
                          model_name="tiny", dataset="cifar10", progress=False)


def _cli_args(ckpt: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model", f"py:{ROOT / 'tests' / 'conftest.py'}:tiny_convnet",
            "--checkpoint", str(ckpt), "--dataset", f"npz:{CIFAR_TEST_NPZ}", "--card-dataset", "cifar10",
            "--n-examples", str(N), "--eps", "2/255", "--aa-version", "custom",
            "--attacks", *CFG_B.attacks, "--batch-size", str(CFG_B.batch_size), "--device", "cpu",
            "--out", str(out), "--no-progress", *extra]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def test_matches_direct_pyautoattack_with_targeted_attack(trained, points, one_thread):
    """Exact agreement (flags, x_adv, y_adv) including APGD-T's 9 target classes."""
    model, _ = trained
    x, y = points
    cfg = AutoAttackConfig(eps=EPS, version="custom", attacks=("apgd-ce", "apgd-t"), batch_size=8)
    ours = run_autoattack(model, x, y, cfg, progress=False)
    x_adv, y_adv, flags = direct_pyautoattack(model, x, y, cfg)
    assert torch.equal(ours.robust_flags, flags)
    assert torch.equal(ours.x_adv, x_adv) and torch.equal(ours.y_adv, y_adv)
    clean = model(x).argmax(1).eq(y)
    assert torch.equal(ours.clean_flags, clean)
    # the model is neither trivially robust nor trivially broken at this ε
    assert 0 < int(flags.sum()) < int(clean.sum())
    assert ours.robust_after["clean"] == int(clean.sum()) and ours.robust_after["apgd-t"] == int(flags.sum())
    assert ours.passes["backward_passes"] > 0 and ours.passes["forward_samples"] >= N


def test_evaluate_model_result_and_cas_on_autoattack_examples(trained, points, direct_b, single_b):
    model, _ = trained
    x, y = points
    x_adv, _, flags = direct_b
    res = single_b
    assert res.robust_flag_tensor().tolist() == flags.tolist()
    assert res.robust_correct == int(flags.sum()) and res.robust_accuracy == int(flags.sum()) / N
    assert res.clean_correct == int(model(x).argmax(1).eq(y).sum())
    # CAS comes from AutoAttack's own examples, not a second attack: bit for bit with the model as
    # it is (aa_exact: bare pyautoattack's arithmetic); with the faster attack model the examples
    # differ from bare pyautoattack's in float rounding only
    ref = score_examples(model, x, x_adv, y, batch_size=CFG_B.batch_size, progress=False)
    exact = evaluate_model(model, x, y, CFG_B, class_names=[str(i) for i in range(10)], model_name="tiny",
                           dataset="cifar10", progress=False, pgd=False, aa_exact=True)
    assert exact.attack_model["exact"] and exact.robust_flags == res.robust_flags
    assert exact.cross_class["cas"] == pytest.approx(ref.cas, rel=1e-12)
    assert exact.cross_class["matrix"] == ref.matrix
    assert res.cross_class["cas"] == pytest.approx(ref.cas, rel=1e-6)
    got = [v for row in res.cross_class["matrix"] for v in row]
    want = [v for row in ref.matrix for v in row]
    assert [v is None for v in got] == [v is None for v in want]
    assert [v for v in got if v is not None] == pytest.approx([v for v in want if v is not None], abs=1e-5)
    assert res.cross_class["attack"]["name"] == "autoattack"
    assert res.batches_run == sum(-(-res.robust_after_attack[s] // 4) for s in ("clean", "apgd-ce"))
    card = result_card(res, name="Tiny", architecture="TinyConvNet")
    assert card["autoattack_acc"] == f"{100 * res.robust_accuracy:.2f}"
    assert card["evaluation"]["attacks"] == ["apgd-ce", "apgd-dlr"]
    # the card shows the paper's PGD-20 protocol on top, AutoAttack's examples labelled beside it
    assert card["cross_class"]["attack"]["name"] == "pgd" and card["cross_class"]["attack"]["steps"] == 20
    assert card["cross_class"]["cas"] == res.cross_class_pgd["cas"]
    assert card["cross_class"]["autoattack"]["cas"] == res.cross_class["cas"]
    per_class = card["evaluation"]["per_class"]
    robust_by_class = [flags[y == i].float().mean().item() if (y == i).any() else None for i in range(10)]
    assert per_class["robust_accuracy"] == pytest.approx(robust_by_class)
    lo, hi = card["evaluation"]["intervals"]["autoattack_accuracy"]
    assert lo <= res.robust_accuracy <= hi
    # 24 points over 10 classes: too few a class for a CAS interval, so it is withheld, not faked
    assert card["cross_class"]["intervals"]["cas_withheld"].startswith("withheld (fewer than")
    assert "cas" not in card["cross_class"]["intervals"]
    table = summary_table(res)
    assert "apgd-dlr" in table and "AutoAttack accuracy" in table
    assert table.count("(95% CI withheld (fewer than 20 points in some class))") == 2  # PGD-20 and AA CAS
    assert "AutoAttack attacked: a faster copy of the model (frozen parameters, channels_last" in table
    # what it cost, on the card (schema-checked by result_card) and per point
    cost = card["evaluation"]["cost"]
    assert cost["forward_samples"] == res.passes["forward_samples"] > 0 and cost["backward_samples"] > 0
    assert cost["device"] == "cpu" and cost["threads"] == torch.get_num_threads()
    assert cost["autoattack_dtype"] == cost["scoring_dtype"] == "float32"
    assert 0 < cost["autoattack_seconds"] and 0 < cost["scoring_seconds"]
    assert cost["autoattack_seconds"] + cost["scoring_seconds"] <= res.seconds + 1e-6
    from rb_crossclass.cards.flags import unpack_flags

    assert unpack_flags(card["evaluation"]["point_flags"]["robust"], N) == flags.tolist()


def test_cli_killed_mid_run_resumes_to_the_same_result(trained, direct_b, tmp_path):
    _, ckpt = trained
    _, _, flags = direct_b
    state, out = tmp_path / "state", tmp_path / "out"
    cmd = [sys.executable, "-m", "rb_crossclass", *_cli_args(ckpt, out, "--state", str(state), "--no-cas")]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while not list(state.glob("apgd-ce/batch_*.pt")):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no batch finished in time"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)  # at an arbitrary point after the first batch
    finally:
        proc.wait()
    assert not (out / "eval.json").exists()
    done_before = {p.relative_to(state) for p in state.rglob("batch_*.pt")}
    assert done_before and not list(state.rglob("*.tmp"))
    rerun = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    res = json.loads((out / "eval.json").read_text())
    assert res["robust_flags"] == "".join("1" if f else "0" for f in flags.tolist())
    total = sum(-(-res["robust_after_attack"][s] // 4) for s in ("clean", "apgd-ce"))
    assert res["batches_loaded"] == len(done_before)  # finished batches were not repeated
    assert res["batches_loaded"] + res["batches_run"] == total
    assert "resumed" in rerun.stdout
    # a state folder of another evaluation is refused with a clear message
    other_cmd = [*cmd, "--eps", "3/255"]  # the last --eps wins
    other = subprocess.run(other_cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert other.returncode == 1 and "belongs to another evaluation" in other.stderr


def test_torchrun_two_ranks_match_the_single_process_run(trained, points, direct_b, single_b, tmp_path):
    model, ckpt = trained
    x, y = points
    single = single_b
    out = tmp_path / "out"
    cmd = [str(VENV_BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "rb_crossclass",
           *_cli_args(ckpt, out)]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads((out / "eval.json").read_text())
    assert res["world_size"] == 2
    direct_flags = "".join("1" if f else "0" for f in direct_b[2].tolist())
    assert res["robust_flags"] == single.robust_flags == direct_flags
    assert res["robust_after_attack"] == single.robust_after_attack
    # the two shards together ran exactly the single run's batches: same pass counts
    assert res["passes"] == single.passes and res["batches_run"] == single.batches_run
    assert res["cross_class"]["cas"] == pytest.approx(single.cross_class["cas"], rel=1e-12)
    assert res["cross_class"]["matrix"] == single.cross_class["matrix"]
    card = load_card(out / "tiny_convnet.json")
    assert card["dataset"] == "cifar10" and card["evaluation"]["world_size"] == 2


def test_robustbench_source_offline_prefills_the_official_card(tmp_path, monkeypatch, capsys):
    """robustbench:Wong2020Fast with a checkpoint we place ourselves (no download)."""
    if OFFICIAL_CARDS is None or not OFFICIAL_CARDS.is_dir():
        pytest.skip("official cards not present")
    from rb_crossclass.compat import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    net = model_dicts[BenchmarkDataset("cifar10")][ThreatModel("Linf")]["Wong2020Fast"]["model"]()
    with torch.no_grad():  # a head that always says "truck": deterministic and cheap (no point robust)
        net.linear.weight.mul_(1e-3)
        net.linear.bias.zero_()
        net.linear.bias[9] = 100.0
    model_dir = tmp_path / "models"
    (model_dir / "cifar10" / "Linf").mkdir(parents=True)
    torch.save(net.state_dict(), model_dir / "cifar10" / "Linf" / "Wong2020Fast.pt")
    out = tmp_path / "out"
    rc = main(["evaluate", "--model", "robustbench:Wong2020Fast", "--model-dir", str(model_dir),
               "--dataset", f"npz:{CIFAR_TEST_NPZ}", "--card-dataset", "cifar10", "--n-examples", "6",
               "--batch-size", "6", "--official-cards", str(OFFICIAL_CARDS), "--out", str(out),
               "--no-progress", "--device", "cpu"])
    assert rc == 0
    card = load_card(out / "Wong2020Fast.json")
    official = load_card(OFFICIAL_CARDS / "cifar10" / "Linf" / "Wong2020Fast.json")
    for key in ("name", "link", "authors", "venue", "architecture", "additional_data", "reported"):
        assert card[key] == official[key]
    y = torch.from_numpy(__import__("numpy").load(CIFAR_TEST_NPZ)["y"][:6])
    expected = f"{100 * float((y == 9).float().mean()):.2f}"
    assert card["clean_acc"] == expected and card["autoattack_acc"] == expected
    assert card["evaluation"]["autoattack_version"] == "standard" and card["eps"] == "8/255"
    assert "cross_class" in card
    # descriptive flags win over the official card's fields; venue must be RobustBench's "Venue Year"
    base_args = ["evaluate", "--model", "robustbench:Wong2020Fast", "--model-dir", str(model_dir),
                 "--dataset", f"npz:{CIFAR_TEST_NPZ}", "--card-dataset", "cifar10", "--n-examples", "6",
                 "--batch-size", "6", "--official-cards", str(OFFICIAL_CARDS), "--no-progress", "--no-cas"]
    rc = main([*base_args, "--out", str(tmp_path / "flags"), "--title", "Mine", "--venue", "ICML 2099",
               "--reported", "12.5", "--footnote", "a note", "--architecture", "PreActResNet-18"])
    assert rc == 0
    card = load_card(tmp_path / "flags" / "Wong2020Fast.json")
    assert (card["name"], card["venue"], card["reported"], card["footnote"], card["architecture"]) == (
        "Mine", "ICML 2099", "12.50", "a note", "PreActResNet-18")
    assert card["authors"] == official["authors"]
    capsys.readouterr()
    assert main([*base_args, "--out", str(tmp_path / "bad"), "--venue", "zoo"]) == 1
    assert "argument --venue: must end with the year" in capsys.readouterr().err
    assert main([*base_args, "--out", str(tmp_path / "bad"), "--reported", "120"]) == 1
    assert "argument --reported: must be between 0 and 100" in capsys.readouterr().err
    # --from-official offline: a clear error, no hang
    monkeypatch.setenv("RB_CROSSCLASS_OFFICIAL_URL", "http://127.0.0.1:9/model_info")
    rc = main(["evaluate", "--model", "robustbench:Wong2020Fast", "--model-dir", str(model_dir),
               "--dataset", f"npz:{CIFAR_TEST_NPZ}", "--card-dataset", "cifar10", "--n-examples", "6",
               "--from-official", "--out", str(out), "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "--from-official: could not download" in err and "--official-cards" in err


@needs_shared
def test_bf16_refused_in_one_line_where_the_cpu_lacks_it(tmp_path, capsys, monkeypatch):
    from rb_crossclass.core import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    code = main(["evaluate", "--model", f"py:{Path(__file__).parent / 'conftest.py'}:tiny_convnet",
                 "--dataset", f"npz:{CIFAR_TEST_NPZ}", "--n-examples", "4", "--device", "cpu", "--bf16",
                 "--no-progress", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("rb-crossclass evaluate: error: --bf16: this CPU has no native bf16")


def test_config_errors_are_clear():
    with pytest.raises(EvaluateError, match="needs --attacks"):
        AutoAttackConfig(version="custom")
    with pytest.raises(EvaluateError, match="needs --aa-version custom"):
        AutoAttackConfig(attacks=("apgd-ce",))
    with pytest.raises(EvaluateError, match="unknown attacks"):
        AutoAttackConfig(version="custom", attacks=("pgd",))
    with pytest.raises(EvaluateError, match="eps must be a finite number > 0"):
        AutoAttackConfig(eps=0.0)


def test_state_refuses_another_evaluation(tmp_path):
    EvalState(tmp_path, {"a": 1})
    EvalState(tmp_path, {"a": 1})
    with pytest.raises(EvaluateError, match=r"differs in \['a'\]"):
        EvalState(tmp_path, {"a": 2})


def test_digests_cover_every_state_tensor():
    bn = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))  # 0-d int buffer
    before = model_digest(bn)
    assert model_digest(bn) == before and len(before) == 64
    bn[1].num_batches_tracked += 1
    assert model_digest(bn) != before
    assert tensor_digest(torch.zeros(2)) != tensor_digest(torch.zeros(3))


def test_pass_counter_counts_forward_and_backward():
    counter = PassCounter(torch.nn.Linear(4, 3))
    x = torch.randn(5, 4, requires_grad=True)
    out = counter(x)
    out.sum().backward()
    with torch.no_grad():
        counter(torch.randn(2, 4))
    assert counter.counts() == {"forward_passes": 2, "forward_samples": 7,
                                "backward_passes": 1, "backward_samples": 5}
    assert (counter.forward_calls, counter.forward_samples, counter.backward_calls,
            counter.backward_samples) == (2, 7, 1, 5)
    counter.reset()
    assert set(counter.counts().values()) == {0}


def test_the_wrapper_and_the_hook_count_passes_alike(tiny_model):
    """PassCounter (a wrapper) and count_passes (a hook at the model's input normalization) share
    one tally: the same forwards and backwards give the same counts, live during the block."""
    from rb_crossclass.evaluate.passes import PASS_KEYS, count_passes

    x = torch.rand(3, 3, 32, 32, requires_grad=True)
    counter = PassCounter(tiny_model)
    counter(x).sum().backward()
    with torch.no_grad():
        counter(x[:2])
    with count_passes(tiny_model) as live:
        tiny_model(x).sum().backward()
        assert live["backward_samples"] == 3  # counted as it happens, not at the end
        with torch.no_grad():
            tiny_model(x[:2])
    assert tuple(live) == PASS_KEYS and live == counter.counts()


@pytest.mark.slow
def test_standard_version_matches_direct_pyautoattack(trained, cifar_test, one_thread):
    """version='standard' (APGD-CE, APGD-T, FAB-T, Square) on 12 points: exact agreement."""
    model, _ = trained
    x, y = cifar_test
    x, y = x[:12].contiguous(), y[:12]
    cfg = AutoAttackConfig(eps=EPS, batch_size=6)
    ours = run_autoattack(model, x, y, cfg, progress=False)
    x_adv, y_adv, flags = direct_pyautoattack(model, x, y, cfg)
    assert ours.attacks == ["apgd-ce", "apgd-t", "fab-t", "square"]
    assert set(ours.robust_after) == {"clean", *ours.attacks}  # every attack had points to attack
    assert torch.equal(ours.robust_flags, flags) and torch.equal(ours.x_adv, x_adv)
    assert torch.equal(ours.y_adv, y_adv)


def test_cli_aa_exact_attacks_the_model_as_it_is(trained, direct_b, tmp_path, one_thread):
    """``evaluate --aa-exact``: bare pyautoattack's flags, and the card says the model was attacked
    as it is; without the flag the card records the faster model's speed-ups."""
    _, ckpt = trained
    _, _, flags = direct_b
    for extra, exact in ((["--aa-exact"], True), ([], False)):
        out = tmp_path / ("exact" if exact else "fast")
        assert main(_cli_args(ckpt, out, "--no-cas", *extra)) == 0
        record = json.loads((out / "eval.json").read_text())
        assert record["robust_flags"] == "".join("1" if f else "0" for f in flags.tolist())
        card = load_card(next(p for p in out.glob("*.json") if p.name != "eval.json"))
        model = card["evaluation"]["cost"]["autoattack_model"]
        assert model["exact"] is exact and model["frozen_parameters"] is (not exact)
