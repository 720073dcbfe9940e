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


# --------------------------------------------------------------------------- start-up (not timed)
def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (printed one per line)."""
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(out.stdout.split())


HEAVY = ("torch", "numpy", "timm", "robustbench", "ray", "matplotlib")


def test_help_imports_no_heavy_library():
    """`rb-crossclass --help` parses before any library is imported (lazy command modules)."""
    modules = _modules_after("import contextlib, io\nfrom rb_crossclass import cli\n"
                             "with contextlib.redirect_stdout(io.StringIO()):\n"
                             "    assert cli.main(['--help']) == 0\n")
    assert not [m for m in HEAVY if m in modules]
    assert not [m for m in modules if m.startswith("rb_crossclass.commands.")]  # no command module


def test_subpackages_import_lazily():
    """Importing every subpackage costs nothing; a constant argparse needs imports only its home."""
    from rb_crossclass.cli import COMMANDS

    assert COMMANDS
    packages = ["attacks", "cards", "core", "crossclass", "data", "evaluate", "figures", "leaderboard",
                "models", "models.sources", "recipes", "reproduce", "sweep", "synthetic", "train", "zoo"]
    code = "\n".join(f"import rb_crossclass.{p}" for p in packages)
    assert not [m for m in HEAVY if m in _modules_after(code)]
    code = ("from rb_crossclass.evaluate import VERSIONS\nfrom rb_crossclass.sweep import available_engines\n"
            "from rb_crossclass.synthetic import DEFAULT_RECIPES\n"
            "from rb_crossclass.core import THREAT_MODELS\n"
            "assert available_engines()[:2] == ['local', 'ray'] and 'custom' in VERSIONS")
    modules = _modules_after(code)
    assert not [m for m in HEAVY if m in modules]
    assert "rb_crossclass.evaluate.result" not in modules and "rb_crossclass.sweep.worker" not in modules


def test_one_command_parser_registers_only_that_command():
    parser = cli.build_parser("leaderboard")
    args = parser.parse_args(["leaderboard", "--cards", "c", "--out", "o"])
    assert args.command == "leaderboard" and args.dataset == "cifar10"
    assert parser.format_help() == cli.build_parser().format_help()  # the same top-level listing


# --------------------------------------------------------------------------- names
def test_leaderboard_help_lists_every_dataset_of_core(capsys):
    from rb_crossclass.core import KNOWN_DATASETS, THREAT_MODELS

    try:  # --help ends with SystemExit(0)
        cli.main(["leaderboard", "--help"])
    except SystemExit as done:
        assert done.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "mnist" in KNOWN_DATASETS
    for name in (*KNOWN_DATASETS, *THREAT_MODELS):
        assert name in text


def test_sweep_aa_version_and_its_deprecated_alias(capsys, tmp_path):
    base = ["sweep", "--robustbench", "cifar10:Linf", "--out", str(tmp_path / "out")]
    parser = cli.build_parser("sweep")
    assert parser.parse_args(base).aa_version == "standard"
    assert parser.parse_args([*base, "--aa-version", "rand"]).aa_version == "rand"
    assert "warning" not in capsys.readouterr().err
    assert parser.parse_args([*base, "--version", "plus"]).aa_version == "plus"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: sweep --version is deprecated; use --aa-version")
    assert cli.main([*base, "--version", "custom"]) == 1  # same choices as before: custom is refused
    help_text = parser._subparsers._group_actions[0].choices["sweep"].format_help()
    assert "--aa-version" in help_text and "--version" not in help_text.replace("--aa-version", "")
