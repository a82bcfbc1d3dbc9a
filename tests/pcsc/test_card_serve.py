"""``simsync card serve`` as a process: bad input, SIGTERM, pcscd restarts, a standard SIM tool."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from simcard.image import create_image, open_image
from tests.fixtures.pcsc import REPO, PcscConnection, Pcscd, ServedCard

from ._apdu import ADN, Card, adn_record

ICCID_HEX = "98 94 00 00 21 43 65 87 09 F3"


def _serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "card", "serve", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _fingerprint(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    "vpcd", ["nohost", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", ":35963", "::1:35963"]
)
def test_bad_vpcd_value(tmp_path: Path, vpcd: str) -> None:
    image = tmp_path / "c.img"
    create_image(image)
    before = _fingerprint(image)
    result = _serve(str(image), "--vpcd", vpcd)
    assert result.returncode == 2
    assert _one_error_line(result).startswith("simsync card serve: bad --vpcd:")
    assert _fingerprint(image) == before


def test_missing_image(tmp_path: Path) -> None:
    result = _serve(str(tmp_path / "nope.img"))
    assert result.returncode == 1
    assert "nope.img" in _one_error_line(result)
    assert not (tmp_path / "nope.img").exists()


def test_corrupt_image_is_left_alone(tmp_path: Path) -> None:
    image = tmp_path / "c.img"
    image.write_bytes(b"not a card image\n" * 10)
    before = _fingerprint(image)
    result = _serve(str(image), "--vpcd", "127.0.0.1:1", "--connect-timeout", "0.1")
    assert result.returncode == 1
    assert _one_error_line(result).startswith("simsync card serve: ")
    assert _fingerprint(image) == before


def test_locked_image(tmp_path: Path) -> None:
    image = tmp_path / "c.img"
    create_image(image)
    holder = open_image(image)
    try:
        result = _serve(str(image), "--vpcd", "127.0.0.1:1", "--connect-timeout", "0.1")
    finally:
        holder.close()
    assert result.returncode == 1
    assert "simsync card serve:" in _one_error_line(result)


def test_vpcd_unreachable_at_start_fails_after_the_timeout(tmp_path: Path) -> None:
    image = tmp_path / "c.img"
    create_image(image)
    result = _serve(str(image), "--vpcd", "127.0.0.1:1", "--connect-timeout", "0.3")
    assert result.returncode == 1
    assert "127.0.0.1:1 unreachable" in result.stderr
    assert "Traceback" not in result.stderr
    # The image lock was released on the way out.
    open_image(image).close()


@pytest.mark.pcsc
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0_and_releases_the_image(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    sig: signal.Signals,
) -> None:
    served = serve_card()
    card = Card(pcsc_connect(served.reader))
    assert card.verify() == 0x9000
    card.select_path(0x3F00, 0x7F10, ADN)
    assert card.update_record(9, adn_record(9)) == 0x9000
    assert served.stop(timeout=5, sig=sig) == 0
    # JSON lines (stderr is a file): the pipeline every command logs through.
    lines = [json.loads(line) for line in served.log().splitlines() if line.startswith("{")]
    events = [(line["event"], line.get("signal")) for line in lines]
    assert events[-2:] == [("stop requested", sig.name), ("vpcd connector stopped", None)]
    served.wait_absent()
    again = open_image(served.image)  # the lock is free
    try:
        again.power_on()
        again.transmit(bytes.fromhex("a02000010830303030ffffffff"))
        for fid in ("3f00", "7f10", "6f3a"):
            again.transmit(bytes.fromhex("a0a4000002" + fid))
        assert again.transmit(bytes.fromhex("a0b2090420")) == adn_record(9) + b"\x90\x00"
    finally:
        again.close()


@pytest.mark.pcsc
def test_serve_survives_a_pcscd_restart(
    pcscd: Pcscd,
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
) -> None:
    served = serve_card()
    card = Card(pcsc_connect(served.reader))
    assert card.verify() == 0x9000
    card.select_path(0x3F00, 0x7F10, ADN)
    assert card.update_record(4, adn_record(4)) == 0x9000
    pid = served.pid
    pcscd.restart()
    served.wait_present()
    assert served.proc is not None
    assert served.proc.poll() is None  # the same process, reconnected
    assert served.pid == pid
    card = Card(pcsc_connect(served.reader))
    assert card.verify() == 0x9000
    card.select_path(0x3F00, 0x7F10, ADN)
    assert card.read_record(4).data == adn_record(4)
    # Reconnected at least once (pcscd may drop a first reconnection while it starts up).
    assert served.log().count("vpcd connected") >= 2


def _scriptor(reader: str, script: str, tmp_path: Path) -> list[tuple[str, str]]:
    """Run pcsc-tools' scriptor; return (command, response) pairs, hex upper-case."""
    path = tmp_path / "script.txt"
    path.write_text(script)
    result = subprocess.run(
        ["scriptor", "-r", reader, str(path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    pairs: list[tuple[str, str]] = []
    command = None
    response: list[str] | None = None
    for line in result.stdout.splitlines():
        if line.startswith("> "):
            command = line[2:].strip()
        elif line.startswith("< ") or response is not None:
            text = line[2:] if line.startswith("< ") else line
            response = [*(response or []), text.split(" : ")[0].strip()]
            if " : " in text or text.startswith("OK"):
                assert command is not None
                pairs.append((command, " ".join(response)))
                response = None
    return pairs


@pytest.mark.pcsc
def test_scriptor_reads_the_card(
    serve_card: Callable[..., ServedCard],
    pcsc_connect: Callable[[str], PcscConnection],
    tmp_path: Path,
) -> None:
    served = serve_card()
    card = Card(pcsc_connect(served.reader))
    assert card.verify() == 0x9000
    card.select_path(0x3F00, 0x7F10, ADN)
    record = adn_record(1)
    assert card.update_record(1, record) == 0x9000
    card.conn.disconnect()
    record_hex = " ".join(f"{b:02X}" for b in record)
    script = """reset
A0 A4 00 00 02 3F 00
A0 A4 00 00 02 2F E2
A0 B0 00 00 0A
A0 20 00 01 08 30 30 30 30 FF FF FF FF
A0 A4 00 00 02 7F 10
A0 A4 00 00 02 6F 3A
A0 C0 00 00 0F
A0 B2 01 04 20
reset
00 A4 00 04 02 3F 00
00 A4 00 04 02 2F E2
00 B0 00 00 0A
00 20 00 01 08 30 30 30 30 FF FF FF FF
00 A4 00 04 02 7F 10
00 A4 00 04 02 6F 3A
00 B2 01 04 20
"""
    got = dict(enumerate(_scriptor(served.reader, script, tmp_path)))
    responses = [r for _i, (_c, r) in sorted(got.items())]
    assert len(responses) == 17, got
    assert responses[0].startswith("OK")
    assert re.fullmatch(r"9F [0-9A-F]{2}", responses[1])
    assert re.fullmatch(r"9F 0F", responses[2])
    assert responses[3] == f"{ICCID_HEX} 90 00"
    assert responses[4] == "90 00"
    assert responses[6] == "9F 0F"
    gsm_ef = responses[7].split()
    assert gsm_ef[4:7] == ["6F", "3A", "04"]
    assert gsm_ef[13:17] == ["01", "20", "90", "00"]
    assert responses[8] == f"{record_hex} 90 00"
    assert re.fullmatch(r"61 [0-9A-F]{2}", responses[10])
    assert responses[12] == f"{ICCID_HEX} 90 00"
    assert responses[13] == "90 00"
    assert responses[16] == f"{record_hex} 90 00"
