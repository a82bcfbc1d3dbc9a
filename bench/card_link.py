"""Card-link cost of an incremental sync versus a full read: prints numbers, asserts nothing.

    .venv/bin/python -m bench.card_link [--changed K ...] [--baud B] [--card-ms MS]

Runs the cardio layer (Sim + CardSync) against the in-process emulated card behind a
``TimedLink`` and prints, per scenario, the TPDUs and bytes that crossed the link, the
time the same exchange would take on a real T=0 card (see ``cardio.timing``), and the
wall time the emulator took here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Sequence

import structlog

import simcard
from cardio import CardSync, InProcessLink, Sim, TimedLink

ADN = [0x3F00, 0x7F10, 0x6F3A]
PARTNER = b"bench-pda"


def _record(n: int) -> bytes:
    return bytes([0x41 + n % 26]) + b"\xff" * 17 + bytes.fromhex("0481214365") + b"\xff" * 9


async def _prologue(link: TimedLink) -> tuple[Sim, CardSync]:
    sim = Sim(link)
    await sim.verify_pin("0000")
    channel = await sim.open_channel()
    await channel.select_path(ADN)
    return channel, CardSync(channel)


async def _scenario(changed: int, full: bool, baud: int, card_ms: float) -> str:
    card = simcard.new_memory_card()
    link = TimedLink(InProcessLink(card), baud=baud, card_seconds=card_ms / 1000)
    async with link:
        channel, sync = await _prologue(link)
        for n in range(1, 251):  # a full card the partner already knows
            await channel.update_record(n, _record(n))
        first = await sync.new_sync(PARTNER)
        await sync.changes()
        await sync.store_sync(first.proposed)
        # Someone else (channel 0) changes `changed` records between syncs.
        other = Sim(link)
        await other.select_path(ADN)
        for n in range(1, changed + 1):
            await other.update_record(n * 3, _record(n + 100))
        link.reset_counters()
        started = time.perf_counter()
        channel, sync = await _prologue(link)
        result = await sync.new_sync(PARTNER)
        if full:
            records = [await channel.read_record(n) for n in range(1, 251)]
        else:
            records = [await channel.read_record(c.record) for c in await sync.changes()]
        await sync.store_sync(result.proposed)
        await channel.close_channel()
        wall = time.perf_counter() - started
    card.close()
    kind = "full read" if full else "incremental"
    return (
        f"{kind:12s} changed={changed:3d} read={len(records):3d} tpdus={link.tpdu_count:4d} "
        f"bytes={link.tpdu_bytes:6d} t0={link.modeled_seconds:7.2f}s "
        f"emulated={wall * 1000:6.1f}ms"
    )


async def _main(changed: Sequence[int], baud: int, card_ms: float) -> None:
    print(f"T=0 model: {baud} baud, 12 etu/byte, {card_ms} ms card time per TPDU")
    for k in changed:
        print(await _scenario(k, False, baud, card_ms))
    print(await _scenario(max(changed), True, baud, card_ms))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options and print one line per scenario."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changed", type=int, nargs="+", default=[0, 1, 10, 50])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--card-ms", type=float, default=2.0)
    args = parser.parse_args(argv)
    # Per-sync info events would drown the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    if any(not 0 <= k <= 83 for k in args.changed):
        parser.error("--changed values must be 0..83 (every third record is changed)")
    asyncio.run(_main(args.changed, args.baud, args.card_ms))


if __name__ == "__main__":
    main()
