from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.config import KEYS, ConfigError, load_config, read_password_file, read_pin_file

ROOT = Path(__file__).resolve().parents[2]
DEV = "ab" * 32
PDA = '[[pda]]\nname = "p"\naddress = "tcp://h:1"\n'


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "simsync.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_example_config_is_valid() -> None:
    cfg = load_config(ROOT / "config" / "example.toml")
    assert cfg.node.id == "phone1"
    assert cfg.card.reader == "Virtual PCD 00 00"
    assert [p.name for p in cfg.pdas] == ["pda1"]
    assert cfg.pdas[0].conflict == "duplicate"
    assert cfg.pda(None).name == "pda1"


_TABLE_LINE = re.compile(r"^\[\[?([a-z]+)\]\]?\s*$")
# A key set, or shown commented out ("# username = ..."), in the example.
_KEY_LINE = re.compile(r"^(?:# ?)?([a-z_]+) = ")


def test_the_example_documents_every_key_the_loader_accepts() -> None:
    documented: dict[str, set[str]] = {}
    table = ""
    for line in (ROOT / "config" / "example.toml").read_text().splitlines():
        if m := _TABLE_LINE.match(line):
            table = m[1]
        elif m := _KEY_LINE.match(line):
            documented.setdefault(table, set()).add(m[1])
    assert set(documented) == set(KEYS)  # every table, and no key outside one
    for name, keys in KEYS.items():
        assert documented[name] == keys, f"[{name}]: {sorted(documented[name] ^ keys)}"


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, '[node]\nid = "x"\nstate_dir = "st"\n[card]\npin_file = "pin"\n')
    cfg = load_config(p)
    assert cfg.node.state_dir == tmp_path / "st"
    assert cfg.card.pin_file == tmp_path / "pin"


def test_device_id_accepts_colons_and_case(tmp_path: Path) -> None:
    colons = ":".join(["AB"] * 32)
    p = write(tmp_path, f'[[pda]]\nname = "p"\naddress = "tcp://h:1"\ndevice_id = "{colons}"\n')
    assert load_config(p).pdas[0].device_id == DEV


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[node\n", "", "not valid TOML"),
        ('[nodes]\nid = "x"\n', "nodes", "unknown section"),
        ('[node]\nid = "bad id!"\n', "node.id", "letters"),
        ("[node]\nid = 3\n", "node.id", "non-empty string"),
        ('[node]\ncolour = "red"\n', "node.colour", "unknown key"),
        ('[card]\nreader = "r"\nimage = "i"\n', "card.image", "not both"),
        ('[[pda]]\naddress = "tcp://h:1"\ndevice_id = "' + DEV + '"\n', "pda[0].name", "missing"),
        (
            '[[pda]]\nname = "p"\naddress = "h:1"\ndevice_id = "' + DEV + '"\n',
            "pda[0].address",
            "unknown transport scheme 'h'",
        ),
        (
            PDA.replace("tcp://h:1", "tcp://h") + 'device_id = "' + DEV + '"\n',
            "pda[0].address",
            "port",
        ),
        (
            PDA.replace("tcp://h:1", "irda://0") + 'device_id = "' + DEV + '"\n',
            "pda[0].address",
            "unknown transport scheme 'irda' in 'irda://0'; known: ble, memory, ",
        ),
        (
            PDA.replace("tcp://h:1", "serial://dev/rfcomm0") + 'device_id = "' + DEV + '"\n',
            "pda[0].address",
            "three slashes",
        ),
        (
            PDA.replace("tcp://h:1", "serial:///dev/rfcomm0?baud=1")
            + 'device_id = "'
            + DEV
            + '"\n',
            "pda[0].address",
            "baud must be one of",
        ),
        ('[mqtt]\nbroker = "x"\n', "mqtt.broker", "unknown key"),
        ("[mqtt]\n", "mqtt.url", "missing"),
        ('[mqtt]\nurl = "http://h"\n', "mqtt.url", "mqtt://HOST"),
        ('[mqtt]\nurl = "mqtt://"\n', "mqtt.url", "mqtt://HOST"),
        ('[mqtt]\nurl = "mqtt://h/x"\n', "mqtt.url", "mqtt://HOST"),
        ('[mqtt]\nurl = "mqtt://h:99999"\n', "mqtt.url", "1-65535"),
        ('[mqtt]\nurl = "mqtt://u:p@h"\n', "mqtt.url", "password_file"),
        ('[mqtt]\nurl = "mqtt://h"\npassword_file = "pw"\n', "mqtt.password_file", "username"),
        ('[mqtt]\nurl = "mqtt://h"\nca_file = "ca"\n', "mqtt.ca_file", "mqtts://"),
        ('[mqtt]\nurl = "mqtt://h"\nprotocol = "4"\n', "mqtt.protocol", '"3.1.1" or "5"'),
        ('[mqtt]\nurl = "mqtt://h"\nkeepalive = 1\n', "mqtt.keepalive", "5-3600"),
        ('[mqtt]\nurl = "mqtt://h"\nha_discovery = "yes"\n', "mqtt.ha_discovery", "true or"),
        ('[mqtt]\nurl = "mqtt://h"\ntopic_root = "a/#"\n', "mqtt.topic_root", "wildcards"),
        ('[mqtt]\nurl = "mqtt://h"\ntopic_root = "/a"\n', "mqtt.topic_root", "slashes"),
        ('[mqtt]\nurl = "mqtt://h"\ndiscovery_prefix = "a//b"\n', "mqtt.discovery_prefix", "empty"),
        ('mqtt = "x"\n', "mqtt", "must be a table"),
        ("[triggers]\nevery_minutes = -1\n", "triggers.every_minutes", "whole number"),
        ("[triggers]\nevery_minutes = 1.5\n", "triggers.every_minutes", "whole number"),
        ("[triggers]\non_card_inserted = 1\n", "triggers.on_card_inserted", "true or false"),
        ('[triggers]\npdas = ["nope"]\n', "triggers.pdas", "no PDA named 'nope'"),
        ('[triggers]\npdas = "p"\n', "triggers.pdas", "list of PDA names"),
        ("[triggers]\nwhen = 1\n", "triggers.when", "unknown key"),
        ("[daemon]\nsync_timeout = 0\n", "daemon.sync_timeout", "1-86400"),
        ("[daemon]\nmax_waiting = 0\n", "daemon.max_waiting", "1-10000"),
        (PDA + 'device_id = "xyz"\n', "pda[0].device_id", "64 hex"),
        (
            PDA + 'device_id = "' + DEV + '"\nconflict = "x"\n',
            "pda[0].conflict",
            "duplicate, card-wins, pda-wins",
        ),
        ('pda = "x"\n', "pda", "array of tables"),
    ],
)
def test_bad_config_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.key == key
    assert problem in exc.value.problem
    assert str(p) in str(exc.value)


