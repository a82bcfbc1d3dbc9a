"""`simsync check-config FILE`: every key explained, files checked, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli import main

PIN = "73519468"
PDA_ID = "ab" * 32


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check-config", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def good_config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "pin").write_text(PIN + "\n")
    (tmp_path / "pin").chmod(0o600)
    (tmp_path / "card.img").write_bytes(b"x" * 10)
    p = tmp_path / "phone.toml"
    p.write_text(
        '[node]\nid = "phone1"\nstate_dir = "state"\n'
        '[card]\nimage = "card.img"\npin_file = "pin"\n'
        f'[[pda]]\nname = "pda1"\naddress = "tcp://127.0.0.1:7878"\ndevice_id = "{PDA_ID}"\n'
        + extra
    )
    return p


def test_a_good_config_explains_every_key_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(good_config(tmp_path)))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == f"{tmp_path / 'phone.toml'}: usable"
    for line in (
        '  id = "phone1"',
        f"  state_dir = {tmp_path / 'state'}",
        "      does not exist yet; will be created",
        "  reader = (not set)  (default)",
        f"  image = {tmp_path / 'card.img'}",
        "      readable (10 bytes)",
        f"  pin_file = {tmp_path / 'pin'}",
        "      readable, holds a PIN of 4-8 digits (not shown)",
        '  conflict = "duplicate"  (default)',
        "[[pda]] #1",
    ):
        assert line in out.splitlines(), line
    assert "this phone's name in MQTT topics and logs" in out
    assert PIN not in out


@pytest.mark.parametrize(
    ("pin_text", "problem"),
    [
        ("12a4\n", "the first line must be the PIN, 4-8 digits"),
        ("\n", "the first line is empty"),
    ],
)
def test_a_bad_pin_file_is_a_problem_and_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pin_text: str, problem: str
) -> None:
    p = good_config(tmp_path)
    (tmp_path / "pin").write_text(pin_text)
    code, out, _ = run(capsys, str(p))
    assert code == 78
    assert f"      problem: {tmp_path / 'pin'}: {problem}" in out.splitlines()
    assert "12a4" not in out
    assert "NOT usable: 1 problem(s)" in out


def test_missing_and_unreadable_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = good_config(tmp_path)
    (tmp_path / "pin").unlink()
    (tmp_path / "card.img").unlink()
    (tmp_path / "card.img").mkdir()
    code, out, _ = run(capsys, str(p))
    assert code == 78
    assert f"      problem: {tmp_path / 'pin'}: No such file or directory" in out.splitlines()
    assert f"      problem: {tmp_path / 'card.img'}: not a regular file" in out.splitlines()
    assert "NOT usable: 2 problem(s)" in out


def test_a_world_readable_pin_file_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = good_config(tmp_path)
    (tmp_path / "pin").chmod(0o644)
    code, out, _ = run(capsys, str(p))
    assert code == 0
    assert f"chmod 600 {tmp_path / 'pin'}" in out
    assert out.splitlines()[-1].endswith("usable, 1 warning(s)")


def test_the_example_device_id_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = good_config(tmp_path)
    p.write_text(p.read_text().replace(PDA_ID, "0" * 64))
    code, out, _ = run(capsys, str(p))
    assert code == 0
    assert "warning: device_id is the example's zeros" in out


def test_a_config_that_does_not_load_exits_78_naming_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "phone.toml"
    p.write_text('[card]\nreader = "r"\nimage = "i"\n')
    code, out, _ = run(capsys, str(p))
    assert code == 78
    assert f"simsync check-config: {p}: card.image: set either card.reader" in out
    code, out, _ = run(capsys, str(tmp_path / "nope.toml"))
    assert code == 78
    assert "no such file" in out


def test_credentials_directory_as_the_unit_sees_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = good_config(tmp_path)
    creds = 'pin_file = "${CREDENTIALS_DIRECTORY}/pin"'
    p.write_text(p.read_text().replace('pin_file = "pin"', creds))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    code, out, _ = run(capsys, str(p))
    assert code == 78
    assert "$CREDENTIALS_DIRECTORY is not set" in out
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    code, out, _ = run(capsys, str(p))
    assert code == 0, out
    assert "readable, holds a PIN of 4-8 digits (not shown)" in out


def test_the_shipped_example_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """config/example.toml is usable as shipped once its PIN credential exists."""
    example = Path(__file__).resolve().parents[2] / "config" / "example.toml"
    (tmp_path / "pin").write_text(PIN + "\n")
    (tmp_path / "pin").chmod(0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))  # as simsync.service has it
    code, out, _ = run(capsys, str(example))
    assert code == 0, out
    assert out.splitlines()[-1].startswith(f"{example}: usable")
    assert "[[pda]] #1" in out
    assert PIN not in out


def test_as_a_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check-config", str(good_config(tmp_path))],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert PIN not in done.stdout + done.stderr


def test_it_says_what_presence_watches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(good_config(tmp_path)))
    assert code == 0
    assert "presence: nothing watched (no [[pda]] has a ble_identity)" in out.splitlines()

    watched = good_config(tmp_path, 'ble_identity = "aa:bb:cc:dd:ee:01"\n')
    code, out, _ = run(capsys, str(watched))
    assert code == 0
    line = "presence: the daemon watches pda1 (AA:BB:CC:DD:EE:01) on hci0; auto_sync off"
    assert line in out.splitlines()

    off = good_config(
        tmp_path,
        'ble_identity = "aa:bb:cc:dd:ee:01"\n[presence]\nenabled = false\nauto_sync = true\n',
    )
    code, out, _ = run(capsys, str(off))
    assert code == 0  # a warning, not a problem
    assert "presence: nothing watched ([presence] enabled = false)" in out.splitlines()
    assert "      warning: presence.auto_sync = true, but no PDA is watched" in out.splitlines()
    assert out.splitlines()[-1].endswith("usable, 1 warning(s)")
