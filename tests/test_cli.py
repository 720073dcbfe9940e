"""CLI skeleton: every subcommand is listed; `python -m rb_crossclass` works; errors are one line."""

from __future__ import annotations

import subprocess
import sys

from rb_crossclass import cli


def test_help_lists_all_subcommands(capsys):
    parser = cli.build_parser()
    help_text = parser.format_help()
    for name in cli.COMMANDS:
        assert name in help_text
    assert set(cli.COMMANDS) == {"train", "evaluate", "score", "card", "leaderboard", "zoo",
                                 "synthetic", "demo", "reproduce", "sweep"}


def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "rb_crossclass", "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "score" in out.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_train_data_dir_flag_sets_the_config(capsys, tmp_path):
    folder = tmp_path / "my data: cifar"
    assert cli.main(["train", "--config", "paper_pgd_at", "--data-dir", str(folder), "--print-config"]) == 0
    import yaml

    assert yaml.safe_load(capsys.readouterr().out)["data"]["data_dir"] == str(folder)
    # the error for missing files names the folder and the flag that exists
    assert cli.main(["train", "--config", "paper_pgd_at", "--data-dir", str(folder),
                     "--set", "data.n_train=8", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert str(folder) in err and "--data-dir" in err
