"""Whole syncs against a PDA address book of any size, with a long-running PDA server.

    .venv/bin/python -m bench.book [--contacts 10000] [--runs 5] [--no-watch]

A full 250-record card (in-process emulator behind ``cardio.timing.TimedLink``)
and a PDA vdir of N contacts, 250 of them the card's. The PDA server runs for the
whole benchmark, as ``simsync pda serve`` does, and the phone's side is the very
code ``simsync sync`` runs. After the first (slow) sync: syncs with nothing
changed, with 5 contacts edited on the PDA (files rewritten as a vdir tool
would), and slow syncs. Prints medians with min-max; asserts nothing.
``--no-watch``: the server stats every file at every sync instead of learning
from inotify which changed (as ``simsync pda serve --no-watch``).
Targets (issue 9): 10,000 contacts, 5 changed, at most 150 ms in process;
50,000 within 2x of that.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from bench.sync import INS_NAMES, PIN, LinkModel, Measured, RecordingLink, Rig, _write_records
from cardio import InProcessLink
from cardio.codecs import AdnRecord
from cardio.localcopy import CardStateDB
from daemon.conversation import Run
from daemon.sync import _sync_card, phone_identity
from pda.node import PdaDir, PdaServer
from simcard import create_image, open_image
from syncproto import RequestedMode

CARD = 250
MODEL = LinkModel(9600, 0.002)


def vcard(uid: str, name: str, number: str) -> str:
    """A hand-written vCard 3.0, as a vdir tool leaves it."""
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:;{name};;;\r\n"
        f"TEL;TYPE=CELL:{number}\r\nEMAIL:p{uid}@example.org\r\nEND:VCARD\r\n"
    )


def card_person(i: int) -> tuple[str, str]:
    """Record i's name and number (also a contact's, for i <= 250)."""
    return f"Person {i:03d}", f"+49170{i:07d}"


def contact(i: int) -> tuple[str, str, str]:
    """Contact i of the book: uid, name, number (the first 250 are on the card)."""
    if i <= CARD:
        return (f"c{i:06d}", *card_person(i))
    return f"c{i:06d}", f"Other Person {i}", f"+49171{i:07d}"


def write_book(vdir: Path, contacts: int) -> None:
    """Write the vdir's files directly, backdated a minute (past the racy-file window)."""
    past = time.time_ns() - 60_000_000_000
    for i in range(1, contacts + 1):
        uid, name, number = contact(i)
        path = vdir / f"{uid}.vcf"
        path.write_text(vcard(uid, name, number), newline="")
        os.utime(path, ns=(past, past))


@dataclass
class Timings:
    """Wall and CPU times of one scenario's runs, in seconds, with the last run's card cost.

    The CPU time (phone, PDA and emulated card share the process) is the figure that
    holds on a busy machine; the wall time is what a person waits, link time excluded.
    """

    label: str
    walls: list[float]
    cpus: list[float]
    last: Measured

    def line(self) -> str:
        """Medians (min-max) and the card cost."""
        w = [t * 1000 for t in self.walls]
        c = [t * 1000 for t in self.cpus]
        return (
            f"{self.label:24s} wall {statistics.median(w):7.1f} ms ({min(w):6.1f}-{max(w):6.1f})"
            f"  cpu {statistics.median(c):7.1f} ms ({min(c):6.1f}-{max(c):6.1f})"
            f"  apdus={self.last.apdus:4d} card t0={self.last.t0_seconds:6.2f} s"
        )


