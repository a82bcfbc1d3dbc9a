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
import sys
from collections.abc import Callable, Sequence

from daemon import checkconfig
from daemon import commands as daemon_commands
from daemon.logformats import LOG_FORMATS

Handler = Callable[[argparse.Namespace], int]

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
    parser = argparse.ArgumentParser(
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
    """Run one `simsync` command; returns its exit status."""
    if argv is None:
        argv = sys.argv[1:]
    args = build_parser(argv).parse_args(argv)
    from daemon.logs import configure_logging  # structlog: not needed for --help

    configure_logging(("warning", "info", "debug")[min(args.verbose, 2)], args.log_format)
    func: Handler = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("simsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout went away (`simsync ... | head`): nothing left to say to anyone.
        sys.stderr.close()
        return 141


if __name__ == "__main__":
    sys.exit(main())
