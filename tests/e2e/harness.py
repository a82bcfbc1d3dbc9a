"""A phone, a card and PDAs in one test: the real sync path without PC/SC.

The card is an emulator image driven in-process (``[card] image``), the PDAs are
real ``PdaServer``s on loopback TCP with mutual TLS, and syncs go through
``daemon.sync.run_sync`` exactly as ``simsync sync`` runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from cardio.codecs import AdnRecord
from daemon.config import Config, load_config
from daemon.sync import phone_identity, run_sync
from pda.node import PdaDir, PdaServer
from pda.store import Projection
from pda.vdir import VdirStore
from simcard import SimCard, create_image, open_image

PIN = "0000"
ADN = [bytes.fromhex(h) for h in ("A0A40000023F00", "A0A40000027F10", "A0A40000026F3A")]


def _gr(card: SimCard, apdu: bytes) -> bytes:
    r = card.transmit(apdu)
    if r[-2] == 0x9F:
        r = card.transmit(bytes([0xA0, 0xC0, 0, 0, r[-1]]))
    return r


class Card:
    """The card image, as any other terminal would see it between syncs."""

    def __init__(self, path: Path, alpha_len: int = 18) -> None:
        self.path = path
        self.alpha_len = alpha_len

    def _session(self) -> SimCard:
        card = open_image(self.path)
        card.power_on()
        for apdu in ADN:
            assert _gr(card, apdu)[-2:] == b"\x90\x00"
        verify = bytes.fromhex("A020000108") + PIN.encode().ljust(8, b"\xff")
        assert card.transmit(verify) == b"\x90\x00"
        return card

    def write(self, n: int, name: str | None, number: str = "") -> None:
        """UPDATE RECORD n (None: empty it), as a second terminal would."""
        raw = (
            AdnRecord(name, number).encode(self.alpha_len)
            if name
            else b"\xff" * (self.alpha_len + 14)
        )
        self.write_raw(n, raw)

    def write_raw(self, n: int, raw: bytes) -> None:
        """UPDATE RECORD n with exactly ``raw``."""
        card = self._session()
        try:
            assert card.transmit(bytes([0xA0, 0xDC, n, 4, len(raw)]) + raw) == b"\x90\x00"
        finally:
            card.close()

    def write_long(self, n: int, name: str, number: str) -> None:
        """A number over 20 digits: the ADN record plus its EF.EXT1 chain (records 1, 2, ...)."""
        ids = iter(range(1, 255))
        raw, ext = AdnRecord(name, number).encode_with_ext(self.alpha_len, lambda: next(ids))
        card = self._session()
        try:
            assert _gr(card, bytes.fromhex("A0A40000026F4A"))[-2:] == b"\x90\x00"
            for i, rec in ext:
                assert card.transmit(bytes([0xA0, 0xDC, i, 4, len(rec)]) + rec) == b"\x90\x00"
            assert _gr(card, bytes.fromhex("A0A40000026F3A"))[-2:] == b"\x90\x00"
            assert card.transmit(bytes([0xA0, 0xDC, n, 4, len(raw)]) + raw) == b"\x90\x00"
        finally:
            card.close()

    def ext1_used(self) -> int:
        """How many EF.EXT1 records hold something."""
        card = self._session()
        try:
            assert _gr(card, bytes.fromhex("A0A40000026F4A"))[-2:] == b"\x90\x00"
            used, n = 0, 1
            while (r := card.transmit(bytes([0xA0, 0xB2, n, 4, 13])))[-2:] == b"\x90\x00":
                used += any(b != 0xFF for b in r[:-2])
                n += 1
        finally:
            card.close()
        return used

    def full_records(self) -> dict[int, tuple[str, str]]:
        """Every non-empty record with its number whole (EXT1 chains followed)."""
        card = self._session()
        try:
            assert _gr(card, bytes.fromhex("A0A40000026F4A"))[-2:] == b"\x90\x00"
            ext = {}
            for n in range(1, 11):
                ext[n] = card.transmit(bytes([0xA0, 0xB2, n, 4, 13]))[:-2]
        finally:
            card.close()
        out: dict[int, tuple[str, str]] = {}
        card = self._session()
        try:
            n = 1
            while (r := card.transmit(bytes([0xA0, 0xB2, n, 4, self.alpha_len + 14])))[
                -2:
            ] == b"\x90\x00":
                rec = AdnRecord.decode(r[:-2], ext1_reader=ext.__getitem__)
                if rec is not None:
                    out[n] = (rec.name, rec.number)
                n += 1
        finally:
            card.close()
        return out

    def records(self) -> dict[int, tuple[str, str]]:
        """Every non-empty record as (name, number)."""
        card = self._session()
        out: dict[int, tuple[str, str]] = {}
        try:
            n = 1
            while True:
                r = card.transmit(bytes([0xA0, 0xB2, n, 4, self.alpha_len + 14]))
                if r[-2:] != b"\x90\x00":
                    break
                rec = AdnRecord.decode(r[:-2])
                if rec is not None:
                    out[n] = (rec.name, rec.number)
                n += 1
        finally:
            card.close()
        return out


class Pda:
    """A PDA directory with its server."""

    def __init__(self, path: Path) -> None:
        self.dir = PdaDir.init(path)
        self.server: PdaServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def device_id(self) -> str:
        return self.dir.identity().device_id

    def store(self) -> VdirStore:
        return VdirStore(self.dir.contacts)

    def contacts(self) -> dict[str, tuple[str, str | None]]:
        return {
            uid: (c.projection.name, c.projection.number) for uid, c in self.store().scan().items()
        }

    def add(self, name: str, number: str | None, uid: str | None = None) -> str:
        return self.store().create(Projection(name, number), uid=uid)

    def write_vcf(self, uid: str, text: str) -> Path:
        path = self.dir.contacts / f"{uid}.vcf"
        path.write_text(text, encoding="utf-8", newline="")
        return path

    async def start(self, listen: str = "tcp://127.0.0.1:0", *, watch: bool = True) -> str:
        self.server = PdaServer(self.dir, watch=watch)
        url = await self.server.start(listen)
        self._task = asyncio.create_task(self.server.serve_forever())
        return url

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.server is not None:
            await self.server.close()
        self.server = self._task = None


class World:
    """One phone (config + state dir), one card image, any number of PDAs."""

    def __init__(self, tmp: Path, *, records: int = 40, sync_applet: bool = True) -> None:
        self.tmp = tmp
        self.image = tmp / "card.sqlite"
        create_image(self.image, records=records, pin=PIN, sync_applet=sync_applet)
        self.card = Card(self.image)
        (tmp / "pin").write_text(PIN + "\n")
        self.pdas: dict[str, Pda] = {}
        self.urls: dict[str, str] = {}
        self.conflict: dict[str, str] = {}
        self.state_dir = tmp / "phone"

    def config(self) -> Config:
        lines = [
            f'[node]\nid = "phone"\nstate_dir = "{self.state_dir}"\n',
            f'[card]\nimage = "{self.image}"\npin_file = "{self.tmp / "pin"}"\n',
        ]
        for name, pda in self.pdas.items():
            address = self.urls.get(name, "tcp://127.0.0.1:9")
            conflict = self.conflict.get(name, "duplicate")
            lines.append(
                f'[[pda]]\nname = "{name}"\naddress = "{address}"\n'
                f'device_id = "{pda.device_id}"\nconflict = "{conflict}"\n'
            )
        path = self.tmp / "phone.toml"
        path.write_text("\n".join(lines))
        return load_config(path)

    async def add_pda(
        self,
        name: str,
        *,
        pair: bool = True,
        listen: str = "tcp://127.0.0.1:0",
        address: str | None = None,
        watch: bool = True,
    ) -> Pda:
        """A PDA listening on *listen*; the phone reaches it at *address* (default: there)."""
        pda = Pda(self.tmp / name)
        self.pdas[name] = pda
        url = await pda.start(listen, watch=watch)
        self.urls[name] = address or url
        if pair:
            pda.dir.allow(phone_identity(self.config()).device_id)
        return pda

    async def sync(self, pda: str, mode: str = "auto") -> dict[str, Any]:
        return (await run_sync(self.config(), pda, mode)).to_json()

    async def close(self) -> None:
        for pda in self.pdas.values():
            await pda.stop()


@contextlib.asynccontextmanager
async def world(tmp: Path, **kw: Any) -> AsyncIterator[World]:
    w = World(tmp, **kw)
    try:
        yield w
    finally:
        await w.close()
