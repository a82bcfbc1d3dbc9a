"""Card cost of a fast sync against the number of changed records, next to the naive full read.

    .venv/bin/python -m bench.card_cost [--baud 9600] [--card-ms 2]

Then the fill: an empty 250-record card and a PDA with 250 contacts, a slow sync
that writes them all, and the syncs after it (5 contacts edited on the PDA,
nothing changed, a slow sync again, and the worst slow sync: the phone's local
copy lost and all 250 contacts edited, so every record is read and rewritten),
each with its APDUs by instruction -- where the card's time goes when the
phone's own writes are involved (issue 9).

A full 250-record card and its 250 contacts, synced once. Then, for each k: k
records edited by another terminal on the card (each must be read), or k contacts
edited on the PDA (each must be written), and one fast sync. Counts every APDU
and prices the T=0 link (``cardio.timing``); the naive line is what a phone
without sync objects must do at least (select, verify, 250 READ RECORD).
Deterministic: one run each. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from bench.book import CARD, BookRig, card_person
from bench.sync import LinkModel, Measured, _write_records
from cardio.codecs import AdnRecord

KS = (0, 1, 2, 5, 10, 25, 50, 100, 250)


@dataclass(frozen=True)
class Cost:
    """One fast sync's card cost."""

    changed: int
    side: str  # "card", "pda" or "naive"
    apdus: int
    t0_seconds: float


async def _sweep(root: Path, model: LinkModel, ks: Sequence[int]) -> list[Cost]:
    base = BookRig(root / "base", CARD)
    base.build()
    async with base:
        await base.sync("first", "auto", model)
        await base.sync("settle", "auto", model)
    naive = await base.full_read(CARD, model)
    out = [Cost(k, "naive", naive.apdus, naive.t0_seconds) for k in ks]
    for side in ("card", "pda"):
        for k in ks:
            rig = BookRig(root / f"{side}{k}", CARD)
            shutil.copytree(base.root, rig.root)
            if side == "card":
                edits = {
                    i: AdnRecord(f"{card_person(i)[0]} new", card_person(i)[1])
                    for i in range(1, k + 1)
                }
                _write_records(rig.image, edits)
            else:
                rig.edit(k)
            async with rig:
                got = await rig.sync(f"{k} on the {side}", "auto", model)
            out.append(Cost(k, side, got.apdus, got.t0_seconds))
    return out


def sweep(model: LinkModel, ks: Sequence[int] = KS) -> list[Cost]:
    """Every k on both sides, and the naive full read."""
    with tempfile.TemporaryDirectory(prefix="simsync-cardcost-") as tmp:
        return asyncio.run(_sweep(Path(tmp), model, ks))


async def _fill(root: Path, model: LinkModel) -> list[Measured]:
    rig = BookRig(root / "fill", CARD)
    rig.build()
    _write_records(rig.image, dict.fromkeys(range(1, CARD + 1)))  # an empty card
    async with rig:
        out = [await rig.sync("slow sync filling the card", "auto", model)]
        rig.edit(5)
        out.append(await rig.sync("5 edited on the PDA", "auto", model))
        out.append(await rig.sync("nothing changed", "auto", model))
        out.append(await rig.sync("slow sync again", "slow", model))
        rig.edit(CARD)
        for lost in (rig.root / "phone").glob("cards.sqlite*"):
            lost.unlink()
        out.append(await rig.sync("slow, no copy, 250 rewritten", "slow", model))
    return out


def fill(model: LinkModel) -> list[Measured]:
    """The fill scenario: a slow sync writing 250 records, then the syncs after it."""
    with tempfile.TemporaryDirectory(prefix="simsync-cardfill-") as tmp:
        return asyncio.run(_fill(Path(tmp), model))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, sweep, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--card-ms", type=float, default=2.0)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    costs = sweep(LinkModel(args.baud, args.card_ms / 1000))
    print(f"{'k':>4} {'side':>6} {'APDUs':>6} {'T=0 s':>7}")
    for c in costs:
        print(f"{c.changed:>4} {c.side:>6} {c.apdus:>6} {c.t0_seconds:>7.2f}")
    print(f"\nfill: an empty {CARD}-record card, {CARD} contacts on the PDA")
    for m in fill(LinkModel(args.baud, args.card_ms / 1000)):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(m.after_prologue.items()))
        print(f"{m.label:28s} {m.mode:5s} APDUs {m.apdus:4d} T=0 {m.t0_seconds:6.2f} s: {kinds}")


if __name__ == "__main__":
    main()
