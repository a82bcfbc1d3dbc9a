"""A whole sync's cost: fast vs slow vs a naive full read. Prints numbers, asserts nothing.

    .venv/bin/python -m bench.sync [--contacts N] [--changed K] [--baud B] [--card-ms MS]

250 contacts on each side (already synced once), K changed on each side (K edited
by another terminal on the card, K edited in the PDA's vdir), then the same
state synced three ways: ``auto`` (fast, the card's sync objects), ``slow`` (every
record sent), and the bare minimum a phone without sync objects must do: read
every record. The card is the emulator in-process behind ``cardio.timing.TimedLink``
(T=0 model, 9600 baud by default), driven by the very functions ``run_sync`` uses;
the PDA is a real ``PdaServer`` on loopback TCP + TLS in the same process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from bench.pda_scan import run as pda_scan
from cardio import InProcessLink, Sim, TimedLink
from cardio.codecs import AdnRecord
from cardio.localcopy import CardStateDB
from daemon.config import Config, load_config, read_pin_file
from daemon.conversation import Run
from daemon.sync import _sync_card, phone_identity
from pda.node import PdaDir, PdaServer
from pda.store import Projection
from pda.vdir import VdirStore
from simcard import SimCard, create_image, open_image
from syncproto import RequestedMode

PIN = "0000"
ADN = (0x3F00, 0x7F10, 0x6F3A)
INS_NAMES = {
    0x3A: "NEWSYNC", 0x3C: "GETCHANGES", 0x3E: "STORESYNC", 0xB2: "READ RECORD",
    0xDC: "UPDATE RECORD", 0xA4: "SELECT", 0x20: "VERIFY", 0x70: "MANAGE CHANNEL",
    0xB0: "READ BINARY", 0xC0: "GET RESPONSE",
}  # fmt: skip
SYNC_INS = {0x3A, 0x3C, 0x3E, 0xB2, 0xDC}


@dataclass(frozen=True)
class LinkModel:
    """The T=0 link being priced: baud rate and card processing time per TPDU."""

    baud: int
    card_seconds: float


class RecordingLink(TimedLink):
    """A TimedLink that also remembers every raw command's INS and data."""

    def __init__(self, inner: InProcessLink, model: LinkModel) -> None:
        super().__init__(inner, baud=model.baud, card_seconds=model.card_seconds)
        self.log: list[tuple[int, bytes]] = []

    async def _exchange(self, apdu: bytes) -> bytes:
        self.log.append((apdu[1], apdu[5:]))
        return await super()._exchange(apdu)

    def after_partner_newsync(self, partner: bytes) -> list[tuple[int, bytes]]:
        """The commands from the PDA session's NEWSYNC on (the prologue cut off)."""
        tag = bytes((0xC0, len(partner))) + partner
        for i, (ins, data) in enumerate(self.log):
            if ins == 0x3A and data.startswith(tag):
                return self.log[i:]
        return []


@dataclass(frozen=True)
class Measured:
    """One scenario's numbers."""

    label: str
    mode: str
    to_pda: dict[str, int]
    to_card: dict[str, int]
    apdus: int
    tpdu_bytes: int
    t0_seconds: float
    wall_seconds: float
    after_prologue: Counter[str]

    def line(self) -> str:
        """One table row."""
        moved = (
            ""
            if self.mode == "-"
            else (f"to_pda={sum(self.to_pda.values()):3d} to_card={sum(self.to_card.values()):3d}")
        )
        return (
            f"{self.label:28s} {self.mode:5s} {moved:23s} apdus={self.apdus:4d} "
            f"bytes={self.tpdu_bytes:6d} t0={self.t0_seconds:7.2f}s "
            f"wall={self.wall_seconds * 1000:7.1f}ms"
        )


def _write_records(image: Path, records: Mapping[int, AdnRecord | None]) -> None:
    """UPDATE RECORD on channel 0, as another terminal would between syncs."""
    card: SimCard = open_image(image)
    try:
        card.power_on()
        for fid in ADN:
            card.transmit(bytes.fromhex("A0A4000002") + fid.to_bytes(2, "big"))
        assert card.transmit(bytes.fromhex("A020000108") + PIN.encode().ljust(8, b"\xff")) == (
            b"\x90\x00"
        )
        for n, rec in records.items():
            raw = rec.encode(18) if rec is not None else b"\xff" * 32
            assert card.transmit(bytes([0xA0, 0xDC, n, 4, len(raw)]) + raw) == b"\x90\x00"
    finally:
        card.close()


