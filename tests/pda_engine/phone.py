"""A small phone simulator for engine tests: a dict of records stands in for the card.

The card part keeps what the real one does for one partner: the last sync
object and the content at the last STORESYNC (its change baseline). The phone
part runs a PhoneSession against a SyncEngine, and can stop dead after any
step, the way `kill -9` of either side would.
"""

from __future__ import annotations

import os
from collections import Counter
from enum import Enum

from pda.engine import SyncEngine, prefix_fits
from pda.store import MemoryStore
from syncproto import (
    PROTOCOL_VERSION,
    Alert,
    AlertReply,
    Applied,
    CardData,
    CardDeleted,
    CardEntry,
    CardRecord,
    Committed,
    Done,
    Mode,
    PdaOps,
    PhoneSession,
    Policy,
    Prepared,
    Put,
    Removed,
    RequestedMode,
    Skipped,
    Stored,
)

ICCID = "8949000000000000017"


class Crash(Enum):
    """Where a sync stops dead (after that step)."""

    ALERT = 1  # the PDA got the Alert
    REPLY = 2  # the phone got the AlertReply
    FIRST_CHUNK = 3  # the PDA got half the card data
    CARD_DATA = 4  # the PDA got all the card data (and applied it to its store)
    HALF_APPLIED = 5  # the phone wrote half the ops to the card
    APPLIED = 6  # the PDA got Applied (and stored the pending anchor)
    PREPARED = 7  # the phone got Prepared, STORESYNC not sent
    STORESYNC = 8  # the card took STORESYNC, Committed not sent
    COMMITTED = 9  # the PDA got Committed (promoted), Done lost


class FakeCard:
    """Records (name, number) plus the sync-object applet's state for one partner."""

    def __init__(self, records: int = 30, alpha_len: int = 8) -> None:
        self.size = records
        self.alpha_len = alpha_len
        self.records: dict[int, tuple[str, str]] = {}
        self.last: bytes | None = None
        self.baseline: dict[int, tuple[str, str]] = {}
        self.proposed: bytes | None = None

    def add(self, name: str, number: str) -> int:
        r = self.free()
        assert r is not None
        self.records[r] = (name, number)
        return r

    def free(self) -> int | None:
        return next((r for r in range(1, self.size + 1) if r not in self.records), None)

    def newsync(self) -> tuple[bytes | None, bytes]:
        self.proposed = os.urandom(8)
        return self.last, self.proposed

    def changes(self) -> list[CardEntry]:
        out: list[CardEntry] = []
        for r in sorted(self.records.keys() | self.baseline.keys()):
            now = self.records.get(r)
            if now != self.baseline.get(r):
                out.append(CardDeleted(r) if now is None else CardRecord(r, *now))
        return out

    def storesync(self, anchor: bytes) -> None:
        assert anchor == self.proposed
        self.last, self.baseline = anchor, dict(self.records)

    def view(self) -> Counter[tuple[str, str]]:
        return Counter(self.records.values())


def pda_view(store: MemoryStore, alpha_len: int) -> Counter[tuple[str, str]]:
    """The PDA's contacts as the card would hold them (contacts without number left out)."""
    return Counter(
        (prefix_fits(c.projection.name, alpha_len), c.projection.number)
        for c in store.scan().values()
        if c.projection.number is not None
    )


def _one(frames: list[bytes]) -> bytes:
    assert len(frames) == 1, frames
    return frames[0]


def sync(
    card: FakeCard,
    engine: SyncEngine,
    requested: RequestedMode = RequestedMode.AUTO,
    crash: Crash | None = None,
    policy: Policy | None = None,
    version: tuple[int, int] = PROTOCOL_VERSION,
) -> Done | None:
    """One sync as the phone runs it; None when it was cut at `crash`."""
    phone = PhoneSession()
    last, proposed = card.newsync()
    free = card.size - len(card.records)
    alert = Alert(
        ICCID,
        0x6F3A,
        last,
        proposed,
        requested,
        card.size,
        card.alpha_len,
        True,
        free,
        version=version,
        policy=policy,
    )
    reply = phone.receive(_one(engine.handle(phone.send(alert))))
    if crash is Crash.ALERT:
        return None
    assert isinstance(reply, AlertReply)
    if crash is Crash.REPLY:
        return None
    fast = reply.mode is Mode.FAST
    entries = (
        card.changes() if fast else [CardRecord(r, *card.records[r]) for r in sorted(card.records)]
    )
    half = len(entries) // 2
    assert engine.handle(phone.send(CardData(tuple(entries[:half]), not fast, more=True))) == []
    if crash is Crash.FIRST_CHUNK:
        return None
    ops = phone.receive(_one(engine.handle(phone.send(CardData(tuple(entries[half:]), not fast)))))
    if crash is Crash.CARD_DATA:
        return None
    assert isinstance(ops, PdaOps)
    results: list[Stored | Removed | Skipped] = []
    for i, op in enumerate(ops.ops):
        if crash is Crash.HALF_APPLIED and i >= len(ops.ops) // 2:
            return None
        if isinstance(op, Put):
            record = op.record if op.record is not None else card.free()
            if record is None:
                results.append(Skipped(op.ref, "card_full"))
                continue
            short = prefix_fits(op.name, card.alpha_len)
            card.records[record] = (short, op.number)
            results.append(Stored(op.ref, record, short, op.number))
        else:
            card.records.pop(op.record, None)
            results.append(Removed(op.ref))
    if crash is Crash.HALF_APPLIED:
        return None
    prepared = phone.receive(_one(engine.handle(phone.send(Applied(tuple(results))))))
    if crash is Crash.APPLIED:
        return None
    assert isinstance(prepared, Prepared)
    if crash is Crash.PREPARED:
        return None
    card.storesync(proposed)
    if crash is Crash.STORESYNC:
        return None
    done = phone.receive(_one(engine.handle(phone.send(Committed()))))
    if crash is Crash.COMMITTED:
        return None
    assert isinstance(done, Done)
    assert engine.finished
    return done
