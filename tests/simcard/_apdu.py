"""Small APDU helpers for the card tests (bytes in, bytes out; no host layer)."""

from __future__ import annotations

from dataclasses import dataclass

from simcard import SimCard

ADN = 0x6F3A
EXT1 = 0x6F4A
TELECOM = 0x7F10
PIN = b"0000".ljust(8, b"\xff")
PUK = b"12345678"


def h(text: str) -> bytes:
    """Hex with spaces to bytes."""
    return bytes.fromhex(text.replace(" ", ""))


def sw(resp: bytes) -> int:
    """The status word of an R-APDU."""
    return int.from_bytes(resp[-2:], "big")


def tx(card: SimCard, apdu: bytes | str) -> bytes:
    """Send one APDU (bytes or spaced hex)."""
    return card.transmit(h(apdu) if isinstance(apdu, str) else apdu)


def ok(card: SimCard, apdu: bytes | str) -> bytes:
    """Send, expect 9000 and return the data."""
    resp = tx(card, apdu)
    assert sw(resp) == 0x9000, f"{apdu!r} -> {resp.hex()}"
    return resp[:-2]


def case4(card: SimCard, apdu: bytes, channel: int = 0, gsm: bool = False) -> bytes:
    """Send a case-4 command, expect the procedure bytes, fetch the data."""
    resp = card.transmit(apdu)
    assert resp[0] == (0x9F if gsm else 0x61), resp.hex()
    cla = 0xA0 if gsm else channel
    return ok(card, bytes((cla, 0xC0, 0, 0, resp[1])))


def verify(card: SimCard) -> None:
    """Verify the default PIN."""
    ok(card, b"\xa0\x20\x00\x01\x08" + PIN)


def open_channel(card: SimCard) -> int:
    """MANAGE CHANNEL open; the channel number."""
    return ok(card, "00 70 00 00 01")[0]


def select(card: SimCard, channel: int, *fids: int) -> None:
    """SELECT each FID in turn on a channel (no response data)."""
    for fid in fids:
        ok(card, bytes((channel, 0xA4, 0x00, 0x0C, 0x02)) + fid.to_bytes(2, "big"))


def update(card: SimCard, channel: int, rec: int, data: bytes) -> None:
    """UPDATE RECORD absolute on the channel's current EF."""
    ok(card, bytes((channel, 0xDC, rec, 0x04, len(data))) + data)


def read(card: SimCard, channel: int, rec: int, length: int) -> bytes:
    """READ RECORD absolute on the channel's current EF."""
    return ok(card, bytes((channel, 0xB2, rec, 0x04, length)))


@dataclass(frozen=True)
class NewSync:
    """The parsed NEWSYNC answer."""

    last: bytes | None
    proposed: bytes
    count: int


def newsync(card: SimCard, channel: int, partner: bytes, fid: int = ADN) -> NewSync:
    """NEWSYNC on a channel, with the trailing Le."""
    data = b"\xc0" + bytes((len(partner),)) + partner + b"\xc1\x02" + fid.to_bytes(2, "big")
    out = case4(card, bytes((0x80 | channel, 0x3A, 0, 0, len(data))) + data + b"\x00", channel)
    last = None
    if out[:2] == b"\xc2\x08":
        last, out = out[2:10], out[10:]
    assert out[:2] == b"\xc3\x08", out.hex()
    assert out[10:12] == b"\xc4\x02", out.hex()
    assert len(out) == 14, out.hex()
    return NewSync(last, out[2:10], int.from_bytes(out[12:14], "big"))


def getchanges(card: SimCard, channel: int, page: int = 84) -> list[tuple[int, int]]:
    """Every change entry, fetched ``page`` entries at a time (exact Le)."""
    entries: list[tuple[int, int]] = []
    total = None
    while total is None or len(entries) < total:
        idx = len(entries)
        probe = tx(card, bytes((0x80 | channel, 0x3C, idx >> 8, idx & 0xFF, 2 + 3 * page)))
        if sw(probe) >> 8 == 0x6C:  # fewer entries left than a page: the card says how many
            probe = tx(card, bytes((0x80 | channel, 0x3C, idx >> 8, idx & 0xFF, probe[1])))
        assert sw(probe) == 0x9000, probe.hex()
        data = probe[:-2]
        total = int.from_bytes(data[:2], "big")
        body = data[2:]
        got = [(body[i], body[i + 1] << 8 | body[i + 2]) for i in range(0, len(body), 3)]
        assert got or len(entries) == total
        entries += got
    return entries


def storesync(card: SimCard, channel: int, obj: bytes) -> int:
    """STORESYNC; the status word."""
    return sw(tx(card, bytes((0x80 | channel, 0x3E, 0, 0, 10, 0xC3, 8)) + obj))
