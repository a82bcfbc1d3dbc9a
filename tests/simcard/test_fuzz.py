"""Random APDUs: the core never raises, answers only known status words, and a rejected
command leaves the persistent state exactly as it was."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from simcard import STATUS_WORDS, MemoryStore, SimCard
from simcard.state import CardParams, new_state

PIN = b"0000".ljust(8, b"\xff")
PUK = b"12345678"
FIDS = [0x3F00, 0x7F10, 0x7F20, 0x6F3A, 0x6F42, 0x6F4A, 0x2FE2, 0x6F07, 0x6FAD, 0x1234]
INS = [0xA4, 0xA4, 0xB0, 0xB2, 0xDC, 0xDC, 0x20, 0x2C, 0xF2, 0x70, 0xC0, 0x3A, 0x3C, 0x3E, 0x3E]
SUCCESS_SW1 = (0x61, 0x9F)
CHV_FAILURES = {0x9804, 0x9840, 0x6983}


def make_card() -> tuple[SimCard, MemoryStore]:
    store = MemoryStore(
        new_state(CardParams(records=6, alpha_len=2, partners=8), "0000", "12345678")
    )
    return SimCard(store), store


def known(sw: int) -> bool:
    """A status word the card may answer (6F00 excluded: a RAM card never fails to write)."""
    sw1 = sw >> 8
    if sw1 in (0x61, 0x9F, 0x6C) or sw & 0xFFF0 == 0x63C0:
        return True
    return sw in STATUS_WORDS and sw != 0x6F00


def without_counters(snapshot: tuple[object, ...]) -> tuple[object, ...]:
    # (params, binaries, records, meta, pin, puk, pin_left, puk_left, slots)
    return snapshot[:6] + snapshot[8:]


def check(card: SimCard, store: MemoryStore, apdu: bytes) -> bytes:
    """Send one APDU and check the contract; the response."""
    before = store.snapshot()
    resp = card.transmit(apdu)
    assert len(resp) >= 2, apdu.hex()
    sw = int.from_bytes(resp[-2:], "big")
    assert known(sw), f"{apdu.hex()} -> {resp.hex()}"
    if sw != 0x9000 and resp[-2] not in SUCCESS_SW1:
        assert len(resp) == 2 or sw >> 8 == 0x61, f"{apdu.hex()} -> data with an error"
        after = store.snapshot()
        if len(apdu) > 1 and apdu[1] in (0x20, 0x2C) and (sw in CHV_FAILURES or sw >> 4 == 0x63C):
            assert without_counters(after) == without_counters(before), apdu.hex()
        else:
            assert after == before, f"rejected {apdu.hex()} -> {resp.hex()} changed the card"
    return resp


# Plausible P1 P2 per instruction (the generator still mutates them now and then).
P1P2 = {
    0xA4: [(0, 0), (0, 4), (0, 0x0C)],
    0xB0: [(0, 0), (0, 4), (0, 9)],
    0xB2: [(1, 4), (2, 4), (6, 4), (0, 2), (0, 3), (0, 4), (7, 4)],
    0xDC: [(1, 4), (2, 4), (3, 4), (6, 4), (0, 2), (0, 3)],
    0x20: [(0, 1)],
    0x2C: [(0, 0), (0, 1)],
    0xF2: [(0, 0)],
    0x70: [(0, 0), (0x80, 1), (0x80, 2), (0x80, 3)],
    0xC0: [(0, 0)],
    0x3A: [(0, 0)],
    0x3C: [(0, 0), (0, 1), (0, 2), (0, 5)],
    0x3E: [(0, 0)],
}
LE = {0xB0: [9, 10, 4], 0xB2: [16, 13, 40], 0xF2: [22, 10], 0x70: [1], 0x3C: [2, 5, 8, 14, 0]}


class Generator:
    """APDUs that are mostly almost right, so the deep paths are reached too."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.proposed: dict[int, bytes] = {}
        self.channels = {0}
        self.pending: bytes | None = None

    def data(self, ins: int, channel: int) -> bytes:
        r = self.rng
        if ins == 0xA4:
            # Weighted toward the phonebook path, so record commands find their EF.
            return r.choice((*FIDS, 0x7F10, 0x6F3A, 0x6F3A, 0x6F3A)).to_bytes(2, "big")
        if ins == 0xDC:
            return bytes([r.choice((0xFF, 0x41, 0x42))]) * r.choice((16, 16, 16, 13, 15, 40))
        if ins == 0x20:
            return PIN if r.random() < 0.95 else r.randbytes(8)
        if ins == 0x2C:
            return (PUK if r.random() < 0.7 else r.randbytes(8)) + PIN
        if ins == 0x3A:
            partner = r.choice((b"a", b"bb", b"ccc", b"d" * 16, b"", b"e" * 17))
            fid = r.choice((0x6F3A, 0x6F3A, 0x6F4A, 0x6F07))
            tlv = b"\xc0" + bytes((len(partner),)) + partner + b"\xc1\x02" + fid.to_bytes(2, "big")
            return tlv if r.random() < 0.9 else tlv[: r.randrange(len(tlv))]
        if ins == 0x3E:
            obj = self.proposed.get(channel, bytes(8)) if r.random() < 0.8 else r.randbytes(8)
            return b"\xc3\x08" + obj
        return r.randbytes(r.randrange(4))

    def apdu(self) -> bytes:
        r = self.rng
        if self.pending is not None and r.random() < 0.8:
            return self.pending  # the GET RESPONSE a host would send now
        if r.random() < 0.03:
            return r.randbytes(r.randrange(12))  # pure noise, short ones included
        ins = r.choice(INS) if r.random() < 0.95 else r.randrange(256)
        channel = r.choice(sorted(self.channels)) if r.random() < 0.95 else r.randrange(4)
        if ins in (0x3A, 0x3C, 0x3E):
            cla = 0x80 | channel
        elif ins == 0x70:
            cla = channel
        else:
            cla = 0xA0 if channel == 0 and r.random() < 0.5 else channel
        if r.random() < 0.03:
            cla = r.randrange(256)
        p1, p2 = r.choice(P1P2.get(ins, [(0, 0)]))
        if r.random() < 0.05:
            p1, p2 = r.randrange(256), r.randrange(256)
        head = bytes((cla, ins, p1, p2))
        shape = r.random()
        if ins in (0xA4, 0xDC, 0x20, 0x2C, 0x3A, 0x3E) and shape < 0.9:
            body = self.data(ins, cla & 3)
            tail = b"\x00" if r.random() < 0.3 else b""
            return head + bytes((len(body),)) + body + tail
        if shape < 0.95:
            le = r.choice(LE.get(ins, [0])) if r.random() < 0.8 else r.randrange(256)
            return head + bytes((le,))
        return head + r.randbytes(r.randrange(6))

    def learn(self, apdu: bytes, resp: bytes) -> None:
        """Follow procedure bytes, track channels and proposed sync objects."""
        self.pending = None
        if len(apdu) < 4:
            return
        cla, ins = apdu[0], apdu[1]
        if len(resp) == 2 and resp[0] in SUCCESS_SW1:
            self.pending = bytes((cla if cla == 0xA0 else cla & 3, 0xC0, 0, 0, resp[1]))
        if ins == 0xC0 and b"\xc3\x08" in resp:
            i = resp.index(b"\xc3\x08")
            self.proposed[cla & 3] = resp[i + 2 : i + 10]
        if ins == 0x70 and resp[-2:] == b"\x90\x00":
            if apdu[2] == 0:
                self.channels.add(resp[0])
            else:
                self.channels.discard(apdu[3])

    def reset(self) -> None:
        """The card was reset: only the basic channel is left."""
        self.channels = {0}
        self.pending = None