class BookRig(Rig):
    """A Rig whose PDA server stays up between syncs (start with ``async with``)."""

    def __init__(self, root: Path, contacts: int, *, watch: bool = True) -> None:
        super().__init__(root)
        self.contacts = contacts
        self.watch = watch
        self.server: PdaServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self.address = ""
        self._edits = 0
        self.cpu_seconds = 0.0  # CPU time of the last sync (phone, PDA and card: one process)

    def build(self) -> None:
        """Card image (full), PDA directory with the book, phone paired."""
        self.root.mkdir(parents=True)
        (self.root / "pin").write_text(PIN + "\n")
        create_image(self.image, records=CARD, pin=PIN)
        _write_records(self.image, {i: AdnRecord(*card_person(i)) for i in range(1, CARD + 1)})
        PdaDir.init(self.pda_dir)
        write_book(PdaDir.open(self.pda_dir).contacts, self.contacts)
        pda = PdaDir.open(self.pda_dir)
        pda.allow(phone_identity(self.config("tcp://127.0.0.1:9")).device_id)

    async def __aenter__(self) -> BookRig:
        self.server = PdaServer(PdaDir.open(self.pda_dir), watch=self.watch)
        self.address = await self.server.start("tcp://127.0.0.1:0")
        self._serving = asyncio.create_task(self.server.serve_forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._serving is not None
        assert self.server is not None
        self._serving.cancel()
        await asyncio.gather(self._serving, return_exceptions=True)
        await self.server.close()

    async def sync(self, label: str, mode: str, model: LinkModel = MODEL) -> Measured:
        """One whole sync against the running server."""
        config = self.config(self.address)
        pda = config.pda("pda")
        card = open_image(self.image)
        link = RecordingLink(InProcessLink(card), model)
        state = CardStateDB(config.node.state_dir / "cards.sqlite")
        run = Run(pda)
        try:
            started, cpu = time.perf_counter(), time.process_time()
            async with link:
                await _sync_card(
                    link, state=state, identity=phone_identity(config), run=run,
                    requested=RequestedMode(mode), pin=PIN, progress=lambda _p, _d, _t: None,
                )  # fmt: skip
            wall = time.perf_counter() - started
            self.cpu_seconds = time.process_time() - cpu
        finally:
            state.close()
            card.close()
        kinds = Counter(INS_NAMES.get(ins, f"INS {ins:02X}") for ins, _ in link.log)
        return Measured(
            label, run.mode or "?", run.to_pda.to_json(), run.to_card.to_json(),
            link.apdu_count, link.tpdu_bytes, link.modeled_seconds, wall, kinds,
        )  # fmt: skip

    def edit(self, k: int) -> None:
        """Rewrite k contacts that are on the card, as a person's vdir tool would."""
        vdir = PdaDir.open(self.pda_dir).contacts
        for _ in range(k):  # k different contacts (k <= 250), each a new number
            i = 1 + (self._edits * 7) % CARD
            uid, name, _ = contact(i)
            self._edits += 1
            (vdir / f"{uid}.vcf").write_text(
                vcard(uid, name, f"+1555{self._edits:07d}"), newline=""
            )


SCENARIOS = (("no change", "auto", 0), ("5 changed", "auto", 5), ("slow", "slow", 0))


async def measure(rig: BookRig, runs: int) -> list[Timings]:
    """First sync, then `runs` each of: no change, 5 changed, slow."""
    first = await rig.sync("first sync (slow)", "auto")
    out = [Timings("first sync (slow)", [first.wall_seconds], [rig.cpu_seconds], first)]
    for label, mode, edits in SCENARIOS:
        walls, cpus, last = [], [], first
        for _ in range(runs):
            rig.edit(edits)
            last = await rig.sync(label, mode)
            walls.append(last.wall_seconds)
            cpus.append(rig.cpu_seconds)
        out.append(Timings(label, walls, cpus, last))
    return out


def max_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _main(contacts: int, runs: int, watch: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="simsync-book-") as tmp:
        rig = BookRig(Path(tmp) / "rig", contacts, watch=watch)
        started = time.perf_counter()
        rig.build()
        print(f"{contacts} contacts written in {time.perf_counter() - started:.1f} s")
        async with rig:
            for row in await measure(rig, runs):
                print(row.line())
            assert rig.server is not None
            how = "inotify" if rig.server.store.watching else "the stat loop every sync"
            print(f"PDA server's store: {how}")
    print(f"peak RSS of this process (phone + PDA + card): {max_rss_mb():.0f} MiB")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-watch", action="store_true", help="the server stats every file")
    args = parser.parse_args(argv)
    if args.contacts < CARD:
        parser.error(f"--contacts must be at least {CARD} (the card's records)")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    asyncio.run(_main(args.contacts, args.runs, not args.no_watch))


if __name__ == "__main__":
    main()
