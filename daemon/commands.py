"""Top-level commands owned by the daemon room: ``sync``, ``daemon``, ``id``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up)

if TYPE_CHECKING:
    from daemon.config import Config

# Config, card, transports and protocol load in the handlers that use them: the parser
# is built for every `simsync` command, and `--help` must stay quick.

__all__ = ["register"]

MODES = ("auto", "slow", "refresh-from-card", "refresh-from-pda")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the daemon's commands to the top-level parser."""
    p = sub.add_parser(
        "sync",
        help="run one whole sync between the card and a PDA",
        description="Sync the SIM card's phonebook with one PDA: fast when the card and the PDA "
        "share a sync object, slow otherwise. Exit status 0 only when the sync succeeded; "
        "78 for a bad config; the sync's status also when stdout's reader has gone "
        "before the result was printed.",
    )
    p.add_argument("--config", required=True, type=Path, metavar="FILE", help="phone config (TOML)")
    p.add_argument("--pda", metavar="NAME", help="which [[pda]] (optional when only one)")
    p.add_argument("--mode", choices=MODES, default="auto", help="default: auto")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the result object of spec/mqtt.md (to_pda, to_card, ...) on stdout",
    )
    p.add_argument(
        "--wait",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="when another sync holds the card or the PDA, wait this long for it, then give "
        "up with 'busy' (exit 1); default: 60 (daemon.runlock.DEFAULT_WAIT)",
    )
    p.set_defaults(func=_sync)

    p = sub.add_parser(
        "daemon",
        help="run the phone service: card watch, sync queue, MQTT (spec/mqtt.md)",
        description="Run until SIGTERM: watch the card, take sync requests over MQTT "
        "([mqtt] in the config; topics under ROOT = topic_root, default simsync/<node id>), "
        "run one sync at a time, publish status, progress, results and events, and run the "
        "[triggers] of the config (sync on card insertion, every N minutes). With a "
        "ble_identity on a [[pda]] it watches for that PDA over Bluetooth LE ([presence], "
        "docs/presence.md): pda-near/pda-away events and, with auto_sync, a sync on arrival. "
        "Without [mqtt] only the triggers run. SIGHUP re-reads the config (a bad one is "
        "refused and the old one kept); SIGTERM stops after publishing offline (exit 0). "
        "Under systemd it speaks sd_notify (Type=notify, WatchdogSec). Exit 78 for a bad "
        "config. See docs/daemon.md.",
    )
    p.add_argument("--config", required=True, type=Path, metavar="FILE", help="phone config (TOML)")
    p.set_defaults(func=_daemon)

    p = sub.add_parser(
        "id",
        help="print this phone's device id (made on first use in state_dir)",
        description="Print the phone's device id: pair it on the PDA with "
        "`simsync pda allow DIR DEVICE_ID`.",
    )
    p.add_argument("--config", required=True, type=Path, metavar="FILE")
    p.set_defaults(func=_id)

    p = sub.add_parser(
        "demo",
        help="try it with no hardware: a demo card and a demo PDA on loopback TCP + TLS",
        description="Create (or reuse) a demo directory with an emulated SIM card image and a "
        "PDA with a few contacts, serve the PDA on loopback TCP with mutual TLS, and run a "
        "sync, then another one. Rerun it after editing the files it names.",
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="demo directory (default: $XDG_DATA_HOME/simsync-demo or ~/.local/share/...)",
    )
    p.set_defaults(func=_demo)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError("use 0 to 86400 seconds")
    return value


def _config_error(exc: Exception) -> None:
    """Say why the config is unusable: one plain line, or under journald an error entry.

    A plain line on journald's stream is filed at priority info, and is no JSON: then
    `journalctl -u simsync -p warning` would not show why the service did not start.
    """
    from daemon.logs import stderr_is_journal

    if stderr_is_journal():
        import structlog

        structlog.get_logger("daemon.commands").error("config unusable", error=str(exc))
    else:
        print(f"simsync: {exc}", file=sys.stderr)


def _load(path: Path) -> Config | None:
    from daemon.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        _config_error(exc)
        return None


def _daemon(args: argparse.Namespace) -> int:
    import asyncio

    from daemon.config import EX_CONFIG, ConfigError, read_password_file
    from daemon.notify import Notifier
    from daemon.service import Service

    config = _load(args.config)
    if config is None:
        return EX_CONFIG
    try:
        read_password_file(config)  # fail now, not at the first connect
    except ConfigError as exc:
        _config_error(exc)
        return EX_CONFIG
    notify = Notifier.from_env()
    try:
        return asyncio.run(Service(config, notify=notify).run())
    finally:
        notify.close()


def _id(args: argparse.Namespace) -> int:
    from daemon.config import EX_CONFIG
    from daemon.sync import phone_identity
    from transports import IdentityError

    config = _load(args.config)
    if config is None:
        return EX_CONFIG
    try:
        print(phone_identity(config).device_id)
    except (IdentityError, OSError) as exc:
        print(f"simsync id: {exc}", file=sys.stderr)
        return 1
    return 0


class _ProgressBar:
    """A one-line progress bar on stderr, for people watching a slow sync on a terminal."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        sys.stderr.write(f"\r{phase:<8} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ")
        sys.stderr.flush()
        self.shown = True

    def finish(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _sync(args: argparse.Namespace) -> int:
    from daemon.config import EX_CONFIG

    config = _load(args.config)
    if config is None:
        return EX_CONFIG
    import asyncio

    from daemon.result import format_result
    from daemon.runlock import DEFAULT_WAIT
    from daemon.stdout import print_line
    from daemon.sync import run_sync
    from syncproto.codes import ErrorCode

    bar = _ProgressBar() if sys.stderr.isatty() else None
    try:
        result = asyncio.run(
            run_sync(
                config,
                args.pda,
                args.mode,
                progress=bar,
                wait=DEFAULT_WAIT if args.wait is None else args.wait,
            )
        )
    finally:
        if bar is not None:
            bar.finish()
    # The exit status is the sync's, also when stdout's reader has gone before the
    # result was printed (`| head -c 20`): the sync happened either way.
    if args.json:
        import json

        print_line(json.dumps(result.to_json(), ensure_ascii=False))
    elif result.ok:
        print_line(format_result(result))
    else:
        print(f"simsync sync: {format_result(result)}", file=sys.stderr)
    # Failures that are the config's fault exit 78, like a config that does not load.
    if result.error is not None and result.error.code in (
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNKNOWN_PDA,
    ):
        return EX_CONFIG
    return 0 if result.ok else 1


def _demo(args: argparse.Namespace) -> int:
    import asyncio

    from daemon.demo import default_demo_dir, run_demo

    rerun = f"simsync demo --dir {args.dir}" if args.dir else "simsync demo"
    return asyncio.run(run_demo(args.dir or default_demo_dir(), rerun=rerun))
