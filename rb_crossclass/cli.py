"""``rb-crossclass`` command line: one module per subcommand in :mod:`rb_crossclass.commands`.

Each command module exposes ``register(subparsers, summary)``; it adds its parser and sets
``func=run(args) -> int``. :func:`main` imports only the module of the command it runs (the
others are listed by name and summary), and command modules import their heavy libraries only
when they run, so ``--help`` and argument errors come back quickly (no torch imported).
:func:`main` is the one error boundary: a failure caused by an input
(a bad flag, file, field or model) ends as a single line ``rb-crossclass <command>: error: ...``
with exit status 1; ``-v`` shows the traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .core.errors import RBCrossclassError

COMMANDS: dict[str, str] = {
    "train": "train robust models from timm architectures (PGD-AT, TRADES, soft-label AT)",
    "evaluate": "AutoAttack evaluation under RobustBench's protocol, with CAS, into a card",
    "score": "cross-class feature scoring: attribution matrix, CAS, FSI",
    "card": "validate and show RobustBench-compatible model cards",
    "leaderboard": "build an extended leaderboard from official and our cards",
    "zoo": "list, show and card our model zoo entries",
    "sweep": "score every model of a leaderboard or manifest, locally or on a Ray cluster",
    "synthetic": "run the synthetic data models of the theory",
    "reproduce": "reproduce the paper's training dynamics (CAS vs robust overfitting) with our tools",
    "demo": "the embedded default job (no download, a few minutes on CPU)",
}
MAX_MESSAGE = 2000  # characters of an error line (a 10 MB bad value must not become a 10 MB line)


class UsageError(RBCrossclassError):
    """A command-line argument is missing or malformed."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (and reported by :func:`main` as one line, exit 1)."""

    def error(self, message: str):  # noqa: D102 - argparse API
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``rb-crossclass`` parser. ``command=None``: every subcommand fully registered (tests,
    docs); a name: only that subcommand's module is imported and registered, the others are
    listed with their summary (what ``--help`` shows is the same either way); ``""``: none."""
    from . import __version__

    parser = _Parser(
        prog="rb-crossclass",
        description="RobustBench plugin: robust training, AutoAttack evaluation and "
        "cross-class feature scoring (CAS) of image classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"rb-crossclass {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, summary in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(f"rb_crossclass.commands.{name}").register(sub, summary)
        else:
            sub.add_parser(name, help=summary)
    return parser


def _command_of(argv: list[str]) -> str:
    return next((a for a in argv if a in COMMANDS), "")


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning (read once, when torch loads OpenMP, so set it
    # before any command imports torch; a value the user set wins). Spinning threads of a process
    # that shares its cores made the demo 4-7x slower with 2 threads than with 1 on a busy 2-core
    # machine; with passive waiting 2 threads cost no more than 1 there (docs/install.md, "CPU threads").
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in argv or "--verbose" in argv
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    command = _command_of(argv)
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        from .core import set_cpu_threads

        set_cpu_threads()  # OMP_NUM_THREADS, SLURM_CPUS_PER_TASK or this process's CPUs
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RBCrossclassError, OSError) as err:  # OSError: a path given that cannot be read or written
        if verbose:
            logging.getLogger("rb_crossclass").exception("traceback (-v)")
        print(f"rb-crossclass{' ' + command if command else ''}: error: {error_line(err)}", file=sys.stderr)
        return 1


def error_line(err: BaseException) -> str:
    """One line for the user: the message with whitespace folded, cut at :data:`MAX_MESSAGE`."""
    if isinstance(err, OSError) and not isinstance(err, RBCrossclassError) and err.filename is not None:
        message = f"{err.filename}: {err.strerror or type(err).__name__}"
    else:
        message = str(err) or type(err).__name__
    message = " ".join(message.split())
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + f"... ({len(message)} characters)"
    return message


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
