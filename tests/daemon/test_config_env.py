"""Paths in the config may name environment variables: systemd's credentials and state."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config, read_pin_file


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "phone.toml"
    p.write_text(text)
    return p


def test_credentials_directory_and_state_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "pin").write_text("4321\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    cfg = load_config(
        write(
            tmp_path,
            '[node]\nstate_dir = "$STATE_DIRECTORY"\n'
            '[card]\npin_file = "${CREDENTIALS_DIRECTORY}/pin"\n',
        )
    )
    assert cfg.card.pin_file == creds / "pin"
    assert cfg.node.state_dir == tmp_path / "state"
    assert read_pin_file(cfg) == "4321"


def test_an_unset_variable_is_a_config_error_not_an_empty_string(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    p = write(tmp_path, '[card]\npin_file = "${CREDENTIALS_DIRECTORY}/pin"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(p)
    assert caught.value.key == "card.pin_file"
    assert "$CREDENTIALS_DIRECTORY is not set" in caught.value.problem
    assert "LoadCredential" in caught.value.problem


def test_a_dollar_that_names_no_variable_stays(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[card]\npin_file = "pins/$1-pin"\n'))
    assert cfg.card.pin_file == tmp_path / "pins" / "$1-pin"


def test_a_default_for_outside_the_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = '[card]\npin_file = "${CREDENTIALS_DIRECTORY:-/etc/simsync}/pin"\n'
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert load_config(write(tmp_path, text)).card.pin_file == Path("/etc/simsync/pin")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/simsync.service")
    got = load_config(write(tmp_path, text)).card.pin_file
    assert got == Path("/run/credentials/simsync.service/pin")
