"""The SIM's PIN is never worn out: `simsync sync` processes against a card behind pcscd + vpcd.

A wrong PIN file costs the card one try, however many syncs run; a fixed PIN file
syncs again; a card with fewer than 2 tries left is never sent a PIN.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from simcard import create_image
from tests.e2e_pcsc.rig import PdaProc, Phone
from tests.fixtures.pcsc import PcscConnection, ServedCard

# Eight digits: a 4-digit PIN turns up by chance inside a timestamp's microseconds or a
# port number, and the search below is for the PIN's digits anywhere.
RIGHT, WRONG, OTHER_WRONG = "24681357", "13572468", "99990000"


def _tries_left(conn: PcscConnection) -> int:
    """VERIFY CHV1 without data: 63Cx tells the tries left, 6983 none, 9000 verified (3)."""
    sw = conn.sw("00200001")
    if sw == 0x6983:
        return 0
    if sw == 0x9000:  # the right PIN was presented since the last reset: the count is full
        return 3
    assert sw & 0xFFF0 == 0x63C0, f"{sw:04X}"
    return sw & 0x0F


def _wrong_verify(conn: PcscConnection) -> None:
    sw = conn.sw("0020000108" + b"0000".ljust(8, b"\xff").hex())
    assert sw & 0xFFF0 == 0x63C0 or sw == 0x6983, f"{sw:04X}"


def _error(phone: Phone) -> dict[str, str]:
    proc = phone.sync_proc("pda1")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is False
    for pin in (RIGHT, WRONG, OTHER_WRONG):
        assert pin not in proc.stdout + proc.stderr
    error: dict[str, str] = result["error"]
    return error


def _setup(
    serve_card: Callable[..., ServedCard],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
    pin: str,
) -> tuple[ServedCard, Phone]:
    image = tmp_path / "card.img"
    create_image(image, records=20, pin=RIGHT)
    served = serve_card(image)
    pda = pda_proc("pda1")
    pda.start()
    phone = Phone(tmp_path / "phone", reader=served.reader, pin=pin)
    phone.pair("pda1", pda)
    return served, phone


def test_a_wrong_pin_file_costs_one_try_across_any_number_of_syncs(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    served, phone = _setup(serve_card, pda_proc, tmp_path, WRONG)
    term = pcsc_connect(served.reader)

    first = _error(phone)
    assert first["code"] == "pin_rejected"
    assert "tries left: 2" in first["message"]
    assert str(phone.pin_file) in first["message"]
    assert _tries_left(term) == 2
    for _ in range(4):  # a person, a cron job or a daemon keeps asking
        again = _error(phone)
        assert again["code"] == "pin_rejected"
        assert "will not present it again" in again["message"]
        assert str(phone.pin_file) in again["message"]
    assert _tries_left(term) == 2  # exactly one try spent

    # The record holds no PIN, in clear or as a plain hash.
    guard = phone.root / "state" / "pin-guard"
    state = b"".join(p.read_bytes() for p in guard.iterdir())
    assert WRONG.encode() not in state
    assert RIGHT.encode() not in state

    # A person fixes the file: the next sync presents it and works.
    phone.pin_file.write_text(RIGHT + "\n")
    ok = phone.sync("pda1")
    assert ok["ok"] is True, ok
    assert _tries_left(term) == 3
    # The card stays verified while this terminal keeps it powered, and a verified card
    # is sent no PIN at all; a reset (a phone restarting) ends that.
    term.reconnect()

    # The right PIN cleared the record: the old wrong PIN is a new mistake, tried once.
    phone.pin_file.write_text(WRONG + "\n")
    assert "tries left: 2" in _error(phone)["message"]
    assert "will not present it again" in _error(phone)["message"]
    # Another wrong PIN is a person's new attempt: presented once, then refused too.
    phone.pin_file.write_text(OTHER_WRONG + "\n")
    assert "tries left: 1" in _error(phone)["message"]
    assert "will not present it again" in _error(phone)["message"]
    assert _tries_left(term) == 1


def test_a_card_with_one_try_left_is_never_sent_a_pin(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    pda_proc: Callable[[str], PdaProc],
    tmp_path: Path,
) -> None:
    served, phone = _setup(serve_card, pda_proc, tmp_path, RIGHT)
    term = pcsc_connect(served.reader)
    _wrong_verify(term)  # another terminal spent two tries
    _wrong_verify(term)
    assert _tries_left(term) == 1

    for _ in range(3):
        error = _error(phone)
        assert error["code"] == "pin_rejected"
        assert "1 PIN try left" in error["message"]
        assert "enter it once in a phone" in error["message"]
    # Even the right PIN was not sent: sending it would have reset the count to 3.
    assert _tries_left(term) == 1

    _wrong_verify(term)
    assert _tries_left(term) == 0
    blocked = _error(phone)
    assert blocked["code"] == "card_blocked"
    assert "PUK" in blocked["message"]
