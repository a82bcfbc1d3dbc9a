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
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit

from cardio.errors import InvalidRequest
from cardio.hostfiles import default_state_dir, read_pin
from daemon.errors import DaemonError
from daemon.logs import register_secret
from transports import TransportSpecError, check_address

if TYPE_CHECKING:  # the presence rules load with the watcher, not with every config
    from daemon.presence_state import ScanMode, Thresholds

__all__ = [
    "EX_CONFIG",
    "KEYS",
    "CardConfig",
    "Config",
    "ConfigError",
    "ConflictPolicy",
    "DaemonConfig",
    "MqttConfig",
    "NodeConfig",
    "PdaConfig",
    "PresenceConfig",
    "TriggerConfig",
    "load_config",
    "read_password_file",
    "read_pin_file",
]

EX_CONFIG = 78  # sysexits.h: configuration error

ConflictPolicy = Literal["duplicate", "card-wins", "pda-wins"]
MqttProtocol = Literal["3.1.1", "5"]
_POLICIES: tuple[ConflictPolicy, ...] = ("duplicate", "card-wins", "pda-wins")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_BDADDR_RE = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")
_SCANS: tuple[ScanMode, ...] = ("auto", "passive", "active")

# Every key the loader accepts, by table ("pda": each [[pda]]); any other key is an
# error. config/example.toml documents each one (tests/daemon/test_config.py checks).
KEYS: dict[str, frozenset[str]] = {
    "node": frozenset({"id", "state_dir"}),
    "card": frozenset({"reader", "pin_file", "image"}),
    "pda": frozenset({"name", "address", "device_id", "conflict", "ble_identity"}),
    "mqtt": frozenset({
        "url", "username", "password_file", "ca_file", "topic_root", "protocol", "keepalive",
        "ha_discovery", "discovery_prefix",
    }),
    "triggers": frozenset({"on_card_inserted", "every_minutes", "pdas"}),
    "daemon": frozenset({"sync_timeout", "max_waiting"}),
    "presence": frozenset({
        "enabled", "adapter", "scan", "near_rssi", "away_rssi", "away_after", "auto_sync",
        "auto_sync_min_interval",
    }),
}  # fmt: skip


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
    # The PDA's BLE identity address (upper case), watched for presence; None: not watched.
    ble_identity: str | None = None


@dataclass(frozen=True)
class PresenceConfig:
    """``[presence]``: watching for the PDAs over Bluetooth (docs/presence.md)."""

    enabled: bool = True
    adapter: str = "hci0"
    scan: ScanMode = "auto"
    near_rssi: int = -70  # dBm
    away_rssi: int = -85  # dBm
    away_after: int = 60  # seconds
    auto_sync: bool = False
    auto_sync_min_interval: int = 600  # seconds

    @property
    def thresholds(self) -> Thresholds:
        """The near/away rules' numbers (validated at load)."""
        from daemon.presence_state import Thresholds

        return Thresholds(self.near_rssi, self.away_rssi, float(self.away_after))


@dataclass(frozen=True)
class MqttConfig:
    """The broker the daemon keeps a session with (spec/mqtt.md); ``[mqtt]`` in the file."""

    url: str
    tls: bool
    host: str
    port: int
    username: str | None = None
    password_file: Path | None = None
    ca_file: Path | None = None
    topic_root: str = ""
    protocol: MqttProtocol = "3.1.1"
    keepalive: int = 60
    ha_discovery: bool = False
    discovery_prefix: str = "homeassistant"


@dataclass(frozen=True)
class TriggerConfig:
    """Syncs the daemon starts by itself; ``[triggers]`` in the file."""

    on_card_inserted: bool = False
    every_minutes: int = 0
    # Which PDAs a trigger syncs; empty: every configured PDA.
    pdas: tuple[str, ...] = ()


@dataclass(frozen=True)
class DaemonConfig:
    """Limits of the long-running service; ``[daemon]`` in the file."""

    sync_timeout: int = 600
    max_waiting: int = 100


