"""The phone's configuration: one TOML file (see ``config/example.toml``).

A bad config names the file, the key and the problem (``ConfigError``); the CLI
prints that one line and exits 78 (``EX_CONFIG``). Relative paths in the file are
resolved against the file's own directory, so a config can travel with its data.
"""

from __future__ import annotations

import os
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from cardio.errors import InvalidRequest
from cardio.hostfiles import default_state_dir, read_pin
from daemon.errors import DaemonError
from daemon.logs import register_secret
from transports import TransportSpecError, check_address

__all__ = [
    "EX_CONFIG",
    "CardConfig",
    "Config",
    "ConfigError",
    "ConflictPolicy",
    "NodeConfig",
    "PdaConfig",
    "load_config",
    "read_pin_file",
]

EX_CONFIG = 78  # sysexits.h: configuration error

ConflictPolicy = Literal["duplicate", "card-wins", "pda-wins"]
_POLICIES: tuple[ConflictPolicy, ...] = ("duplicate", "card-wins", "pda-wins")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


class ConfigError(DaemonError):
    """A configuration problem, printed as ``FILE: KEY: PROBLEM`` without a traceback."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file = str(file)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.file}: {key}: {problem}" if key else f"{self.file}: {problem}")


@dataclass(frozen=True)
class NodeConfig:
    """This phone: its name (used in MQTT topics and logs) and where it keeps state."""

    id: str
    state_dir: Path


@dataclass(frozen=True)
class CardConfig:
    """How to reach the card: a PC/SC reader (name substring) or an emulator image in-process."""

    reader: str | None
    pin_file: Path | None
    image: Path | None


@dataclass(frozen=True)
class PdaConfig:
    """One paired PDA: how to reach it and which certificate it must present."""

    name: str
    address: str
    device_id: str
    conflict: ConflictPolicy = "duplicate"


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    path: Path
    node: NodeConfig
    card: CardConfig
    pdas: tuple[PdaConfig, ...]

    def pda(self, name: str | None) -> PdaConfig:
        """The PDA called ``name``; without a name, the only one configured."""
        if name is None:
            if len(self.pdas) == 1:
                return self.pdas[0]
            if not self.pdas:
                raise ConfigError(self.path, "pda", "no [[pda]] table configured")
            names = ", ".join(p.name for p in self.pdas)
            raise ConfigError(self.path, "pda", f"several PDAs configured ({names}): name one")
        for p in self.pdas:
            if p.name == name:
                return p
        raise ConfigError(self.path, "pda", f"no PDA named {name!r} in the config")


def normalize_device_id(value: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lowercase hex digits (colons allowed on input)."""
    v = value.strip().replace(":", "").lower()
    if not _HEX64_RE.match(v):
        raise ValueError("must be a SHA-256 fingerprint: 64 hex digits (colons allowed)")
    return v


class _Reader:
    """Typed access to one TOML table with precise error messages."""

    def __init__(self, file: Path, prefix: str, table: dict[str, Any], known: set[str]) -> None:
        self.file, self.prefix, self.table = file, prefix, table
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(file, self.key(unknown[0]), "unknown key")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def opt_str(self, name: str) -> str | None:
        v = self.table.get(name)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(self.file, self.key(name), "must be a non-empty string")
        return v

    def req_str(self, name: str) -> str:
        v = self.opt_str(name)
        if v is None:
            raise ConfigError(self.file, self.key(name), "missing (required)")
        return v

    def opt_path(self, name: str) -> Path | None:
        v = self.opt_str(name)
        if v is None:
            return None
        p = Path(expand_env(v, self.file, self.key(name))).expanduser()
        return p if p.is_absolute() else (self.file.parent / p).resolve()


