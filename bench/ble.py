"""What BLE costs: goodput at MTU 23 and 247, and a 5+5-change fast sync. Prints, asserts nothing.

    .venv/bin/python -m bench.ble [--contacts N] [--changed K] [--size BYTES]

1. **Goodput** on a real BLE stack: bumble's virtual controllers on a LocalLink,
   central and peripheral both running simsync's GATT framing; one frame each
   way at MTU 23 (27-byte LL payloads) and MTU 247 (with Data Length Extension,
   251-byte LL payloads). Chunks, bytes on the link (ATT values, our headers
   included), wall time, and goodput (frame bytes per second). bumble's controller
   costs CPU per LL packet, so the times are this simulation's, not a radio's;
   the chunk and byte counts are exact.
2. **A fast sync over BLE**: the phone (bleak) -> python-dbusmock's BlueZ on a
   private system bus -> the PDA's D-Bus GATT application, mutual TLS inside,
   after a first slow sync: K contacts changed on the card and K in the PDA's
   vdir. Frames and bytes each way on the BLE link (chunks and ATT value bytes),
   and the same sync over loopback TCP for comparison. Needs ``dbus-daemon``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from tests.ble.bumble_rig import bumble_rig, connected_pair
from tests.e2e.harness import World
from transports import ble_link
from transports.ble_link import ChunkLink

PDA_ADAPTER = "hci1"


class _Counted:
    """Every ChunkLink made while active, so the sync's links can be read afterwards."""

    links: list[ChunkLink]

    def __init__(self) -> None:
        self.links = []

    def totals(self) -> dict[str, int]:
        # The phone's link is the one whose peer is a ble:// URL; the PDA's is a device path.
        phone = [link for link in self.links if link.peer.startswith("ble://")]
        return {
            "phone_frames_out": sum(link.channel.frames_sent for link in phone),
            "phone_frames_in": sum(getattr(link, "frames_in", 0) for link in phone),
            "chunks_out": sum(link.chunks_out for link in phone),
            "chunks_in": sum(link.chunks_in for link in phone),
            "bytes_out": sum(link.bytes_out for link in phone),
            "bytes_in": sum(link.bytes_in for link in phone),
        }


@contextmanager
def counting() -> Iterator[_Counted]:
    """Patch ChunkLink so each instance registers itself and counts frames received."""
    counted = _Counted()
    original_init, original_recv = ChunkLink.__init__, ChunkLink.recv

    def init(self: ChunkLink, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        counted.links.append(self)

    async def recv(self: ChunkLink) -> bytes:
        frame = await original_recv(self)
        self.frames_in = getattr(self, "frames_in", 0) + 1  # type: ignore[attr-defined]
        return frame

    ble_link.ChunkLink.__init__ = init  # type: ignore[method-assign]
    ble_link.ChunkLink.recv = recv  # type: ignore[method-assign]
    try:
        yield counted
    finally:
        ble_link.ChunkLink.__init__ = original_init  # type: ignore[method-assign]
        ble_link.ChunkLink.recv = original_recv  # type: ignore[method-assign]


async def goodput(mtu: int, size: int) -> None:
    """One frame of *size* bytes each way over bumble at *mtu*."""
    rig = await bumble_rig(mtu)
    try:
        central, peripheral = await connected_pair(rig)
        data = os.urandom(size)
        for name, src, dst in (
            ("phone->pda", central, peripheral),
            ("pda->phone", peripheral, central),
        ):
            chunks, sent = src.chunks_out, src.bytes_out
            start = time.perf_counter()
            got, _ = await asyncio.gather(dst.recv(), src.send(data))
            seconds = time.perf_counter() - start
            assert got == data
            n, b = src.chunks_out - chunks, src.bytes_out - sent
            print(
                f"  MTU {mtu:3d} {name}: {size} B frame in {n} chunks, {b} B of ATT values "
                f"({size / b:.1%} payload), {seconds * 1000:.0f} ms, "
                f"goodput {size / seconds / 1000:.1f} kB/s"
            )
    finally:
        await rig.close()


async def fast_sync(contacts: int, changed: int, listen: str, label: str) -> None:
    """Slow sync, then K+K changes and the measured fast sync, over *listen*."""
    with tempfile.TemporaryDirectory(prefix="bench-ble-") as tmp:
        w = World(Path(tmp), records=max(40, contacts + 10))
        try:
            for n in range(1, contacts + 1):
                w.card.write(n, f"Person {n}", f"+49{n:06d}")
            pda = await w.add_pda("pda1", listen=listen)
            start = time.perf_counter()
            first = await w.sync("pda1")
            slow_s = time.perf_counter() - start
            assert first["ok"], first["error"]
            for n in range(1, changed + 1):
                w.card.write(n, f"Person {n} card", f"+49{n:06d}")
            uids = sorted(pda.contacts(), key=lambda u: pda.contacts()[u][0])
            store = pda.store()
            for uid in [u for u in uids if "card" not in pda.contacts()[u][0]][-changed:]:
                name, number = pda.contacts()[uid]
                store.delete(uid)
                pda.add(f"{name} pda", number, uid=uid)
            with counting() as counted:
                start = time.perf_counter()
                result = await w.sync("pda1")
                seconds = time.perf_counter() - start
            assert result["ok"], result["error"]
            assert result["mode"] == "fast"
            t = counted.totals()
            print(
                f"  {label}: slow sync of {contacts} {slow_s * 1000:.0f} ms; "
                f"fast {changed}+{changed} {seconds * 1000:.0f} ms "
                f"(to pda {result['to_pda']}, to card {result['to_card']}, apdus {result['apdus']})"
            )
            if counted.links:
                per = (t["bytes_out"] + t["bytes_in"]) / (2 * changed)
                print(
                    f"    link: phone sent {t['phone_frames_out']} frames in "
                    f"{t['chunks_out']} chunks "
                    f"({t['bytes_out']} B), received {t['phone_frames_in']} frames in "
                    f"{t['chunks_in']} chunks ({t['bytes_in']} B); {per:.0f} B on the link per "
                    "changed contact (TLS handshake included)"
                )
        finally:
            await w.close()


async def ble_sync(contacts: int, changed: int) -> None:
    """The fast sync over the mocked BlueZ: a private bus and the mock, started here."""
    from tests.fixtures.bluez import private_bluez

    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp, private_bluez(Path(tmp)) as mock:
        mock.phone_and_pda()
        await fast_sync(contacts, changed, f"ble:?adapter={PDA_ADAPTER}", "BLE (mocked BlueZ)")


def main() -> None:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=50)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--size", type=int, default=20_000, help="goodput frame size")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print("BLE goodput (bumble, real ATT/L2CAP/LL on virtual controllers):")
    asyncio.run(goodput(23, args.size // 4))
    asyncio.run(goodput(247, args.size))
    print(f"Fast sync, {args.changed}+{args.changed} changes:")
    asyncio.run(fast_sync(args.contacts, args.changed, "tcp://127.0.0.1:0", "TCP loopback"))
    asyncio.run(ble_sync(args.contacts, args.changed))


if __name__ == "__main__":
    main()
