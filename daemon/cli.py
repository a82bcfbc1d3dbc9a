"""The `simsync` command line: one parser, subcommands contributed by each room.

Each room that owns commands exposes ``register(subparsers)``; every subcommand sets
``func`` (``Callable[[argparse.Namespace], int]``) with ``set_defaults``. A handler
prints its own one-line error on stderr and returns the exit status; it never
lets a traceback reach the user for bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cardio import cli as cardio_cli
from daemon import checkconfig
from daemon import commands as daemon_commands
from daemon.logs import LOG_FORMATS, configure_logging
from pda import cli as pda_cli
from simcard import cli as simcard_cli

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simsync",
        description=(
            "Keep a SIM card's phonebook (EF.ADN) and a PDA's address book equal, "
            "moving only what changed, using sync objects kept on the card."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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

    card = sub.add_parser("card", help="the SIM card: emulate one, inspect one, read one")
    card_sub = card.add_subparsers(dest="card_command", metavar="ACTION")
    card_sub.required = True
    simcard_cli.register(card_sub)
    cardio_cli.register(card_sub)

    pda = sub.add_parser("pda", help="the PDA peer: a vdir address book served over TCP + TLS")
    pda_sub = pda.add_subparsers(dest="pda_command", metavar="ACTION")
    pda_sub.required = True
    pda_cli.register(pda_sub)

    daemon_commands.register(sub)
    checkconfig.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("simsync")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
