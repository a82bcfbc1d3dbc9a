"""``simsync pda init|id|allow|serve|check``: run a PDA peer from a directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from transports import IdentityError, TransportError

if TYPE_CHECKING:
    from .directory import PdaDir

# The server, the vdir and vCard parsing load only in the handlers that use them: the
# parser is built for every `simsync` command, and `--help` must stay quick.

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the PDA subcommands."""
    p = sub.add_parser(
        "init",
        help="make a PDA directory: TLS identity, empty vdir DIR/contacts, sync state",
        description="Create DIR with a TLS identity, an empty vdir (DIR/contacts) and sync state. "
        "Prints the PDA's device id, which the phone's config needs as [[pda]] device_id.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(func=_init)

    p = sub.add_parser("id", help="print the PDA's device id (its certificate's SHA-256)")
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(func=_id)

    p = sub.add_parser(
        "allow",
        help="pair a phone: allow its device id (from `simsync id --config ...`)",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument("device_id", metavar="DEVICE_ID", help="64 hex digits (colons allowed)")
    p.set_defaults(func=_allow)

    p = sub.add_parser(
        "serve",
        help="serve syncs to paired phones until SIGTERM",
        description="Listen for phones and sync the vdir in DIR/contacts with their SIM cards. "
        "Only phones allowed with `simsync pda allow` get past the TLS handshake.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.add_argument(
        "--listen",
        default="tcp://127.0.0.1:7878",
        metavar="URL",
        help="where to listen: tcp://HOST:PORT, or a tty such as "
        "serial:///dev/rfcomm0?baud=115200 (one phone at a time on a tty; a tty that "
        "is not there yet, like an RFCOMM one before the peer binds, is waited for), or ble: to "
        "serve over Bluetooth LE (ble:?adapter=hci1 for another adapter; bond the phone "
        "first, see docs/transports.md) "
        "(default: tcp://127.0.0.1:7878)",
    )
    p.add_argument(
        "--no-watch",
        action="store_true",
        help="stat every contact file at every sync instead of letting inotify name the "
        "files that changed (a vdir on NFS, SMB or FUSE is never watched anyway; "
        "see docs/pda.md, 'Watching the vdir')",
    )
    p.add_argument(
        "--full-scan-every",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="while watching, stat every contact file again at the first sync once the last "
        "such full scan is SECONDS old, to catch what inotify cannot see (a file edited "
        "through a hard link made outside the vdir, writes through a shared mmap); "
        "0: never (default: 3600, an hour; see docs/pda.md, 'What the watch does not see')",
    )
    p.set_defaults(func=_serve)

    _register_check(sub)


def _register_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="list the contact files a sync sets aside, and why (exit 1 if any)",
        description="Scan the vdir (DIR/contacts of a PDA directory, or DIR itself) as a "
        "sync would, writing nothing, and print one line per file the store sets aside: "
        "unreadable (not UTF-8, not a vCard, unsupported VERSION), oversized (over 1 MiB), "
        "bad name (a link to nothing, a directory, not a regular file), duplicate UID. "
        "Exit status: 0 when every file is usable, 1 when some are set aside, 2 when DIR "
        "cannot be read.",
    )
    p.add_argument("dir", type=Path, metavar="DIR")
    p.set_defaults(func=_check)


def _seconds(text: str) -> float:
    """A --full-scan-every value: a number of seconds, 0 or more."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: give 0 (never) or a positive number")
    return seconds


def _check(args: argparse.Namespace) -> int:
    from .check import check_vdir
    from .store import StoreError

    directory: Path = args.dir
    vdir = directory / "contacts" if (directory / "identity").is_dir() else directory
    try:
        readable, bad = check_vdir(vdir)
    except StoreError as exc:
        print(f"simsync pda: {exc}", file=sys.stderr)
        return 2
    for b in bad:
        print(f"{b.path}: {b.reason}")
    print(f"{vdir}: {readable} contacts readable, {len(bad)} files set aside", file=sys.stderr)
    return 1 if bad else 0


def _fail(message: str) -> int:
    print(f"simsync pda: {message}", file=sys.stderr)
    return 1


def _init(args: argparse.Namespace) -> int:
    from .directory import PdaDir, PdaDirError

    try:
        d = PdaDir.init(args.dir)
        print(d.identity().device_id)
    except (PdaDirError, IdentityError, OSError) as exc:
        return _fail(str(exc))
    return 0


def _id(args: argparse.Namespace) -> int:
    from .directory import PdaDir, PdaDirError

    try:
        print(PdaDir.open(args.dir).identity().device_id)
    except (PdaDirError, IdentityError, OSError) as exc:
        return _fail(str(exc))
    return 0


def _allow(args: argparse.Namespace) -> int:
    from .directory import PdaDir, PdaDirError

    try:
        added = PdaDir.open(args.dir).allow(args.device_id)
    except (PdaDirError, ValueError, OSError) as exc:
        return _fail(str(exc))
    print("allowed" if added else "already allowed", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    from .directory import PdaDir, PdaDirError
    from .vdir import FULL_SCAN_EVERY

    every = FULL_SCAN_EVERY if args.full_scan_every is None else args.full_scan_every
    if args.listen.startswith("memory:"):
        # memory: is in-process only: no phone in another process could ever reach it.
        return _fail(
            f"--listen {args.listen!r}: serve listens on tcp://HOST:PORT or serial:///dev/TTY "
            "(or ble: for Bluetooth LE)"
        )
    try:
        d = PdaDir.open(args.dir)
        d.allowed()  # a malformed allow list is an error now, not at the first phone
        return asyncio.run(
            _serve_async(d, args.listen, watch=not args.no_watch, full_scan_every=every)
        )
    except (PdaDirError, IdentityError, TransportError, OSError, ValueError) as exc:
        return _fail(str(exc))


async def _serve_async(d: PdaDir, url: str, *, watch: bool, full_scan_every: float) -> int:
    import asyncio
    import contextlib
    import signal

    from .node import PdaServer

    server = PdaServer(d, watch=watch, full_scan_every=full_scan_every)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        real = await server.start(url)
        # One line on stdout so scripts (and tests) know where and when it listens.
        print(f"listening {real} {server.identity.device_id}", flush=True)
        serving = asyncio.create_task(server.serve_forever())
        await stop.wait()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    finally:
        await server.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
