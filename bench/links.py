"""What each link costs: a 5+5-change fast sync over memory, tcp, serial and ble. Prints.

    .venv/bin/python -m bench.links [--contacts N] [--changed K] [--skip-goodput]

1. **A fast sync per link.** After a slow sync of N contacts, K contacts change on
   the card and K in the PDA's vdir; the fast sync that follows is measured on the
   phone's link, beneath TLS: frames each way, bytes on the link each way, wall
   time, and bytes on the link per changed contact (the TLS handshake included,
   as every sync makes one). "Bytes on the link" is what the link itself puts on
   its medium: frames plus their 4-byte prefixes on TCP; COBS packets with CRC,
   ARQ acks, keepalives and the close handshake on a tty; ATT values (our chunk
   headers and credits included) on BLE. memory: hands frames over (no medium).
   Serial runs over kernel ptys joined by a relay that paces bytes at 9600 and
   115200 baud (8N1; a pty itself ignores the rate) and unpaced. BLE runs phone
   (bleak) -> python-dbusmock's BlueZ on a private system bus -> the PDA's D-Bus
   GATT application, at MTU 23 and 247. Needs ``dbus-daemon``.
2. **Goodput.** BLE on bumble's virtual controllers at MTU 23 and 247
   (:func:`bench.ble.goodput`); serial: one frame phone -> PDA over the paced
   ptys at 9600 and 115200 baud, against the line's 8N1 rate.

Wall times depend on this machine's load; frame and byte counts are exact for a
given run (the TLS records, and a tty's retransmissions, vary a little).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tests.e2e.harness import World
from tests.fixtures.ptyline import PtyLine
from transports import FrameLink, listen, open_transport
from transports.base import TransportDriver
from transports.ble_link import ChunkLink
from transports.serial import SerialLink

PDA_ADAPTER = "hci1"


@dataclass
class Meter:
    """The phone's links opened while metering, counted beneath TLS."""

    frames_out: int = 0
    frames_in: int = 0
    payload_out: int = 0
    payload_in: int = 0
    links: list[FrameLink] = field(default_factory=list)

    def on_link(self) -> tuple[int, int]:
        """Bytes on the link (out, in), by what each kind puts on its medium."""
        out = inn = 0
        for link in self.links:
            if isinstance(link, SerialLink):
                out += link.stats["bytes_out"]
                inn += link.stats["bytes_in"]
            elif isinstance(link, ChunkLink):
                out += link.bytes_out
                inn += link.bytes_in
        if not any(isinstance(link, SerialLink | ChunkLink) for link in self.links):
            prefix = 4 if any(link.peer.startswith("tcp") for link in self.links) else 0
            out = self.payload_out + prefix * self.frames_out
            inn = self.payload_in + prefix * self.frames_in
        return out, inn


@contextmanager
def metering() -> Iterator[Meter]:
    """Count frames on every link ``open_transport`` hands out meanwhile."""
    meter = Meter()
    original = TransportDriver.open

    async def open_counted(
        self: TransportDriver, url: str, max_frame: int, options: Mapping[str, object]
    ) -> FrameLink:
        link = await original(self, url, max_frame, options)
        meter.links.append(link)
        send, recv = link.send, link.recv

        async def counted_send(frame: bytes) -> None:
            await send(frame)
            meter.frames_out += 1
            meter.payload_out += len(frame)

        async def counted_recv() -> bytes:
            frame = await recv()
            meter.frames_in += 1
            meter.payload_in += len(frame)
            return frame

        link.send = counted_send  # type: ignore[method-assign]
        link.recv = counted_recv  # type: ignore[method-assign]
        return link

    TransportDriver.open = open_counted  # type: ignore[method-assign]
    try:
        yield meter
    finally:
        TransportDriver.open = original  # type: ignore[method-assign]