def test_serial_addresses_are_accepted(tmp_path: Path) -> None:
    for address in ("serial:///dev/rfcomm0", "serial:///dev/ircomm0?baud=9600&dead_after=30"):
        p = write(tmp_path, PDA.replace("tcp://h:1", address) + f'device_id = "{DEV}"\n')
        assert load_config(p).pdas[0].address == address


def test_duplicate_pda_names_rejected(tmp_path: Path) -> None:
    one = f'[[pda]]\nname = "p"\naddress = "tcp://h:1"\ndevice_id = "{DEV}"\n'
    with pytest.raises(ConfigError, match="duplicate PDA name"):
        load_config(write(tmp_path, one + one))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_pda_lookup(tmp_path: Path) -> None:
    two = "".join(
        f'[[pda]]\nname = "{n}"\naddress = "tcp://h:1"\ndevice_id = "{DEV}"\n' for n in ("a", "b")
    )
    cfg = load_config(write(tmp_path, two))
    assert cfg.pda("b").name == "b"
    with pytest.raises(ConfigError, match="several PDAs"):
        cfg.pda(None)
    with pytest.raises(ConfigError, match="no PDA named 'c'"):
        cfg.pda("c")


def test_pin_file_is_read_and_never_echoed(tmp_path: Path) -> None:
    (tmp_path / "pin").write_text("1234\n")
    cfg = load_config(write(tmp_path, '[card]\npin_file = "pin"\n'))
    assert read_pin_file(cfg) == "1234"
    (tmp_path / "pin").write_text("98765x\n")
    with pytest.raises(ConfigError) as exc:
        read_pin_file(cfg)
    assert "98765" not in str(exc.value)
    assert "4-8 digits" in str(exc.value)


def test_mqtt_triggers_and_daemon_keys(tmp_path: Path) -> None:
    text = (
        '[node]\nid = "ph.one"\n'
        '[mqtt]\nurl = "mqtts://broker.example:8884"\nusername = "u"\n'
        'password_file = "pw"\nca_file = "ca.pem"\nprotocol = "5"\nha_discovery = true\n'
        '[triggers]\non_card_inserted = true\nevery_minutes = 30\npdas = ["p"]\n'
        "[daemon]\nsync_timeout = 60\nmax_waiting = 5\n" + PDA + f'device_id = "{DEV}"\n'
    )
    cfg = load_config(write(tmp_path, text))
    m = cfg.mqtt
    assert m is not None
    assert (m.tls, m.host, m.port, m.username) == (True, "broker.example", 8884, "u")
    assert m.password_file == tmp_path / "pw"
    assert m.ca_file == tmp_path / "ca.pem"
    assert m.topic_root == "simsync/ph.one"
    assert (m.protocol, m.keepalive, m.ha_discovery, m.discovery_prefix) == (
        "5",
        60,
        True,
        "homeassistant",
    )
    assert cfg.triggers.on_card_inserted
    assert cfg.triggers.every_minutes == 30
    assert cfg.triggers.pdas == ("p",)
    assert (cfg.daemon.sync_timeout, cfg.daemon.max_waiting) == (60, 5)


def test_mqtt_defaults_and_no_mqtt(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[mqtt]\nurl = "mqtt://h"\ntopic_root = "home/phone"\n'))
    assert cfg.mqtt is not None
    assert (cfg.mqtt.port, cfg.mqtt.tls, cfg.mqtt.protocol) == (1883, False, "3.1.1")
    assert cfg.mqtt.topic_root == "home/phone"
    bare = load_config(write(tmp_path, ""))
    assert bare.mqtt is None
    assert not bare.triggers.on_card_inserted
    assert bare.triggers.every_minutes == 0
    assert bare.daemon.sync_timeout == 600


def test_password_file_is_read_and_never_echoed(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, '[mqtt]\nurl = "mqtt://h"\nusername = "u"\npassword_file = "pw"\n')
    )
    with pytest.raises(ConfigError, match="cannot read") as exc:
        read_password_file(cfg)
    assert exc.value.key == "mqtt.password_file"
    (tmp_path / "pw").write_text("s3cret pass \nignored\n")
    assert read_password_file(cfg) == "s3cret pass "
    (tmp_path / "pw").write_text("\nsecond-line-secret\n")
    with pytest.raises(ConfigError, match="first line is empty") as exc:
        read_password_file(cfg)
    assert "second-line-secret" not in str(exc.value)
