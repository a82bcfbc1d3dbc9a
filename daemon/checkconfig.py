"""``simsync check-config FILE``: validate a config and explain what every key resolved to.

Loads the file exactly as ``simsync daemon`` and ``simsync sync`` do (the same
``ConfigError`` on the first problem, exit 78), then walks every key of the result:
its value (``(default)`` when the file does not set it), what it is for, and for
files whether they are there and readable: the PIN and password files are read and
validated but their contents never printed; a CA file must load as certificates.
Problems exit 78 (EX_CONFIG); warnings (e.g. a secret readable by other users) do not.

New config sections and keys appear here without changes: the walk follows the
dataclasses of :class:`daemon.config.Config`; only the one-line explanations live
in :data:`KEY_HELP`.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Iterator
from pathlib import Path

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (start-up)

if TYPE_CHECKING:
    from typing import Any

    from daemon.config import Config

# The config, logging, ssl, tomllib and dataclasses load when the command runs, not
# when the parser is built for every `simsync` command (`--help` must stay quick).

__all__ = ["KEY_HELP", "check_config", "register"]

KEY_HELP: dict[str, str] = {
    "node.id": "this phone's name in MQTT topics and logs",
    "node.state_dir": "TLS identity, local card copies, plain-SIM sync objects, PIN memory",
    "card.reader": "PC/SC reader name substring (none: the only reader)",
    "card.pin_file": "the SIM PIN, first line, 4-8 digits",
    "card.image": "an emulated card image driven in-process instead of a reader",
    "pda.name": "the name requests and `simsync sync --pda` use",
    "pda.address": "how the PDA is reached (tcp://, serial://, ble://, memory:)",
    "pda.device_id": "SHA-256 of the PDA's certificate: any other peer is refused",
    "pda.conflict": "both sides changed: duplicate | card-wins | pda-wins",
    "mqtt.url": "broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)",
    "mqtt.username": "broker user name",
    "mqtt.password_file": "broker password, first line",
    "mqtt.ca_file": "CA certificates that sign the broker's (mqtts:// only)",
    "mqtt.topic_root": "topics live under this prefix",
    "mqtt.protocol": "MQTT protocol version",
    "mqtt.keepalive": "seconds between keep-alive pings",
    "mqtt.ha_discovery": "publish Home Assistant discovery configs",
    "mqtt.discovery_prefix": "Home Assistant's discovery topic prefix",
    "triggers.on_card_inserted": "sync when a card is inserted",
    "triggers.every_minutes": "sync every N minutes (0 or unset: never)",
    "triggers.pdas": "PDAs the triggers sync (empty: all)",
    "mqtt.tls": "from the url: mqtts:// is TLS",
    "mqtt.host": "from the url",
    "mqtt.port": "from the url (default 1883, or 8883 for mqtts://)",
    "daemon.sync_timeout": "seconds a sync may take before it is stopped (nothing committed)",
    "daemon.max_waiting": "requests that may wait at once; one more is answered busy",
    "pda.ble_identity": "the PDA's BLE identity address, watched for presence",
    "presence.enabled": "watch for PDAs with a ble_identity over Bluetooth",
    "presence.adapter": "the Bluetooth adapter to scan with",
    "presence.scan": "auto (passive where BlueZ offers it) | passive | active",
    "presence.near_rssi": "dBm: heard at or above this, a PDA is near",
    "presence.away_rssi": "dBm: a near PDA stays near while heard at or above this",
    "presence.away_after": "seconds without that before a PDA is away",
    "presence.auto_sync": "sync a PDA when it comes near",
    "presence.auto_sync_min_interval": "seconds: no auto-sync if that PDA synced more recently",
}
# Config attributes whose TOML name differs ([[pda]] tables become Config.pdas).
_TOML_NAME = {"pdas": "pda"}
# A file that holds a secret: read to validate, never shown.
_SECRET_FILES = {"pin_file", "password_file"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check-config`` to the top-level parser."""
    p = sub.add_parser(
        "check-config",
        help="validate a phone config and explain every key",
        description="Load FILE as the daemon would and print every key: its value (or "
        "default), what it is for, and whether the files it names are readable (secret "
        "files are checked, never printed). Exit 0 when usable, 78 when not. Under "
        "systemd, check the credential files as the unit sees them with: "
        "CREDENTIALS_DIRECTORY=/etc/simsync simsync check-config FILE",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="phone config (TOML)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    status, lines = check_config(args.file)
    for line in lines:
        print(line)
    return status


class _Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.problems = 0
        self.warnings = 0


def check_config(path: Path) -> tuple[int, list[str]]:
    """Check ``path``; return the exit status (0 or 78) and the lines to print."""
    import dataclasses
    import tomllib

    from daemon.config import EX_CONFIG, ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        return EX_CONFIG, [f"simsync check-config: {exc}", f"{path}: NOT usable"]
    raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    report = _Report()
    for field in dataclasses.fields(config):
        if field.name == "path":
            continue
        name = _TOML_NAME.get(field.name, field.name)
        _section(report, name, getattr(config, field.name), raw.get(name), config)
    _presence(report, config)
    verdict = "usable" if report.problems == 0 else f"NOT usable: {report.problems} problem(s)"
    if report.warnings:
        verdict += f", {report.warnings} warning(s)"
    report.lines.append(f"{path}: {verdict}")
    return (EX_CONFIG if report.problems else 0), [f"config {config.path}", *report.lines]


def _section(report: _Report, name: str, value: Any, raw: Any, config: Config) -> None:
    import dataclasses

    if value is None:
        report.lines.append(f"[{name}] not set")
        return
    if isinstance(value, tuple):  # [[pda]] and the like: an array of tables
        if not value:
            report.lines.append(f"[[{name}]] none")
        raws = raw if isinstance(raw, list) else []
        for i, item in enumerate(value):
            entry_raw = raws[i] if i < len(raws) else {}
            report.lines.append(f"[[{name}]] #{i + 1}")
            _keys(report, name, item, entry_raw, config)
        return
    if not dataclasses.is_dataclass(value):
        report.lines.append(f"{name} = {_show(value)}")
        return
    report.lines.append(f"[{name}]")
    _keys(report, name, value, raw if isinstance(raw, dict) else {}, config)


def _keys(report: _Report, section: str, value: Any, raw: dict[str, Any], config: Config) -> None:
    import dataclasses

    for field in dataclasses.fields(value):
        key = f"{section}.{field.name}"
        v = getattr(value, field.name)
        origin = "" if field.name in raw else "  (default)"
        report.lines.append(f"  {field.name} = {_show(v)}{origin}")
        if key in KEY_HELP:
            report.lines.append(f"      {KEY_HELP[key]}")
        if isinstance(v, Path):
            for level, text in _check_path(field.name, v):
                if level == "problem":
                    report.problems += 1
                elif level == "warning":
                    report.warnings += 1
                report.lines.append(f"      {level}: {text}" if level != "ok" else f"      {text}")
    if section == "pda" and set(getattr(value, "device_id", "x")) == {"0"}:
        report.warnings += 1
        report.lines.append("      warning: device_id is the example's zeros: `simsync pda id`")


def _presence(report: _Report, config: Config) -> None:
    """What `simsync daemon` will watch over Bluetooth, in one line (docs/presence.md)."""
    watched = config.watched_pdas()
    p = config.presence
    if watched:
        names = ", ".join(f"{name} ({address})" for name, address in watched.items())
        auto = "on" if p.auto_sync else "off"
        report.lines.append(
            f"presence: the daemon watches {names} on {p.adapter}; auto_sync {auto}"
        )
        return
    why = "[presence] enabled = false" if not p.enabled else "no [[pda]] has a ble_identity"
    report.lines.append(f"presence: nothing watched ({why})")
    if p.auto_sync:
        report.warnings += 1
        report.lines.append("      warning: presence.auto_sync = true, but no PDA is watched")


def _show(v: Any) -> str:
    if v is None:
        return "(not set)"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_show(x) for x in v) + "]"
    return str(v)