async def fast_sync(
    contacts: int,
    changed: int,
    label: str,
    listen_url: str,
    address: str | None = None,
) -> None:
    """Slow sync, then K+K changes and the measured fast sync, over *listen_url*."""
    with tempfile.TemporaryDirectory(prefix="bench-links-") as tmp:
        w = World(Path(tmp), records=max(40, contacts + 10))
        try:
            for n in range(1, contacts + 1):
                w.card.write(n, f"Person {n}", f"+49{n:06d}")
            pda = await w.add_pda("pda1", listen=listen_url, address=address)
            first = await w.sync("pda1")
            assert first["ok"], first["error"]
            for n in range(1, changed + 1):
                w.card.write(n, f"Person {n} card", f"+49{n:06d}")
            contacts_now = pda.contacts()
            untouched = sorted(
                (u for u, (name, _) in contacts_now.items() if "card" not in name),
                key=lambda u: contacts_now[u][0],
            )
            store = pda.store()
            for uid in untouched[-changed:]:
                name, number = contacts_now[uid]
                store.delete(uid)
                pda.add(f"{name} pda", number, uid=uid)
            with metering() as meter:
                start = time.perf_counter()
                result = await w.sync("pda1")
                seconds = time.perf_counter() - start
            assert result["ok"], result["error"]
            assert result["mode"] == "fast"
            out, inn = meter.on_link()
            print(
                f"  {label:<22} {meter.frames_out:3d}/{meter.frames_in:<3d} frames  "
                f"{out:6d}/{inn:<6d} B  {seconds * 1000:6.0f} ms  "
                f"{(out + inn) / (2 * changed):5.0f} B/changed contact"
            )
        finally:
            await w.close()


async def serial_sync(contacts: int, changed: int, baud: int | None) -> None:
    """The fast sync over two ptys and a relay pacing bytes at *baud* (None: unpaced)."""
    line = PtyLine(baud=baud)
    query = f"?baud={baud}" if baud else ""
    try:
        label = f"serial {baud} baud" if baud else "serial (pty, unpaced)"
        await fast_sync(
            contacts,
            changed,
            label,
            f"serial://{line.a}{query}",
            f"serial://{line.b}{query}",
        )
    finally:
        await line.close()


async def ble_sync(contacts: int, changed: int, mtu: int) -> None:
    """The fast sync over the mocked BlueZ at ATT MTU *mtu*: a private bus, started here."""
    from tests.fixtures.bluez import close_bleak_manager, private_bluez

    with tempfile.TemporaryDirectory(prefix="bench-bus-") as tmp, private_bluez(Path(tmp)) as mock:
        mock.phone_and_pda()
        mock.set_mtu(mtu)
        try:
            await fast_sync(contacts, changed, f"ble MTU {mtu}", f"ble:?adapter={PDA_ADAPTER}")
        finally:
            await close_bleak_manager()


async def serial_goodput(baud: int, size: int) -> None:
    """One frame of *size* bytes phone -> PDA over a pty pair paced at *baud*."""
    line = PtyLine(baud=baud)
    try:
        listener = await listen(f"serial://{line.a}?baud={baud}")
        try:
            phone, pda = await asyncio.gather(
                open_transport(f"serial://{line.b}?baud={baud}", timeout=30), listener.accept()
            )
            data = os.urandom(size)
            before = line.carried[1]
            start = time.perf_counter()
            got, _ = await asyncio.gather(pda.recv(), phone.send(data))
            seconds = time.perf_counter() - start
            assert got == data
            wire = line.carried[1] - before
            print(
                f"  serial {baud:6d} baud: {size} B frame, {wire} B on the line "
                f"({size / wire:.1%} payload), {seconds:.2f} s, goodput "
                f"{size / seconds:,.0f} B/s of the line's {baud // 10:,} B/s"
            )
            await phone.close()
            await pda.close()
        finally:
            await listener.close()
    finally:
        await line.close()


def main() -> None:
    """Parse arguments, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=50)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--skip-goodput", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    n, k = args.contacts, args.changed
    print(
        f"Fast sync of {k}+{k} changes after a slow sync of {n} contacts "
        "(phone's link beneath TLS; frames out/in, bytes on the link out/in):"
    )
    asyncio.run(fast_sync(n, k, "memory", "memory:bench-pda"))
    asyncio.run(fast_sync(n, k, "tcp loopback", "tcp://127.0.0.1:0"))
    for baud in (None, 115200, 9600):
        asyncio.run(serial_sync(n, k, baud))
    for mtu in (247, 23):
        asyncio.run(ble_sync(n, k, mtu))
    if args.skip_goodput:
        return
    from bench.ble import goodput

    print("Goodput:")
    asyncio.run(goodput(23, 5_000))
    asyncio.run(goodput(247, 20_000))
    asyncio.run(serial_goodput(115200, 65_536))
    asyncio.run(serial_goodput(9600, 4_096))


if __name__ == "__main__":
    main()
