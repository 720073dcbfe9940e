"""``rb-crossclass score`` end to end on real data (partial CIFAR-10, MNIST) and the heatmaps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from rb_crossclass.cli import main
from rb_crossclass.figures import heatmap_size_px, plot_attribution_matrix, plot_matrix_difference

from conftest import CIFAR_TEST_NPZ, SHARED_DATA, needs_shared, pyautoattack_checkpoint

TESTS = Path(__file__).resolve().parent
REQUIRED = ("cas", "normalized_cas", "fsi", "clean_cas", "matrix", "clean_matrix", "robust_accuracy",
            "clean_accuracy", "n_examples", "per_class_counts", "attack", "model", "seconds", "seed",
            "versions", "clean_fsi", "clean_normalized_cas", "top_pairs", "empty_classes")


def read_png(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return imread(str(path))


def assert_heatmap(path: Path, k: int) -> None:
    img = read_png(path)
    w, h = heatmap_size_px(k)
    assert img.shape[:2] == (h, w)
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # drawn, not blank
    # saturated red (C=1 on the diagonal) is present
    assert ((rgb[..., 0] > 0.35) & (rgb[..., 2] < 0.2)).sum() > 100


def run_cli(argv, capsys):
    code = main(["score", "--no-progress", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@needs_shared
def test_score_cifar_partial_tiny_model(tmp_path, capsys):
    out = tmp_path / "a"
    code, stdout, _ = run_cli([
        "--model", f"py:{TESTS / 'conftest.py'}:tiny_convnet", "--dataset", f"npz:{CIFAR_TEST_NPZ}",
        "--dataset-name", "cifar10", "--n-examples", "40", "--steps", "2", "--eps", "8/255", "--seed", "5",
        "--batch-size", "16",
        "--device", "cpu", "--out", str(out)], capsys)
    assert code == 0
    rec = json.loads((out / "crossclass.json").read_text())
    assert all(key in rec for key in REQUIRED)
    assert rec["n_examples"] == 40 and sum(rec["per_class_counts"]) == 40
    assert len(rec["matrix"]) == 10 and all(len(r) == 10 for r in rec["matrix"])
    assert rec["attack"] == {"name": "pgd", "norm": "Linf", "eps": pytest.approx(8 / 255), "steps": 2,
                             "step_size": pytest.approx(2 / 255), "random_start": True, "restarts": 1,
                             "targeted": False, "seed": 5}
    assert rec["seed"] == 5 and rec["eps_string"] == "8/255"
    assert rec["class_names"][0] == "airplane"  # from --dataset-name cifar10
    cas = sum(max(v, 0) for i, row in enumerate(rec["matrix"]) for j, v in enumerate(row) if i != j)
    assert rec["cas"] == pytest.approx(cas)
    assert rec["normalized_cas"] == pytest.approx(cas / 90)
    assert 1 <= rec["fsi"] <= 10 and 0 <= rec["robust_accuracy"] <= rec["clean_accuracy"] + 1e-9
    assert "torch" in rec["versions"] and rec["model"]["source"].endswith("tiny_convnet")
    assert_heatmap(out / "attribution_matrix.png", 10)
    assert_heatmap(out / "attribution_matrix_clean.png", 10)
    assert f"CAS              {rec['cas']:.4g}" in stdout and "FSI" in stdout and "seconds" in stdout

    # a clean-only score of the same model, compared against the first one
    out2 = tmp_path / "b"
    code, stdout, _ = run_cli([
        "--model", f"py:{TESTS / 'conftest.py'}:tiny_convnet", "--dataset", f"npz:{CIFAR_TEST_NPZ}",
        "--n-examples", "40", "--attack", "none", "--out", str(out2),
        "--compare", str(out / "crossclass.json")], capsys)
    assert code == 0
    rec2 = json.loads((out2 / "crossclass.json").read_text())
    assert rec2["attack"] is None and rec2["matrix"] == rec2["clean_matrix"]
    assert np.allclose(np.array(rec2["clean_matrix"], float), np.array(rec["clean_matrix"], float), atol=1e-6)
    assert rec2["compare"]["cas_difference"] == pytest.approx(rec2["cas"] - rec["cas"])
    diff = read_png(out2 / "attribution_matrix_diff.png")
    assert diff.shape[:2] == heatmap_size_px(10)[::-1] and diff[..., :3].std() > 0.05


@needs_shared
def test_score_mnist_tiny_model(tmp_path, capsys):
    out = tmp_path / "m"
    code, stdout, _ = run_cli([
        "--model", f"py:{TESTS / 'models_for_tests.py'}:tiny_mnist_convnet", "--dataset", "mnist",
        "--data-dir", str(SHARED_DATA), "--n-examples", "30", "--steps", "1", "--eps", "0.3",
        "--out", str(out)], capsys)
    assert code == 0, stdout
    rec = json.loads((out / "crossclass.json").read_text())
    assert rec["n_examples"] == 30 and rec["dataset"] == "mnist" and rec["class_names"][3] == "3"
    assert rec["attack"]["eps"] == pytest.approx(0.3) and rec["attack"]["step_size"] == pytest.approx(0.075)
    # some digits are missing from the first 30 test images: reported, rows left undefined
    for i in rec["empty_classes"]:
        assert rec["per_class_counts"][i] == 0 and all(v is None for v in rec["matrix"][i])
    assert_heatmap(out / "attribution_matrix.png", 10)
    assert_heatmap(out / "attribution_matrix_clean.png", 10)


@needs_shared
def test_compare_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"matrix": [[1.0]]}))
    args = ["--model", f"py:{TESTS / 'conftest.py'}:tiny_convnet", "--dataset", f"npz:{CIFAR_TEST_NPZ}",
            "--n-examples", "4", "--attack", "none", "--out", str(tmp_path / "o")]
    code, _, err = run_cli([*args, "--compare", str(bad)], capsys)
    assert code == 1 and "10x10 'matrix'" in err and not (tmp_path / "o" / "crossclass.json").exists()
    code, _, err = run_cli([*args, "--compare", str(tmp_path / "missing.json")], capsys)
    assert code == 1 and "not found" in err


def test_heatmaps_mark_undefined_cells_and_scale_with_k(tmp_path):
    m = [[1.0, 0.5, None], [0.5, 1.0, None], [None, None, None]]
    p = plot_attribution_matrix(m, ["a", "b", "c"], tmp_path / "m.png")
    img = read_png(p)
    assert img.shape[:2] == heatmap_size_px(3)[::-1]
    grey = (np.abs(img[..., 0] - 200 / 255) < 0.02) & (np.abs(img[..., 2] - 200 / 255) < 0.02)
    assert grey.sum() > 500  # the n/a cells
    big = np.eye(100).tolist()
    p = plot_attribution_matrix(big, None, tmp_path / "big.png")
    assert read_png(p).shape[:2] == heatmap_size_px(100)[::-1]
    p = plot_matrix_difference(m, np.zeros((3, 3)), ["a", "b", "c"], tmp_path / "d.png")
    assert read_png(p).shape[:2] == heatmap_size_px(3)[::-1]
    with pytest.raises(ValueError, match="cannot subtract"):
        plot_matrix_difference(m, np.zeros((2, 2)), None, tmp_path / "e.png")
    assert not math.isnan(heatmap_size_px(10)[0])


@pytest.mark.slow
@needs_shared
def test_score_pyautoattack_resnet18(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, _ = run_cli([
        "--model", "py:pyautoattack.examples.resnet:ResNet18", "--checkpoint", str(pyautoattack_checkpoint()),
        "--dataset", f"npz:{CIFAR_TEST_NPZ}", "--n-examples", "20", "--out", str(out)], capsys)
    assert code == 0
    rec = json.loads((out / "crossclass.json").read_text())
    assert rec["attack"]["steps"] == 20 and rec["n_examples"] == 20
    assert rec["clean_accuracy"] >= 0.85  # standard-trained: accurate on clean inputs ...
    assert rec["robust_accuracy"] <= 0.1  # ... and not robust to PGD-20 at 8/255
    assert rec["empty_classes"] == [2, 4]  # no bird or deer among the first 20 test images
    assert rec["model"]["checkpoint"].endswith("model_test.pt")
    assert_heatmap(out / "attribution_matrix.png", 10)
    assert_heatmap(out / "attribution_matrix_clean.png", 10)


@needs_shared
@pytest.mark.slow
@pytest.mark.parametrize("threat_model, eps", [("Linf", "8/255"), ("L2", "0.5")])
def test_torchrun_two_ranks_score_exactly_like_one_process(tmp_path, capsys, threat_model, eps):
    """Sharded PGD scoring: rank r attacks batches b % 2 == r, skipping the others' random starts,
    and the all-reduced accumulators give the one-process numbers bit for bit."""
    import os
    import subprocess
    import sys

    args = ["--model", f"py:{TESTS / 'conftest.py'}:tiny_convnet", "--dataset", f"npz:{CIFAR_TEST_NPZ}",
            "--dataset-name", "cifar10", "--n-examples", "24", "--batch-size", "8", "--steps", "3",
            "--threat-model", threat_model, "--eps", eps, "--seed", "3", "--device", "cpu"]
    code, _, _ = run_cli([*args, "--out", str(tmp_path / "one")], capsys)
    assert code == 0
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "rb_crossclass", "score", "--no-progress", *args, "--out", str(tmp_path / "two")]
    run = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "crossclass.json").read_text())
    two = json.loads((tmp_path / "two" / "crossclass.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    for key in ("cas", "clean_cas", "fsi", "matrix", "clean_matrix", "robust_accuracy", "clean_accuracy",
                "per_class_counts"):
        assert two[key] == one[key], key
    assert one["matrix"] != one["clean_matrix"]  # the attack (and its random starts) moved the features


@needs_shared
def test_bf16_refused_in_one_line_where_the_cpu_lacks_it(tmp_path, capsys, monkeypatch):
    from rb_crossclass.core import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2"}))
    code, _, err = run_cli([
        "--model", f"py:{TESTS / 'conftest.py'}:tiny_convnet", "--dataset", f"npz:{CIFAR_TEST_NPZ}",
        "--n-examples", "4", "--device", "cpu", "--bf16", "--out", str(tmp_path / "o")], capsys)
    assert code == 1
    assert err.strip().splitlines() == [
        "rb-crossclass score: error: --bf16: this CPU has no native bf16 arithmetic (none of the flags "
        "avx512_bf16, amx_bf16, bf16); run in float32 instead (leave bf16 off)"]
    assert not (tmp_path / "o").exists()


@needs_shared
def test_summary_maximum_counts_only_classes_with_samples(tmp_path, capsys):
    """The first 12 CIFAR-10 test images hold 6 classes: CAS is at most 6*5 = 30 there, and the
    summary says so (normalized CAS divides by the same)."""
    code, stdout, _ = run_cli([
        "--model", f"py:{TESTS / 'conftest.py'}:tiny_convnet", "--dataset", f"npz:{CIFAR_TEST_NPZ}",
        "--dataset-name", "cifar10", "--n-examples", "12", "--steps", "1", "--device", "cpu",
        "--out", str(tmp_path / "s")], capsys)
    assert code == 0
    rec = json.loads((tmp_path / "s" / "crossclass.json").read_text())
    assert len(rec["empty_classes"]) == 4
    assert "max K(K-1) = 30 over the 6 classes with samples" in stdout
    assert rec["normalized_cas"] == pytest.approx(rec["cas"] / 30)


def test_score_without_an_attack_prints_no_robust_accuracy(tmp_path, capsys):
    """--attack none scores clean inputs only: the summary shows no robust accuracy (it printed
    the clean accuracy again as 'robust'), and says what CAS's maximum counts."""
    from rb_crossclass.cli import main
    from rb_crossclass.core import MISSING

    assert main(["score", "--model", "zoo:RBCrossclass2025CPU_PGD-AT", "--dataset", "sample:cifar10",
                 "--n-examples", "20", "--attack", "none", "--no-progress", "--device", "cpu",
                 "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert f"robust {MISSING} (no attack)" in out and "max K(K-1) = " in out
