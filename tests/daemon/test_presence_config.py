"""``[presence]`` and ``[[pda]] ble_identity``: defaults, ble:// addresses, precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import Config, ConfigError, PresenceConfig, load_config
from daemon.presence_state import Thresholds

DEV = "ab" * 32


def pda(name: str = "p", address: str = "tcp://h:1", extra: str = "") -> str:
    return f'[[pda]]\nname = "{name}"\naddress = "{address}"\ndevice_id = "{DEV}"\n{extra}'


def load(tmp_path: Path, text: str) -> Config:
    p = tmp_path / "simsync.toml"
    p.write_text(text, encoding="utf-8")
    return load_config(p)


def test_defaults_watch_only_pdas_with_an_identity(tmp_path: Path) -> None:
    cfg = load(tmp_path, pda("a", extra='ble_identity = "aa:bb:cc:dd:ee:01"\n') + pda("b"))
    assert cfg.presence == PresenceConfig()
    assert cfg.presence.thresholds == Thresholds(-70, -85, 60.0)
    assert cfg.pdas[0].ble_identity == "AA:BB:CC:DD:EE:01"
    assert cfg.pdas[1].ble_identity is None
    assert cfg.watched_pdas() == {"a": "AA:BB:CC:DD:EE:01"}


def test_every_key(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        '[presence]\nenabled = true\nadapter = "hci1"\nscan = "active"\nnear_rssi = -60\n'
        "away_rssi = -90\naway_after = 120\nauto_sync = true\nauto_sync_min_interval = 0\n"
        + pda(extra='ble_identity = "AA:BB:CC:DD:EE:01"\n'),
    )
    assert cfg.presence.thresholds == Thresholds(-60, -90, 120.0)
    assert cfg.presence == PresenceConfig(
        enabled=True,
        adapter="hci1",
        scan="active",
        near_rssi=-60,
        away_rssi=-90,
        away_after=120,
        auto_sync=True,
        auto_sync_min_interval=0,
    )


def test_disabled_watches_nothing(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "[presence]\nenabled = false\n" + pda(extra='ble_identity = "AA:BB:CC:DD:EE:01"\n'),
    )
    assert cfg.watched_pdas() == {}


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[presence]\nscan = "loud"\n', "presence.scan", "auto, passive, active"),
        ("[presence]\nnear_rssi = -90\n", "presence.near_rssi", "above away_rssi (-85)"),
        ("[presence]\nnear_rssi = -85\n", "presence.near_rssi", "above away_rssi"),
        ("[presence]\naway_rssi = -128\n", "presence.away_rssi", "-127-20"),
        ("[presence]\naway_after = 0\n", "presence.away_after", "1-3600"),
        ("[presence]\naway_after = 2.5\n", "presence.away_after", "whole number"),
        ('[presence]\nauto_sync = "yes"\n', "presence.auto_sync", "true or false"),
        ("[presence]\nauto_sync_min_interval = -1\n", "presence.auto_sync_min_interval", "0-"),
        ('[presence]\nadapter = "hci 0"\n', "presence.adapter", "hci0"),
        ("[presence]\nrssi = 3\n", "presence.rssi", "unknown key"),
        ("presence = 3\n", "presence", "must be a table"),
        (pda(extra='ble_identity = "AA:BB:CC"\n'), "pda[0].ble_identity", "AA:BB:CC:DD:EE:FF"),
        (pda(extra="ble_identity = 7\n"), "pda[0].ble_identity", "non-empty string"),
        (
            pda("a", extra='ble_identity = "AA:BB:CC:DD:EE:01"\n')
            + pda("b", extra='ble_identity = "aa:bb:cc:dd:ee:01"\n'),
            "pda[1].ble_identity",
            "AA:BB:CC:DD:EE:01 is another PDA's too",
        ),
    ],
)
def test_bad_presence_config_names_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    assert info.value.key == key
    assert problem in info.value.problem