def _check_path(name: str, path: Path) -> Iterator[tuple[str, str]]:
    if name == "state_dir":
        yield from _check_dir(path)
        return
    try:
        st = path.stat()
    except OSError as exc:
        yield "problem", f"{path}: {exc.strerror}"
        return
    if not stat.S_ISREG(st.st_mode):
        yield "problem", f"{path}: not a regular file"
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        yield "problem", f"{path}: cannot read: {exc.strerror}"
        return
    if name in _SECRET_FILES:
        yield from _check_secret(name, path, data, st)
    elif name == "ca_file":
        yield from _check_ca(path)
    else:
        yield "ok", f"readable ({st.st_size} bytes)"


def _check_secret(
    name: str, path: Path, data: bytes, st: os.stat_result
) -> Iterator[tuple[str, str]]:
    from daemon.logs import register_secret

    first = data.decode("utf-8", "replace").splitlines()[0].strip() if data.strip() else ""
    register_secret(first)  # nothing below prints it, and no log line will either
    if not first:
        yield "problem", f"{path}: the first line is empty"
        return
    if name == "pin_file" and not (first.isdigit() and 4 <= len(first) <= 8):
        yield "problem", f"{path}: the first line must be the PIN, 4-8 digits"
        return
    what = "a PIN of 4-8 digits" if name == "pin_file" else "a non-empty first line"
    yield "ok", f"readable, holds {what} (not shown)"
    if st.st_mode & 0o077 and not _credentials(path):
        yield "warning", f"{path} is readable by other users: chmod 600 {path}"


def _credentials(path: Path) -> bool:
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    return creds is not None and path.is_relative_to(creds)


def _check_ca(path: Path) -> Iterator[tuple[str, str]]:
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as exc:
        yield "problem", f"{path}: no usable CA certificate ({exc})"
        return
    count = len(ctx.get_ca_certs())
    yield "ok", f"readable, {count} CA certificate(s)"


def _check_dir(path: Path) -> Iterator[tuple[str, str]]:
    if path.is_dir():
        if os.access(path, os.W_OK | os.X_OK):
            yield "ok", "exists, writable"
        else:
            yield "problem", f"{path}: not writable by this user"
        return
    if path.exists():
        yield "problem", f"{path}: not a directory"
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if os.access(parent, os.W_OK | os.X_OK):
        yield "ok", "does not exist yet; will be created"
    else:
        # systemd's StateDirectory= creates it for the service user: not our problem then.
        yield "warning", f"does not exist and {parent} is not writable by this user"
