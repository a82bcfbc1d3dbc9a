"""The `simsync` command line: one parser, subcommands contributed by each room.

Each room that owns commands exposes ``register(subparsers)``; every subcommand sets
``func`` (``Callable[[argparse.Namespace], int]``) with ``set_defaults``. A handler
prints its own one-line error on stderr and returns the exit status; it never
lets a traceback reach the user for bad input.

Start-up: a command imports only what it uses. The `card` and `pda` groups load
their rooms' CLI modules only when the command line names them, and every
handler imports its heavy modules (pyscard, vobject, cryptography) itself.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from daemon import checkconfig
from daemon import commands as daemon_commands
from daemon.logformats import LOG_FORMATS
from daemon.stdout import quiet_stderr, to_devnull

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up)
if TYPE_CHECKING:
    from typing import NoReturn

Handler = Callable[[argparse.Namespace], int]

#: Exit status of a command whose output found no reader (128 + SIGPIPE, as a shell says).
EX_PIPE = 141

#: Command groups -> the modules whose ``register`` adds their actions, in order.
_GROUPS: dict[str, tuple[str, ...]] = {
    "card": ("simcard.cli", "cardio.cli"),
    "pda": ("pda.cli",),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole parser; with `argv`, only the command groups it names get their actions.

    (A group's actions matter only when its name is on the command line: `simsync
    --help` lists the groups, `simsync card --help` the card's actions.)
    """
    parser: argparse.ArgumentParser = _Parser(
        prog="simsync",
        description=(
            "Keep a SIM card's phonebook (EF.ADN) and a PDA's address book equal, "
            "moving only what changed, using sync objects kept on the card."
        ),
    )
    parser.add_argument("--version", action=_VersionAction, help="show the version and exit")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log more on stderr (-v: info, -vv: debug); default: warnings only",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="auto",
        help="stderr log lines for people (console) or one JSON object per line (json); "
        "default auto: console on a terminal, json otherwise (with journald's <N> priority "
        "prefix under systemd)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    named = None if argv is None else set(argv)
    helps = {
        "card": "the SIM card: emulate one, inspect one, read one",
        "pda": "the PDA peer: a vdir address book served over TCP + TLS",
    }
    for group, modules in _GROUPS.items():
        actions = sub.add_parser(group, help=helps[group]).add_subparsers(
            dest=f"{group}_command", metavar="ACTION"
        )
        actions.required = True
        if named is None or group in named:
            for module in modules:
                importlib.import_module(module).register(actions)

    daemon_commands.register(sub)
    checkconfig.register(sub)
    return parser


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` gives it ($COLUMNS, stdout, 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the width: argparse would import shutil (and with it
    bz2, lzma, fnmatch) to ask, in every command, as each parser is built."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose subcommands' parsers (same class) use `_HelpFormatter`."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


class _VersionAction(argparse.Action):
    """``--version``: looks the version up only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(f"{parser.prog} {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simsync")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `simsync` command; returns its exit status.

    Without `argv` (run as the program: the `simsync` script, ``python -m daemon.cli``)
    the process ends here, see `_exit`.
    """
    if argv is None:
        quiet_stderr()
        try:
            status = _run(sys.argv[1:])
        except SystemExit as exc:  # argparse: --help, --version, a usage error
            if isinstance(exc.code, str):
                print(exc.code, file=sys.stderr)
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        _exit(status)
    return _run(argv)


def _run(argv: Sequence[str]) -> int:
    try:
        args = build_parser(argv).parse_args(argv)  # --help, --version: printed here
        from daemon.logs import configure_logging  # structlog: not needed for --help

        configure_logging(("warning", "info", "debug")[min(args.verbose, 2)], args.log_format)
        func: Handler = args.func
        return func(args)
    except KeyboardInterrupt:
        print("simsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout went away mid-command (`simsync card dump | head`; stderr loses its
        # reader quietly, see `quiet_stderr`): 141, as a shell reports a death by SIGPIPE.
        to_devnull(sys.stdout, sys.stderr)
        return EX_PIPE


def _exit(status: int) -> NoReturn:
    """End the process once the command is done, skipping the interpreter's teardown.

    The teardown frees every module and object one by one: 40-50 ms after a `simsync
    sync` on a 2-core machine at a load of 2, 170 ms at 4, as long as the sync's own work.
    A finished command has nothing left to do in it: the atexit handlers run (logging's
    among them), stdout and stderr are flushed, then ``os._exit``. Files, sockets and
    databases are closed by the code that opened them, before this point. While any
    other thread is alive, or a flush fails, the ordinary exit runs instead (it joins
    threads).

    Output still buffered whose reader has gone (``simsync id | true``) is dropped, and
    a command that had succeeded ends `EX_PIPE`, as one whose output broke midway.
    """
    try:
        if sys.stdout is not None:  # None: started with descriptor 1 closed
            sys.stdout.flush()
    except BrokenPipeError:
        to_devnull(sys.stdout)
        status = status or EX_PIPE
    except (OSError, ValueError):
        pass
    threading = sys.modules.get("threading")
    if threading is None or threading.active_count() == 1:
        import atexit

        atexit._run_exitfuncs()
        if _flush_all():
            os._exit(status)
    _flush_all()
    sys.exit(status)


def _flush_all() -> bool:
    """Flush stdout and stderr; False if one failed for a reason other than its reader gone.

    A stream whose reader has gone (``2>&1 | head``) is pointed at /dev/null, so that the
    interpreter's own flush at exit cannot fail again and end the process 120: the
    command's status stands (stderr carries only diagnostics).
    """
    flushed = True
    for stream in (sys.stdout, sys.stderr):
        if stream is None:  # started with that descriptor closed
            continue
        try:
            stream.flush()
        except BrokenPipeError:
            to_devnull(stream)
        except (OSError, ValueError):
            flushed = False
    return flushed


if __name__ == "__main__":
    main()
