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
   vdir, measured as :mod:`bench.links` measures every link, and the same sync
   over loopback TCP for comparison. Needs ``dbus-daemon``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time

import structlog

from bench.links import ble_sync, fast_sync
from tests.ble.bumble_rig import bumble_rig, connected_pair


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
    print(f"Fast sync, {args.changed}+{args.changed} changes (frames out/in, bytes on the link):")
    asyncio.run(fast_sync(args.contacts, args.changed, "tcp loopback", "tcp://127.0.0.1:0"))
    asyncio.run(ble_sync(args.contacts, args.changed, 247))


if __name__ == "__main__":
    main()
