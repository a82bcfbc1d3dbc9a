"""CLI commands of this room; see daemon/cli.py for the convention."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands."""
    _add_serve(sub)


def _add_serve(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="put a card image into a PC/SC reader through vsmartcard's vpcd",
        description=(
            "Open IMAGE and answer vpcd (pcscd's virtual reader) until SIGTERM/SIGINT. "
            "If vpcd is not reachable within --connect-timeout seconds at start, exit 1; "
            "once connected, a lost vpcd (pcscd restart) is reconnected forever."
        ),
    )
    p.add_argument("image", metavar="IMAGE", help="card image made by `simsync card init`")
    p.add_argument(
        "--vpcd",
        default="127.0.0.1:35963",
        metavar="HOST:PORT",
        help="vpcd endpoint (default 127.0.0.1:35963 = 'Virtual PCD 00 00'; 35964 = '00 01')",
    )
    p.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up if vpcd cannot be reached at start for this long (default 10)",
    )
    p.add_argument(
        "--debug", action="store_true", help="log every APDU (PIN and PUK data redacted)"
    )
    p.set_defaults(func=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    """``simsync card serve``: exit 0 after SIGTERM/SIGINT, 1 on image or vpcd failure."""
    from simcard.errors import ImageError
    from simcard.image import open_image
    from simcard.vpcd import (
        VpcdAddress,
        VpcdAddressError,
        VpcdUnreachableError,
        configure_stderr_logging,
        serve_until_signalled,
    )

    # Everything the user typed is checked before the image is even opened.
    try:
        address = VpcdAddress.parse(args.vpcd)
    except VpcdAddressError as exc:
        print(f"simsync card serve: bad --vpcd: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.connect_timeout < 86400:
        print("simsync card serve: --connect-timeout must be in (0, 86400) s", file=sys.stderr)
        return 2
    try:
        card = open_image(args.image)
    except ImageError as exc:  # its message names the file already
        print(f"simsync card serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"simsync card serve: cannot open {args.image}: {exc.strerror}", file=sys.stderr)
        return 1
    configure_stderr_logging(debug=args.debug)
    try:
        serve_until_signalled(
            card, address, connect_timeout=args.connect_timeout, trace=args.debug
        )
    except VpcdUnreachableError as exc:
        print(f"simsync card serve: {exc}", file=sys.stderr)
        return 1
    finally:
        card.close()
    return 0