@dataclass(frozen=True)
class Config:
    """The whole, validated configuration."""

    path: Path
    node: NodeConfig
    card: CardConfig
    pdas: tuple[PdaConfig, ...]
    mqtt: MqttConfig | None = None
    triggers: TriggerConfig = TriggerConfig()
    daemon: DaemonConfig = DaemonConfig()
    presence: PresenceConfig = PresenceConfig()

    def watched_pdas(self) -> dict[str, str]:
        """``{name: BLE identity}`` of the PDAs the presence watcher looks for (maybe none)."""
        if not self.presence.enabled:
            return {}
        return {p.name: p.ble_identity for p in self.pdas if p.ble_identity is not None}

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

    def __init__(
        self, file: Path, prefix: str, table: dict[str, Any], known: frozenset[str]
    ) -> None:
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

    def opt_bool(self, name: str, default: bool) -> bool:
        v = self.table.get(name, default)
        if not isinstance(v, bool):
            raise ConfigError(self.file, self.key(name), "must be true or false")
        return v

    def opt_int(self, name: str, default: int, low: int, high: int) -> int:
        v = self.table.get(name, default)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise ConfigError(self.file, self.key(name), f"must be a whole number {low}-{high}")
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
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(file, unknown[0], "unknown section")

    node_r = _Reader(file, "node", _table(file, data, "node"), KEYS["node"])
    node_id = node_r.opt_str("id") or socket.gethostname().split(".")[0] or "simsync"
    if not _NAME_RE.match(node_id):
        raise ConfigError(file, "node.id", "use 1-64 letters, digits, '.', '_' or '-'")
    node = NodeConfig(id=node_id, state_dir=node_r.opt_path("state_dir") or default_state_dir())

    card_r = _Reader(file, "card", _table(file, data, "card"), KEYS["card"])
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
        r = _Reader(file, f"pda[{i}]", entry, KEYS["pda"])
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
        identity = _ble_identity(r, address)
        if identity is not None and any(p.ble_identity == identity for p in pdas):
            raise ConfigError(file, r.key("ble_identity"), f"{identity} is another PDA's too")
        pdas.append(PdaConfig(name, address, device_id, conflict, identity))
    return Config(
        path=file,
        node=node,
        card=card,
        pdas=tuple(pdas),
        mqtt=_mqtt(file, _table(file, data, "mqtt"), node.id) if "mqtt" in data else None,
        triggers=_triggers(file, _table(file, data, "triggers"), [p.name for p in pdas]),
        daemon=_daemon(file, _table(file, data, "daemon")),
        presence=_presence(file, _table(file, data, "presence")),
    )


_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


def _topic(r: _Reader, name: str, default: str) -> str:
    v = r.opt_str(name) or default
    if any(c in v for c in "+#\0") or v.startswith("/") or v.endswith("/") or "//" in v:
        raise ConfigError(
            r.file, r.key(name), "a topic without wildcards (+ #), empty levels or edge slashes"
        )
    return v


