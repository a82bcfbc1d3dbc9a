from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config, read_pin_file

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
            "unknown transport scheme 'irda' in 'irda://0'; known: memory, ",
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
        ('[mqtt]\nbroker = "x"\n', "mqtt", "unknown section"),
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