def test_a_hundred_thousand_random_apdus() -> None:
    card, store = make_card()
    gen = Generator(seed=20041)
    successes = 0
    by_ins: dict[int, int] = {}
    for n in range(100_000):
        if n % 5000 == 4999:
            card.reset()
            gen.reset()
        apdu = gen.apdu()
        resp = check(card, store, apdu)
        gen.learn(apdu, resp)
        if resp[-2:] == b"\x90\x00":
            successes += 1
            by_ins[apdu[1]] = by_ins.get(apdu[1], 0) + 1
    # The generator must reach past the first checks, or the test proves little.
    assert successes > 10_000
    assert store.commits > 1_000
    assert by_ins[0xDC] > 300, "UPDATE RECORD"
    assert by_ins[0x3E] > 300, "STORESYNC"
    assert by_ins[0x3C] > 100, "GETCHANGES"


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**64 - 1))
def test_hypothesis_driven_runs(seed: int) -> None:
    """Another 100 x 1,000 APDUs, the runs chosen (and reported on failure) by hypothesis."""
    card, store = make_card()
    gen = Generator(seed=seed)
    for n in range(1000):
        if n % 250 == 249:
            card.reset()
            gen.reset()
        apdu = gen.apdu()
        gen.learn(apdu, check(card, store, apdu))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=30), max_size=30))
def test_arbitrary_bytes(apdus: list[bytes]) -> None:
    card, store = make_card()
    card.transmit(b"\xa0\x20\x00\x01\x08" + PIN)
    for apdu in apdus:
        check(card, store, apdu)
