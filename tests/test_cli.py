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
