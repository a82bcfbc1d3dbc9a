"""CLI commands of this room; see daemon/cli.py for the convention."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add this room's subcommands."""
    _add_init(sub)
    _add_info(sub)
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
        serve_until_signalled(card, address, connect_timeout=args.connect_timeout, trace=args.debug)
    except VpcdUnreachableError as exc:
        print(f"simsync card serve: {exc}", file=sys.stderr)
        return 1
    finally:
        card.close()
    return 0


def _add_init(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "init",
        help="create a card image (an empty phonebook, PIN, PUK, sync applet)",
        description="Create IMAGE as a fresh card. Refuses to overwrite an existing file.",
    )
    p.add_argument("image", metavar="IMAGE", help="path of the new card image")
    p.add_argument(
        "--records", default="250", metavar="N", help="EF.ADN records, 1-254 (default 250)"
    )
    p.add_argument(
        "--alpha-len", default="18", metavar="X", help="alpha identifier bytes, 1-241 (default 18)"
    )
    p.add_argument(
        "--iccid",
        default=None,  # simcard.state.DEFAULT_ICCID, looked up when the command runs
        metavar="DIGITS",
        help="18-20 digits (default: a Luhn-valid test ICCID)",
    )
    p.add_argument("--pin", default="0000", help="CHV1, 4-8 digits (default 0000)")
    p.add_argument("--puk", default="12345678", help="UNBLOCK CHV1, 8 digits (default 12345678)")
    p.add_argument(
        "--partners", default="8", metavar="K", help="sync partner table size, 8-16 (default 8)"
    )
    p.add_argument(
        "--no-sync-applet",
        dest="sync_applet",
        action="store_false",
        help="a plain SIM: the sync commands answer 6D00",
    )
    p.set_defaults(func=_cmd_init)


def _int_flag(name: str, value: str, low: int, high: int) -> int:
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise ValueError(f"--{name} must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _digits_flag(name: str, value: str, low: int, high: int, secret: bool = False) -> str:
    if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
        sizes = f"{low}" if low == high else f"{low}-{high}"
        shown = "" if secret else f", got {value!r}"  # never echo a PIN or PUK
        raise ValueError(f"--{name} must be {sizes} digits{shown}")
    return value


def _cmd_init(args: argparse.Namespace) -> int:
    """``simsync card init``: 0 on success, 2 for a bad flag, 1 if the image cannot be made."""
    from simcard.errors import ImageError
    from simcard.image import create_image
    from simcard.state import DEFAULT_ICCID

    try:
        records = _int_flag("records", args.records, 1, 254)
        alpha_len = _int_flag("alpha-len", args.alpha_len, 1, 241)
        partners = _int_flag("partners", args.partners, 8, 16)
        iccid = _digits_flag("iccid", DEFAULT_ICCID if args.iccid is None else args.iccid, 18, 20)
        pin = _digits_flag("pin", args.pin, 4, 8, secret=True)
        puk = _digits_flag("puk", args.puk, 8, 8, secret=True)
    except ValueError as exc:
        print(f"simsync card init: {exc}", file=sys.stderr)
        return 2
    try:
        create_image(
            args.image,
            records=records,
            alpha_len=alpha_len,
            iccid=iccid,
            pin=pin,
            puk=puk,
            partners=partners,
            sync_applet=args.sync_applet,
        )
    except (ImageError, OSError) as exc:  # CardParamError cannot happen: checked above
        print(f"simsync card init: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "info",
        help="print what a card image holds, as JSON (never its PIN or PUK)",
        description=(
            "Print IMAGE's ICCID, size, used records, sync partners and metadata budget as JSON."
        ),
    )
    p.add_argument("image", metavar="IMAGE", help="card image made by `simsync card init`")
    p.set_defaults(func=_cmd_info)


def _cmd_info(args: argparse.Namespace) -> int:
    """``simsync card info``: JSON on stdout; 1 with one line on stderr if it cannot open."""
    import json

    from simcard.errors import ImageError
    from simcard.image import open_image

    try:
        card = open_image(args.image)
    except (ImageError, OSError) as exc:
        print(f"simsync card info: {exc}", file=sys.stderr)
        return 1
    try:
        info = card.info()
    finally:
        card.close()
    print(json.dumps(info, indent=2))
    return 0
