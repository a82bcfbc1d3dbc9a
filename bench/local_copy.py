"""The phone's local copy of EF.ADN: refresh cost versus a full read. Prints, never asserts.

    .venv/bin/python -m bench.local_copy [--records 250] [--baud 9600] [--card-ms 0]

For a card of N records (all in use): (a) a full read of EF.ADN, and (b) a refresh
of the local copy (``cardio.session.PhonebookCard.refresh``) after k records were
changed by another terminal, for k = 0, 1, 5, 25, N. Each line gives the commands
sent (APDUs as the host issues them), the TPDUs that crossed the T=0 link (GET
RESPONSE included), bytes, and the modelled time on a real card at the given
rate (``cardio.timing``), split into the fixed select/verify/channel prologue and
the sync-related part (NEWSYNC, GETCHANGES, STORESYNC, READ RECORD).
Target (issue #3): k = 5 costs at most 3 + k sync-related APDUs beyond the
prologue and under 5 % of the full read's modelled time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
from collections import Counter
from pathlib import Path

import structlog

import simcard
from cardio.apdu import Command, Response
from cardio.codecs import AdnRecord
from cardio.inproc import InProcessLink
from cardio.link import CardLink
from cardio.localcopy import CardStateDB
from cardio.session import ADN_PATH, PhonebookCard
from cardio.sim import Sim
from cardio.timing import TimedLink

SYNC_INS = {0x3A: "NEWSYNC", 0x3C: "GETCHANGES", 0x3E: "STORESYNC", 0xB2: "READ RECORD"}


class CountingLink(TimedLink):
    """A TimedLink that also counts host-level commands by INS (before procedure bytes)."""

    def __init__(self, inner: CardLink, **kw: float) -> None:
        super().__init__(inner, **kw)  # type: ignore[arg-type]
        self.commands: Counter[int] = Counter()

    async def transmit(self, command: Command) -> Response:
        self.commands[command.ins] += 1
        return await super().transmit(command)

    def split(self) -> tuple[int, int]:
        sync = sum(n for ins, n in self.commands.items() if ins in SYNC_INS)
        return sum(self.commands.values()) - sync, sync


async def _write(card: simcard.SimCard, count: int, label: str, *, shared: bool) -> None:
    """A terminal on channel 0 writes records 1..count (``shared``: no power cycle)."""
    link = InProcessLink(card, shared=shared)
    await link.open()
    sim = Sim(link)
    await sim.select_path(ADN_PATH)
    await sim.verify_pin("0000")
    for n in range(1, count + 1):
        await sim.update_record(n, AdnRecord(f"{label} {n}", f"+49{n:08d}").encode(18))


def _line(label: str, link: CountingLink) -> tuple[str, float]:
    prologue, sync = link.split()
    text = (
        f"{label:<26} {prologue + sync:>5} {prologue:>6} {sync:>5} {link.tpdu_count:>6} "
        f"{link.tpdu_bytes:>7} {link.modeled_seconds:>9.3f}"
    )
    return text, link.modeled_seconds


async def run(records: int, baud: int, card_ms: float) -> None:
    kw = {"baud": float(baud), "card_seconds": card_ms / 1000}
    print(f"card: {records} records, T=0 at {baud} baud, {card_ms} ms card time per TPDU")
    print(
        f"{'scenario':<26} {'APDUs':>5} {'prolog':>6} {'sync':>5} {'TPDUs':>6} {'bytes':>7} "
        f"{'model s':>9}  ratio"
    )
    card = simcard.new_memory_card(records=records)
    await _write(card, records, "Contact", shared=False)

    full = CountingLink(InProcessLink(card), **kw)
    await full.open()
    sim = Sim(full)
    await sim.select_path(ADN_PATH)
    await sim.verify_pin("0000")
    for n in range(1, records + 1):
        await sim.read_record(n)
    text, full_s = _line("(a) full read of EF.ADN", full)
    print(f"{text}  1.000")

    with tempfile.TemporaryDirectory() as tmp:
        state = CardStateDB(Path(tmp) / "cards.sqlite")
        host = state.host_partner()
        warm = InProcessLink(card)
        await warm.open()
        first = await PhonebookCard.open(warm, state, pin="0000", host_partner=host)
        await first.refresh()  # the copy is now current
        await first.close()
        for k in sorted({0, 1, 5, 25, records}):
            await _write(card, k, "Edited", shared=True)  # another phone's edits
            link = CountingLink(InProcessLink(card, shared=True), **kw)
            await link.open()
            pb = await PhonebookCard.open(link, state, pin="0000", host_partner=host)
            stats = await pb.refresh()
            await pb.close()
            label = f"(b) refresh, k = {k}" + (" (full)" if stats.full else "")
            text, secs = _line(label, link)
            print(f"{text}  {secs / full_s:.3f}")
        state.close()
    print(
        "APDUs = commands the host sent; TPDUs add GET RESPONSE (T=0 case 4). 'sync' counts "
        "NEWSYNC, GETCHANGES, STORESYNC and READ RECORD; 'prolog' is ICCID, SELECTs, VERIFY, "
        "MANAGE CHANNEL (one channel: the refresh runs where EF.ADN was selected; beside a "
        "partner's session it would open a second)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=250)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--card-ms", type=float, default=0.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(run(args.records, args.baud, args.card_ms))


if __name__ == "__main__":
    main()
