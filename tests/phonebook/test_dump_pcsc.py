"""`simsync card dump` through real pcscd + vpcd + `simsync card serve`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cardio.codecs import AdnRecord
from simcard import create_image, open_image

# Eight digits: a 4-digit PIN turns up by chance in a timestamp's microseconds, and the
# tests look for the PIN's digits anywhere in the output.
PIN, WRONG_PIN = "60418273", "13572468"
READ_ADN = [bytes.fromhex(h) for h in ("A0A40000023F00", "A0A40000027F10", "A0A40000026F3A")]


def fill(image: Path, names: dict[int, tuple[str, str]], pin: str = "0000") -> None:
    """Write records straight into the image, as the card's own terminal would."""
    card = open_image(image)
    try:
        card.power_on()
        for apdu in READ_ADN:
            assert card.transmit(apdu)[-2] == 0x9F
        verify = bytes.fromhex("A020000108") + pin.encode().ljust(8, b"\xff")
        assert card.transmit(verify) == b"\x90\x00"
        for n, (name, number) in names.items():
            raw = AdnRecord(name, number).encode(18)
            assert card.transmit(bytes([0xA0, 0xDC, n, 0x04, len(raw)]) + raw) == b"\x90\x00"
    finally:
        card.close()


def dump(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "card", "dump", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_dump_reads_the_phonebook_and_then_only_changes(
    serve_card: Callable[..., Any], tmp_path: Path
) -> None:
    image = tmp_path / "card.sqlite"
    create_image(image, records=30, pin=PIN)
    names = {1: ("Alice", "+4912345678"), 7: ("Δημήτρης", "0301234567"), 30: ("Bob", "*#06#")}
    fill(image, names, pin=PIN)
    served = serve_card(image)
    (tmp_path / "pin").write_text(PIN + "\n")
    state = tmp_path / "state"
    args = [
        "--reader",
        served.reader,
        "--pin-file",
        str(tmp_path / "pin"),
        "--state-dir",
        str(state),
    ]

    first = dump(*args, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == [
        {"record": 1, "name": "Alice", "number": "+4912345678"},
        {"record": 7, "name": "Δημήτρης", "number": "0301234567"},
        {"record": 30, "name": "Bob", "number": "*#06#"},
    ]
    assert PIN not in first.stdout + first.stderr

    text = dump(*args)
    assert text.returncode == 0, text.stderr
    assert "Alice" in text.stdout
    assert "+4912345678" in text.stdout
    # The local copy is in the state dir, keyed by ICCID.
    assert (state / "cards.sqlite").exists()


def test_wrong_pin_says_tries_left_and_never_retries(
    serve_card: Callable[..., Any], tmp_path: Path
) -> None:
    served = serve_card(records=5)
    (tmp_path / "pin").write_text(WRONG_PIN + "\n")
    args = [
        "--reader",
        served.reader,
        "--pin-file",
        str(tmp_path / "pin"),
        "--state-dir",
        str(tmp_path),
    ]
    res = dump(*args)
    assert res.returncode == 3
    assert "tries left: 2" in res.stderr
    assert WRONG_PIN not in res.stdout + res.stderr
    assert dump(*args).returncode == 3
    last = dump(*args)
    assert last.returncode == 3
    assert "blocked" in last.stderr
    (tmp_path / "pin").write_text("0000\n")
    blocked = dump(*args)
    assert blocked.returncode == 3
    assert "blocked" in blocked.stderr


def test_bad_reader_and_bad_pin_file_are_one_line_errors(
    serve_card: Callable[..., Any], tmp_path: Path
) -> None:
    served = serve_card(records=5)
    res = dump("--reader", "No Such Reader", "--state-dir", str(tmp_path))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1
    assert "No Such Reader" in res.stderr
    (tmp_path / "pin").write_text("12\n")
    res = dump("--reader", served.reader, "--pin-file", str(tmp_path / "pin"))
    assert res.returncode == 1
    assert "4-8 digits" in res.stderr


def test_dump_of_a_plain_sim_made_with_the_cli_flag(
    serve_card: Callable[..., Any], tmp_path: Path
) -> None:
    """A card without sync commands (`card init --no-sync-applet`): same output, full reads."""
    image = tmp_path / "plain.sqlite"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "daemon.cli",
            "card",
            "init",
            str(image),
            "--records",
            "12",
            "--no-sync-applet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    fill(image, {2: ("Plain", "112"), 12: ("SIM", "+3312")})
    served = serve_card(image)
    (tmp_path / "pin").write_text("0000\n")
    args = [
        "--reader",
        served.reader,
        "--pin-file",
        str(tmp_path / "pin"),
        "--state-dir",
        str(tmp_path / "state"),
        "--json",
    ]
    for _ in range(2):  # the second run has a copy, but a plain SIM cannot prove it current
        res = dump(*args)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout) == [
            {"record": 2, "name": "Plain", "number": "112"},
            {"record": 12, "name": "SIM", "number": "+3312"},
        ]
