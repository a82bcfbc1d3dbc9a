"""`simsync card init` and `simsync card info`: flags, refusals, JSON, no secrets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from daemon.cli import main
from simcard import open_image
from simcard.state import luhn_ok


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["card", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_init_defaults_then_info(tmp_path: Path, capsys) -> None:
    path = tmp_path / "card.sim"
    assert run(capsys, "init", str(path)) == (0, "", "")
    code, out, err = run(capsys, "info", str(path))
    assert (code, err) == (0, "")
    info = json.loads(out)
    assert info["records"] == 250
    assert info["alpha_len"] == 18
    assert info["used"] == 0
    assert info["partners"] == []
    assert info["table_size"] == 8
    assert info["sync_applet"] is True
    assert luhn_ok(info["iccid"])
    assert 18 <= len(info["iccid"]) <= 20
    # 4 bytes per record of ADN (250), SMSP (2), EXT1 (10) + 31 bytes per table entry
    assert info["metadata_bytes"] == 4 * 262 + 31 * 8
    assert info["metadata_bytes"] <= 4 * 262 + 32 * 8


def test_init_with_flags(tmp_path: Path, capsys) -> None:
    path = tmp_path / "card.sim"
    argv = ["init", str(path), "--records", "20", "--alpha-len", "10", "--iccid"]
    argv += ["89490000123456789012", "--pin", "97531", "--puk", "86420864"]
    argv += ["--partners", "16", "--no-sync-applet"]
    assert run(capsys, *argv)[0] == 0
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    info = json.loads(out)
    assert (info["records"], info["alpha_len"], info["table_size"]) == (20, 10, 16)
    assert info["iccid"] == "89490000123456789012"
    assert info["sync_applet"] is False
    for secret in ("97531", "86420864", b"97531".hex(), b"86420864".hex()):
        assert secret not in out
    card = open_image(path)
    try:
        assert card.transmit(b"\xa0\x20\x00\x01\x08" + b"97531\xff\xff\xff") == b"\x90\x00"
    finally:
        card.close()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--records", "0", "--records must be a whole number from 1 to 254"),
        ("--records", "255", "--records must be"),
        ("--records", "ten", "--records must be"),
        ("--records", "-1", "--records must be"),
        ("--alpha-len", "0", "--alpha-len must be a whole number from 1 to 241"),
        ("--alpha-len", "242", "--alpha-len must be"),
        ("--partners", "7", "--partners must be a whole number from 8 to 16"),
        ("--partners", "17", "--partners must be"),
        ("--iccid", "12345678901234567", "--iccid must be 18-20 digits"),
        ("--iccid", "123456789012345678901", "--iccid must be 18-20 digits"),
        ("--iccid", "8949000012345678x03", "--iccid must be 18-20 digits"),
        ("--pin", "123", "--pin must be 4-8 digits"),
        ("--pin", "123456789", "--pin must be 4-8 digits"),
        ("--pin", "12a4", "--pin must be 4-8 digits"),
        ("--puk", "1234567", "--puk must be 8 digits"),
        ("--puk", "1234567x", "--puk must be 8 digits"),
    ],
)
def test_init_bad_flag(tmp_path: Path, capsys, flag: str, value: str, message: str) -> None:
    path = tmp_path / "card.sim"
    code, out, err = run(capsys, "init", str(path), flag, value)
    assert code == 2
    assert out == ""
    assert err.startswith(f"simsync card init: {message}")
    assert err.count("\n") == 1
    if flag in ("--pin", "--puk"):
        assert value not in err
    assert not path.exists()


def test_init_refuses_to_overwrite(tmp_path: Path, capsys) -> None:
    path = tmp_path / "card.sim"
    path.write_bytes(b"precious")
    code, _, err = run(capsys, "init", str(path))
    assert code == 1
    assert "exists" in err
    assert err.count("\n") == 1
    assert path.read_bytes() == b"precious"


def test_init_into_missing_directory(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "init", str(tmp_path / "no" / "card.sim"))
    assert code == 1
    assert err.startswith("simsync card init: ")
    assert err.count("\n") == 1


def test_info_missing_corrupt_locked(tmp_path: Path, capsys) -> None:
    code, out, err = run(capsys, "info", str(tmp_path / "nope.sim"))
    assert (code, out) == (1, "")
    assert "no such card image" in err
    bad = tmp_path / "bad.sim"
    bad.write_bytes(b"garbage" * 30)
    digest = hashlib.sha256(bad.read_bytes()).hexdigest()
    code, out, err = run(capsys, "info", str(bad))
    assert (code, out) == (1, "")
    assert "not a simsync card image" in err
    assert err.count("\n") == 1
    assert hashlib.sha256(bad.read_bytes()).hexdigest() == digest
    good = tmp_path / "good.sim"
    assert run(capsys, "init", str(good))[0] == 0
    card = open_image(good)
    try:
        code, out, err = run(capsys, "info", str(good))
    finally:
        card.close()
    assert (code, out) == (1, "")
    assert "in use" in err


def test_info_lists_partners_in_hex(tmp_path: Path, capsys) -> None:
    from ._apdu import newsync, storesync, verify

    path = tmp_path / "card.sim"
    assert run(capsys, "init", str(path), "--records", "10")[0] == 0
    card = open_image(path)
    try:
        verify(card)
        for partner in (b"pda-1", b"\x01\x02"):
            assert storesync(card, 0, newsync(card, 0, partner).proposed) == 0x9000
    finally:
        card.close()
    info = json.loads(run(capsys, "info", str(path))[1])
    assert info["partners"] == [b"pda-1".hex(), "0102"]
    assert info["sync_entries"][0] == {"partner": b"pda-1".hex(), "database": "6F3A"}