class Rig:
    """Phone config + state, card image and PDA directory under one root (copyable)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.image = root / "card.img"
        self.pda_dir = root / "pda"

    def config(self, address: str) -> Config:
        pda_id = PdaDir.open(self.pda_dir).identity().device_id
        path = self.root / "phone.toml"
        path.write_text(
            '[node]\nid = "bench"\nstate_dir = "phone"\n'
            '[card]\nimage = "card.img"\npin_file = "pin"\n'
            f'[[pda]]\nname = "pda"\naddress = "{address}"\ndevice_id = "{pda_id}"\n'
        )
        return load_config(path)

    async def sync(self, label: str, mode: str, model: LinkModel) -> Measured:
        """One whole sync through the same functions `run_sync` uses, over a RecordingLink."""
        server = PdaServer(PdaDir.open(self.pda_dir))
        address = await server.start("tcp://127.0.0.1:0")
        serving = asyncio.create_task(server.serve_forever())
        config = self.config(address)
        pda = config.pda("pda")
        card = open_image(self.image)
        link = RecordingLink(InProcessLink(card), model)
        state = CardStateDB(config.node.state_dir / "cards.sqlite")
        run = Run(pda)
        try:
            started = time.perf_counter()
            async with link:
                await _sync_card(
                    link,
                    state=state,
                    identity=phone_identity(config),
                    run=run,
                    requested=RequestedMode(mode),
                    pin=read_pin_file(config),
                    progress=lambda _p, _d, _t: None,
                )
            wall = time.perf_counter() - started
        finally:
            state.close()
            card.close()
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
            await server.close()
        partner = bytes.fromhex(pda.device_id)[:16]
        after = Counter(
            INS_NAMES.get(ins, f"INS {ins:02X}") for ins, _ in link.after_partner_newsync(partner)
        )
        return Measured(
            label, run.mode or "?", run.to_pda.to_json(), run.to_card.to_json(),
            link.apdu_count, link.tpdu_bytes, link.modeled_seconds, wall, after,
        )  # fmt: skip

    async def full_read(self, records: int, model: LinkModel) -> Measured:
        """Select, verify, READ RECORD 1..N: the least a phone without sync objects must do."""
        card = open_image(self.image)
        link = RecordingLink(InProcessLink(card), model)
        try:
            started = time.perf_counter()
            async with link:
                sim = Sim(link)
                await sim.select_path(ADN)
                await sim.verify_pin(PIN)
                for n in range(1, records + 1):
                    await sim.read_record(n)
            wall = time.perf_counter() - started
        finally:
            card.close()
        after = Counter(INS_NAMES.get(ins, f"INS {ins:02X}") for ins, _ in link.log)
        return Measured(
            "naive full read", "-", {}, {}, link.apdu_count, link.tpdu_bytes,
            link.modeled_seconds, wall, after,
        )  # fmt: skip


def _person(i: int) -> AdnRecord:
    return AdnRecord(f"Person {i:03d}", f"+49170{i:07d}")


async def _main(contacts: int, changed: int, model: LinkModel, scan: int) -> None:
    with tempfile.TemporaryDirectory(prefix="simsync-bench-") as tmp:
        base = Rig(Path(tmp) / "base")
        base.root.mkdir()
        (base.root / "pin").write_text(PIN + "\n")
        create_image(base.image, records=max(250, contacts), pin=PIN)
        _write_records(base.image, {i: _person(i) for i in range(1, contacts + 1)})
        PdaDir.init(base.pda_dir)
        PdaDir.open(base.pda_dir).allow(phone_identity(base.config("tcp://127.0.0.1:9")).device_id)
        rows = [await base.sync(f"first sync ({contacts} to PDA)", "auto", model)]
        rows.append(await base.sync("idle (nothing changed)", "auto", model))

        # K records edited on the card by another terminal, K contacts edited on the PDA.
        step = max(1, contacts // max(1, 2 * changed))
        card_side = list(range(1, contacts + 1, step))[:changed]
        pda_side = list(range(step // 2 + 1, contacts + 1, step))[:changed]
        _write_records(
            base.image, {i: AdnRecord(f"Person {i:03d} new", f"+49170{i:07d}") for i in card_side}
        )
        store = VdirStore(PdaDir.open(base.pda_dir).contacts)
        by_name = {c.projection.name: uid for uid, c in store.scan().items()}
        for i in pda_side:
            store.update_projection(
                by_name[f"Person {i:03d}"], Projection(f"Person {i:03d}", "+1555")
            )

        scenarios = [
            (f"fast, {changed}+{changed} changed", "auto", False),
            (f"slow, {changed}+{changed} changed", "slow", False),
            ("slow, phone without copy", "slow", True),
        ]
        for i, (label, mode, cold) in enumerate(scenarios):
            rig = Rig(Path(tmp) / f"run{i}")
            shutil.copytree(base.root, rig.root)
            if cold:  # the card just arrived in this phone: its local copy is a full read
                (rig.root / "phone" / "cards.sqlite").unlink()
            rows.append(await rig.sync(label, mode, model))
        rows.append(await base.full_read(contacts, model))

    print(
        f"{contacts} contacts each side; T=0 model {model.baud} baud, 12 etu/byte, "
        f"{model.card_seconds * 1000:g} ms card time per TPDU"
    )
    for row in rows:
        print(row.line())
    fast = rows[2]
    sync_cmds = sum(n for name, n in fast.after_prologue.items() if name in _SYNC_NAMES)
    print(
        f"fast sync after its prologue: {sync_cmds} sync-related commands "
        f"(target <= 3 + {2 * changed}): "
        + ", ".join(f"{k} {v}" for k, v in sorted(fast.after_prologue.items()))
    )
    print(f"fast sync, all APDUs beyond the idle fast sync: {fast.apdus - rows[1].apdus}")
    if scan:
        print(f"PDA scan (bench.pda_scan, {scan} contacts):")
        with tempfile.TemporaryDirectory(prefix="simsync-scan-") as tmp:
            pda_scan(Path(tmp), scan)


_SYNC_NAMES = {INS_NAMES[i] for i in SYNC_INS}


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, run the scenarios, print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=250)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--card-ms", type=float, default=2.0)
    parser.add_argument("--scan", type=int, default=250, help="PDA scan size (0: skip)")
    args = parser.parse_args(argv)
    if not 1 <= args.contacts <= 250:
        parser.error("--contacts must be 1..250 (EF.ADN record numbers are one byte)")
    if not 0 <= 2 * args.changed <= args.contacts:
        parser.error("--changed must be 0..contacts/2")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    model = LinkModel(args.baud, args.card_ms / 1000)
    asyncio.run(_main(args.contacts, args.changed, model, args.scan))


if __name__ == "__main__":
    main()
