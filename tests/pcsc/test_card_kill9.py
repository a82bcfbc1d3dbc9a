"""``kill -9`` of ``card serve`` in the middle of PC/SC write bursts: nothing torn, nothing lost.

Each round drives UPDATE RECORDs and NEWSYNC/STORESYNC pairs through pyscard while a
timer kills the serve process at a random instant; then the same image is served
again and compared with what the client knows: per record the last acknowledged
value or the one write in flight, per partner the last acknowledged sync object or
the one in flight.
"""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable

import pytest

from tests.fixtures.pcsc import PcscConnection, PcscError, ServedCard

from ._apdu import ADN, Card, adn_record, parse_tlv

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]

ROUNDS = 4
SLOTS = 12
PARTNERS = (b"pda-a", b"pda-b")
# The kill is timed from the 5th acknowledged APDU of a round, not from its start: a timer
# started with the round could fire before a slow (loaded) machine acknowledged any.
ARMED_AFTER = 5


class Ledger:
    """What the client knows was acknowledged, and what was in flight at the kill."""

    def __init__(self) -> None:
        self.acked: dict[int, bytes] = {}
        self.synced: dict[bytes, bytes | None] = dict.fromkeys(PARTNERS)
        self.inflight_write: tuple[int, bytes] | None = None
        self.inflight_sync: tuple[bytes, bytes] | None = None


def _prologue(card: Card) -> int:
    assert card.verify() == 0x9000
    card.select_path(0x3F00, 0x7F10, ADN)
    return card.open_channel()


def _burst(
    card: Card, ledger: Ledger, rng: random.Random, version: int, arm: Callable[[], None]
) -> int:
    """Write until the card goes away; return how many APDUs were acknowledged.

    ``arm`` (the killer's start) is called once ``ARMED_AFTER`` writes are acknowledged:
    every round does real work however slow a loaded machine makes each APDU."""
    done = 0
    try:
        channel = _prologue(card)
        while True:
            if done == ARMED_AFTER:
                arm()
            version += 1
            if rng.random() < 0.2:
                partner = rng.choice(PARTNERS)
                reply = card.newsync(partner, channel)
                assert reply.sw == 0x9000, f"NEWSYNC {reply.sw:04X}"
                proposed = parse_tlv(reply.data)[0xC3]
                ledger.inflight_sync = (partner, proposed)
                assert card.storesync(proposed, channel) == 0x9000
                ledger.synced[partner] = proposed
                ledger.inflight_sync = None
            else:
                rec = rng.randint(1, SLOTS)
                value = adn_record(rec, version=version % 10000)
                ledger.inflight_write = (rec, value)
                assert card.update_record(rec, value) == 0x9000
                ledger.acked[rec] = value
                ledger.inflight_write = None
            done += 1
    except PcscError:
        return done


def _check(card: Card, ledger: Ledger, context: str) -> None:
    channel = _prologue(card)
    for rec in range(1, SLOTS + 1):
        allowed = {ledger.acked.get(rec, b"\xff" * 32)}
        if ledger.inflight_write is not None and ledger.inflight_write[0] == rec:
            allowed.add(ledger.inflight_write[1])
        got = card.read_record(rec)
        assert got.sw == 0x9000
        assert got.data in allowed, f"{context}: record {rec} is {got.data.hex()}"
        ledger.acked[rec] = got.data  # whichever survived is the state from now on
    for partner in PARTNERS:
        reply = card.newsync(partner, channel)
        assert reply.sw == 0x9000
        last = parse_tlv(reply.data).get(0xC2)
        allowed_sync = {ledger.synced[partner]}
        if ledger.inflight_sync is not None and ledger.inflight_sync[0] == partner:
            allowed_sync.add(ledger.inflight_sync[1])
        assert last in allowed_sync, f"{context}: partner {partner!r} has {last!r}"
        ledger.synced[partner] = last
    ledger.inflight_write = None
    ledger.inflight_sync = None


def test_kill_9_during_write_bursts_loses_and_tears_nothing(
    serve_card: Callable[..., ServedCard], pcsc_connect: Callable[[str], PcscConnection]
) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    served = serve_card()
    ledger = Ledger()
    version = 0
    for round_no in range(ROUNDS):
        context = f"seed {seed}, round {round_no}"
        card = Card(pcsc_connect(served.reader))
        killed = threading.Event()

        def kill(pid: int = served.pid, killed: threading.Event = killed) -> None:
            os.kill(pid, signal.SIGKILL)
            killed.set()

        killer = threading.Timer(rng.uniform(0.05, 0.4), kill)
        try:
            done = _burst(card, ledger, rng, version, killer.start)
        finally:
            killer.cancel()
            if killer.ident is not None:  # started
                killer.join()
        # Each round did real work, and ended by our kill (not the server dying by itself).
        assert done >= ARMED_AFTER, f"{context}: only {done} acknowledged APDUs"
        assert killed.is_set(), f"{context}: the card went away before the kill"
        version += done + 1
        served.kill()  # reaps the process the timer killed
        served.wait_absent()
        card.conn.close()
        served.start()
        _check(Card(pcsc_connect(served.reader)), ledger, context)
