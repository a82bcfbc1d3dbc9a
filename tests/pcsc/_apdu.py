"""Spec-level helpers over a raw PC/SC connection: procedure bytes, PIN, TLV, sync commands.

Deliberately independent of ``cardio`` (the host layer under test elsewhere): these
are written from spec/card.md alone, so the emulated card is checked against the
contract rather than against our own client.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.fixtures.pcsc import PcscConnection

PIN = "0000"
PUK = "12345678"
ADN = 0x6F3A
RECORD_LEN = 32  # alpha_len 18 + 14
RECORDS = 250


def code(digits: str) -> bytes:
    """A PIN/PUK as the card wants it: ASCII digits padded with FF to 8 bytes."""
    return digits.encode().ljust(8, b"\xff")


def sw_of(sw1: int, sw2: int) -> int:
    return (sw1 << 8) | sw2


@dataclass(frozen=True)
class Reply:
    """An R-APDU after the procedure bytes were dealt with."""

    data: bytes
    sw: int


class Card:
    """A thin driver of the emulated card through PC/SC, written from the spec."""

    def __init__(self, conn: PcscConnection) -> None:
        self.conn = conn

    def raw(self, apdu: bytes | str) -> Reply:
        data, sw1, sw2 = self.conn.transmit(apdu)
        return Reply(data, sw_of(sw1, sw2))

    def case4(self, apdu: bytes | str) -> Reply:
        """Send, and fetch the data with GET RESPONSE on the same class/channel."""
        raw = bytes.fromhex(apdu) if isinstance(apdu, str) else apdu
        first = self.raw(raw)
        if first.sw >> 8 not in (0x9F, 0x61):
            return first
        cla = 0xA0 if raw[0] == 0xA0 else raw[0] & 0x03
        return self.raw(bytes([cla, 0xC0, 0, 0, first.sw & 0xFF]))

    def select(self, fid: int, cla: int = 0xA0) -> Reply:
        """SELECT by FID; for CLA 0X ask for the FCP (P2 04)."""
        p2 = 0x00 if cla == 0xA0 else 0x04
        return self.case4(bytes([cla, 0xA4, 0x00, p2, 0x02]) + fid.to_bytes(2, "big"))

    def select_path(self, *fids: int, cla: int = 0xA0) -> Reply:
        reply = Reply(b"", 0)
        for fid in fids:
            reply = self.select(fid, cla)
            assert reply.sw == 0x9000, f"SELECT {fid:04X}: {reply.sw:04X}"
        return reply

    def verify(self, pin: str = PIN, cla: int = 0xA0) -> int:
        return self.raw(bytes([cla, 0x20, 0x00, 0x01, 0x08]) + code(pin)).sw

    def read_record(self, rec: int, cla: int = 0xA0, le: int = RECORD_LEN) -> Reply:
        return self.raw(bytes([cla, 0xB2, rec, 0x04, le]))

    def update_record(self, rec: int, data: bytes, cla: int = 0xA0) -> int:
        return self.raw(bytes([cla, 0xDC, rec, 0x04, len(data)]) + data).sw

    def open_channel(self) -> int:
        reply = self.raw("0070000001")
        assert reply.sw == 0x9000, f"MANAGE CHANNEL open: {reply.sw:04X}"
        assert len(reply.data) == 1
        return reply.data[0]

    def newsync(self, partner: bytes, channel: int = 0, db: int = ADN) -> Reply:
        body = tlv(0xC0, partner) + tlv(0xC1, db.to_bytes(2, "big"))
        return self.case4(bytes([0x80 | channel, 0x3A, 0, 0, len(body)]) + body + b"\x00")

    def getchanges(self, index: int, le: int, channel: int = 0) -> Reply:
        return self.raw(bytes([0x80 | channel, 0x3C, index >> 8, index & 0xFF, le]))

    def all_changes(self, channel: int = 0, page: int = 84) -> list[tuple[int, int]]:
        """Every (type, record) of the session, paged at ``page`` entries per GETCHANGES."""
        out: list[tuple[int, int]] = []
        total: int | None = None
        while total is None or len(out) < total:
            reply = self.getchanges(len(out), 2 + 3 * page, channel)
            if reply.sw >> 8 == 0x6C:
                reply = self.getchanges(len(out), reply.sw & 0xFF, channel)
            assert reply.sw == 0x9000, f"GETCHANGES at {len(out)}: {reply.sw:04X}"
            total = int.from_bytes(reply.data[:2], "big")
            body = reply.data[2:]
            assert body or len(out) == total, "no progress"
            out += entries(body)
        return out

    def storesync(self, obj: bytes, channel: int = 0) -> int:
        body = tlv(0xC3, obj)
        return self.raw(bytes([0x80 | channel, 0x3E, 0, 0, len(body)]) + body).sw


def entries(body: bytes) -> list[tuple[int, int]]:
    """GETCHANGES entries: (type, record number) per 3 bytes."""
    assert len(body) % 3 == 0, f"entries not a multiple of 3: {body.hex()}"
    return [(body[i], int.from_bytes(body[i + 1 : i + 3], "big")) for i in range(0, len(body), 3)]


def tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag, len(value)]) + value


def parse_tlv(data: bytes) -> dict[int, bytes]:
    """One level of BER-TLV with one-byte tags and lengths (all the spec uses)."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag, length = data[i], data[i + 1]
        assert tag not in out, f"duplicate tag {tag:02X}"
        out[tag] = data[i + 2 : i + 2 + length]
        assert len(out[tag]) == length, "truncated TLV"
        i += 2 + length
    return out


def adn_record(n: int, *, version: int = 0) -> bytes:
    """A distinct, valid-looking EF.ADN record for slot ``n`` (name, number)."""
    name = f"C{n:03d}v{version}".encode().ljust(18, b"\xff")
    digits = f"{n:04d}{version:04d}"
    bcd = bytes(int(digits[i + 1]) << 4 | int(digits[i]) for i in range(0, 8, 2))
    number = bytes([len(bcd) + 1, 0x81]) + bcd.ljust(10, b"\xff")
    return name + number + b"\xff\xff"