_ENV_RE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def expand_env(value: str, file: Path, key: str) -> str:
    """``$VAR``, ``${VAR}`` and ``${VAR:-default}`` in a path, as the shell expands them.

    For systemd: ``${CREDENTIALS_DIRECTORY:-/etc/simsync}/pin`` is the unit's credential
    when run by the unit and the root-only original for ``simsync check-config`` run
    by hand. An unset variable without a default is an error, never an empty string:
    ``$CREDENTIALS_DIRECTORY/pin`` must not quietly become ``/pin``.
    """

    def one(m: re.Match[str]) -> str:
        name = m["braced"] or m["bare"]
        got = os.environ.get(name)
        if got:
            return got
        if m["default"] is not None:
            return m["default"]
        hint = " (set by systemd's LoadCredential=)" if name == "CREDENTIALS_DIRECTORY" else ""
        raise ConfigError(file, key, f"${name} is not set{hint}; or write ${{{name}:-DEFAULT}}")

    return _ENV_RE.sub(one, value)


def _table(file: Path, data: dict[str, Any], name: str) -> dict[str, Any]:
    v = data.get(name, {})
    if not isinstance(v, dict):
        raise ConfigError(file, name, "must be a table ([" + name + "])")
    return cast(dict[str, Any], v)


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the config file; raises ``ConfigError`` for any problem."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(file, "", "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"node", "card", "pda"})
    if unknown:
        raise ConfigError(file, unknown[0], "unknown section")

    node_r = _Reader(file, "node", _table(file, data, "node"), {"id", "state_dir"})
    node_id = node_r.opt_str("id") or socket.gethostname().split(".")[0] or "simsync"
    if not _NAME_RE.match(node_id):
        raise ConfigError(file, "node.id", "use 1-64 letters, digits, '.', '_' or '-'")
    node = NodeConfig(id=node_id, state_dir=node_r.opt_path("state_dir") or default_state_dir())

    card_r = _Reader(file, "card", _table(file, data, "card"), {"reader", "pin_file", "image"})
    card = CardConfig(
        reader=card_r.opt_str("reader"),
        pin_file=card_r.opt_path("pin_file"),
        image=card_r.opt_path("image"),
    )
    if card.reader is not None and card.image is not None:
        raise ConfigError(file, "card.image", "set either card.reader or card.image, not both")

    pdas_raw = data.get("pda", [])
    if not isinstance(pdas_raw, list):
        raise ConfigError(file, "pda", "must be an array of tables ([[pda]])")
    pdas: list[PdaConfig] = []
    for i, entry in enumerate(pdas_raw):
        if not isinstance(entry, dict):
            raise ConfigError(file, f"pda[{i}]", "must be a table")
        r = _Reader(file, f"pda[{i}]", entry, {"name", "address", "device_id", "conflict"})
        name = r.req_str("name")
        if not _NAME_RE.match(name):
            raise ConfigError(file, r.key("name"), "use 1-64 letters, digits, '.', '_' or '-'")
        if any(p.name == name for p in pdas):
            raise ConfigError(file, r.key("name"), f"duplicate PDA name {name!r}")
        address = r.req_str("address")
        try:
            check_address(address)
        except TransportSpecError as exc:
            raise ConfigError(file, r.key("address"), str(exc)) from exc
        try:
            device_id = normalize_device_id(r.req_str("device_id"))
        except ValueError as exc:
            raise ConfigError(file, r.key("device_id"), str(exc)) from exc
        conflict = r.opt_str("conflict") or "duplicate"
        if conflict not in _POLICIES:
            raise ConfigError(file, r.key("conflict"), f"must be one of {', '.join(_POLICIES)}")
        pdas.append(PdaConfig(name, address, device_id, conflict))
    return Config(path=file, node=node, card=card, pdas=tuple(pdas))


def read_pin_file(config: Config) -> str | None:
    """The PIN from ``card.pin_file`` (first line, 4-8 digits), or None when not configured."""
    if config.card.pin_file is None:
        return None
    try:
        pin = read_pin(config.card.pin_file)
    except InvalidRequest as exc:
        raise ConfigError(config.path, "card.pin_file", str(exc)) from exc
    register_secret(pin)  # masked in every log line from now on
    return pin
