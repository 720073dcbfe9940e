"""benchmarks/: the GPU check runs end to end on CPU and writes what it promises (throughput,
the AutoAttack ratio and flips against bare pyautoattack, counted FLOPs and MFU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    cmd = ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--model", "tiny", "--quick",
           "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["model"] == "tiny" and report["threads"] == 1
    fp32 = report["scorer"]["float32"]
    assert fp32["images"] == 4 and fp32["images_per_s"] > 0
    # FLOPs counted, not guessed: TinyBNNet's two convolutions and head on 32x32 inputs, forward
    # 2*(3*16*9*32*32 + 16*32*9*16*16 + 32*10) per image; the scorer's pass runs 21 forwards and
    # 20 input-backwards (each ~2 forwards' FLOPs for conv inputs) plus attribution
    forward = 2 * (3 * 16 * 9 * 32 * 32 + 16 * 32 * 9 * 16 * 16 + 32 * 10)
    assert 21 * forward <= fp32["flops_per_image"] <= 80 * forward
    assert 0 < fp32["mfu_vs_matmul_peak"] and fp32["matmul_peak_tflops"] > 0
    assert "mfu_vs_vendor_peak" not in fp32  # no vendor peak on a CPU
    aa = report["autoattack"]
    for name in ("bare", "ours", "ours_exact"):
        assert aa[name]["images_per_s"] > 0
    assert aa["ours_exact"]["flips_vs_bare"] == 0  # the model as it is: bare pyautoattack's flags
    assert aa["ours"]["speedup_vs_bare"] > 0 and aa["ours"]["attack_model"]["fold_batch_norms"] == 2
    bf16 = report["scorer"]["bfloat16"]
    from rb_crossclass.core.runtime import bf16_unsupported_reason

    reason = bf16_unsupported_reason(torch.device("cpu"))
    assert (bf16 == {"skipped": reason}) if reason else bf16["images_per_s"] > 0
    assert "AutoAttack ours" in proc.stdout and "GFLOP/image counted" in proc.stdout


def test_cli_startup_benchmark_runs_and_writes_its_record(tmp_path):
    """The start-up benchmark (a measurement, not a timed test): one run of two cases."""
    out = tmp_path / "cli_startup.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_cli_startup.py"), "--runs", "1",
           "--cases", "help", "sweep error", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert set(report["cases"]) == {"help", "sweep error"}
    top = report["cases"]["help"]
    assert top["median_seconds"] > 0 and top["runs"] == 1 and top["heavy_imports"] == []
    assert report["cases"]["sweep error"]["exit_status"] == 1
    assert report["target_seconds"] == 1.5 and "slowest median" in proc.stdout