def _mqtt(file: Path, table: dict[str, Any], node_id: str) -> MqttConfig:
    r = _Reader(file, "mqtt", table, KEYS["mqtt"])
    url = r.req_str("url")
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ConfigError(file, "mqtt.url", "use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    try:
        port = parts.port or scheme[1]
    except ValueError:
        raise ConfigError(file, "mqtt.url", "the port must be a number 1-65535") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError(file, "mqtt.url", "no user in the URL: set username and password_file")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(file, "mqtt.url", "use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    username = r.opt_str("username")
    password_file = r.opt_path("password_file")
    if password_file is not None and username is None:
        raise ConfigError(file, "mqtt.password_file", "needs mqtt.username as well")
    ca_file = r.opt_path("ca_file")
    if ca_file is not None and not scheme[0]:
        raise ConfigError(file, "mqtt.ca_file", "only for mqtts:// URLs")
    protocol = r.opt_str("protocol") or "3.1.1"
    if protocol not in ("3.1.1", "5"):
        raise ConfigError(file, "mqtt.protocol", 'must be "3.1.1" or "5"')
    return MqttConfig(
        url=url,
        tls=scheme[0],
        host=parts.hostname,
        port=port,
        username=username,
        password_file=password_file,
        ca_file=ca_file,
        topic_root=_topic(r, "topic_root", f"simsync/{node_id}"),
        protocol=cast(MqttProtocol, protocol),
        keepalive=r.opt_int("keepalive", 60, 5, 3600),
        ha_discovery=r.opt_bool("ha_discovery", False),
        discovery_prefix=_topic(r, "discovery_prefix", "homeassistant"),
    )


def _triggers(file: Path, table: dict[str, Any], pda_names: list[str]) -> TriggerConfig:
    r = _Reader(file, "triggers", table, KEYS["triggers"])
    pdas = table.get("pdas", [])
    if not isinstance(pdas, list) or not all(isinstance(p, str) for p in pdas):
        raise ConfigError(file, "triggers.pdas", 'must be a list of PDA names, e.g. ["pda1"]')
    for name in pdas:
        if name not in pda_names:
            raise ConfigError(file, "triggers.pdas", f"no PDA named {name!r} in the config")
    return TriggerConfig(
        on_card_inserted=r.opt_bool("on_card_inserted", False),
        every_minutes=r.opt_int("every_minutes", 0, 0, 7 * 24 * 60),
        pdas=tuple(dict.fromkeys(cast(list[str], pdas))),
    )


def _daemon(file: Path, table: dict[str, Any]) -> DaemonConfig:
    r = _Reader(file, "daemon", table, KEYS["daemon"])
    return DaemonConfig(
        sync_timeout=r.opt_int("sync_timeout", 600, 1, 24 * 3600),
        max_waiting=r.opt_int("max_waiting", 100, 1, 10_000),
    )


def read_password_file(config: Config) -> str | None:
    """The MQTT password (first line of ``mqtt.password_file``), or None when not configured.

    Read at every connect, so a rotated password is picked up without a restart.
    """
    if config.mqtt is None or config.mqtt.password_file is None:
        return None
    path = config.mqtt.password_file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problem = f"cannot read {path}: {reason}"
        raise ConfigError(config.path, "mqtt.password_file", problem) from exc
    if not lines or not lines[0]:
        raise ConfigError(config.path, "mqtt.password_file", f"{path}: the first line is empty")
    register_secret(lines[0])  # masked in every log line from now on
    return lines[0]


def _ble_identity(r: _Reader, address: str) -> str | None:
    """``ble_identity``, or the address of a ``ble://`` PDA; upper case."""
    v = r.opt_str("ble_identity")
    if v is None:
        if not address.lower().startswith("ble://"):
            return None
        v = address[len("ble://") :].split("?", 1)[0].strip("/")
    v = v.strip().upper()
    if not _BDADDR_RE.match(v):
        raise ConfigError(r.file, r.key("ble_identity"), "a Bluetooth address: AA:BB:CC:DD:EE:FF")
    return v


def _presence(file: Path, table: dict[str, Any]) -> PresenceConfig:
    r = _Reader(file, "presence", table, KEYS["presence"])
    adapter = r.opt_str("adapter") or "hci0"
    if not re.match(r"^[A-Za-z0-9_]{1,32}$", adapter):
        raise ConfigError(file, "presence.adapter", 'an adapter name such as "hci0"')
    scan = r.opt_str("scan") or "auto"
    if scan not in _SCANS:
        raise ConfigError(file, "presence.scan", f"must be one of {', '.join(_SCANS)}")
    near = r.opt_int("near_rssi", -70, -127, 20)
    away = r.opt_int("away_rssi", -85, -127, 20)
    if near <= away:
        raise ConfigError(
            file,
            "presence.near_rssi",
            f"must be above away_rssi ({away}): the gap is the hysteresis",
        )
    return PresenceConfig(
        enabled=r.opt_bool("enabled", True),
        adapter=adapter,
        scan=scan,
        near_rssi=near,
        away_rssi=away,
        away_after=r.opt_int("away_after", 60, 1, 3600),
        auto_sync=r.opt_bool("auto_sync", False),
        auto_sync_min_interval=r.opt_int("auto_sync_min_interval", 600, 0, 7 * 24 * 3600),
    )


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
