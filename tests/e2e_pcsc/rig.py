"""Processes and helpers for whole syncs through real PC/SC.

The card is ``simsync card serve`` behind pcscd + vpcd (the ``serve_card`` fixture),
each PDA is a ``simsync pda serve`` subprocess on loopback TCP + TLS, and each sync
is a ``simsync sync --json`` subprocess, so everything crosses the same process
boundaries and sockets as in the field. A second terminal (``pcsc_connect``) edits
the card on channel 0 between syncs; PDA files are written and read directly, as a
person or another vdir tool would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from cardio.codecs import AdnRecord
from pda.node import PdaDir
from pda.vcard import parse_card
from simcard import open_image
from tests.fixtures.pcsc import READERS, REPO, PcscConnection, terminate

PIN = "0000"
ALPHA = 18
SELECT_ADN = ("A0A40000023F00", "A0A40000027F10", "A0A40000026F3A")
TIMEOUT = 60


def cli(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``simsync ARGS`` as a subprocess (``python -m daemon.cli``)."""
    proc = subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"simsync {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def fill_image(image: Path, records: dict[int, tuple[str, str]]) -> None:
    """Write records into a card image before it is served (as the card's maker would)."""
    card = open_image(image)
    try:
        card.power_on()
        for apdu in SELECT_ADN:
            assert card.transmit(bytes.fromhex(apdu))[-2] == 0x9F
        verify = bytes.fromhex("A020000108") + PIN.encode().ljust(8, b"\xff")
        assert card.transmit(verify) == b"\x90\x00"
        for n, (name, number) in records.items():
            raw = AdnRecord(name, number).encode(ALPHA)
            assert card.transmit(bytes([0xA0, 0xDC, n, 4, len(raw)]) + raw) == b"\x90\x00"
    finally:
        card.close()


class Terminal:
    """Another PC/SC client on the card's channel 0 (a second phone app, a SIM editor)."""

    def __init__(self, conn: PcscConnection) -> None:
        self.conn = conn
        for apdu in SELECT_ADN:
            # 9Fxx: the response waits for a GET RESPONSE we do not need.
            assert self.conn.transmit(apdu)[1] == 0x9F
        verify = "A020000108" + PIN.encode().ljust(8, b"\xff").hex()
        assert self.conn.sw(verify) == 0x9000

    def write(self, n: int, name: str | None, number: str = "") -> None:
        """UPDATE RECORD n (None: empty it)."""
        raw = AdnRecord(name, number).encode(ALPHA) if name else b"\xff" * (ALPHA + 14)
        assert self.conn.sw(bytes([0xA0, 0xDC, n, 4, len(raw)]) + raw) == 0x9000

    def records(self) -> dict[int, tuple[str, str]]:
        """Every non-empty record as (name, number)."""
        out: dict[int, tuple[str, str]] = {}
        n = 1
        while True:
            data, sw1, sw2 = self.conn.transmit(bytes([0xA0, 0xB2, n, 4, ALPHA + 14]))
            if (sw1, sw2) != (0x90, 0x00):
                assert (sw1, sw2) == (0x94, 0x02), f"READ RECORD {n}: {sw1:02X}{sw2:02X}"
                return out
            rec = AdnRecord.decode(data)
            if rec is not None:
                out[n] = (rec.name, rec.number)
            n += 1

    def names(self) -> Counter[str]:
        """How often each name is on the card."""
        return Counter(name for name, _ in self.records().values())


class PdaProc:
    """A PDA directory served by a ``simsync pda serve`` subprocess."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dir = PdaDir(path) if path.exists() else PdaDir.init(path)
        self.device_id = self.dir.identity().device_id
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def contacts_dir(self) -> Path:
        """The vdir a person edits."""
        return self.dir.contacts

    def start(self) -> str:
        """Serve on a free loopback port; returns once the server says it listens."""
        with (self.path.parent / f"{self.path.name}.serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "pda", "serve", str(self.path),
                 "--listen", "tcp://127.0.0.1:0"],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True,
            )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the one "listening" line (or EOF)
        words = line.split()
        if len(words) != 3 or words[0] != "listening":
            self.stop()
            raise AssertionError(f"pda serve did not start: {line!r}")
        assert words[2] == self.device_id
        self.url = words[1]
        return self.url

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL if it hangs."""
        if self.proc is None:
            return
        terminate(self.proc)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.proc = None

    def vcf(self, name: str) -> Path:
        """The path of a vCard file in the vdir."""
        return self.contacts_dir / name

    def write_vcf(self, name: str, text: str) -> Path:
        """Write a vCard file by hand (CRLF kept as given)."""
        path = self.vcf(name)
        path.write_text(text, encoding="utf-8", newline="")
        return path

    def contacts(self) -> dict[str, tuple[str, str | None]]:
        """Every .vcf file's projection (name, preferred number), read like any vdir tool."""
        out: dict[str, tuple[str, str | None]] = {}
        for path in sorted(self.contacts_dir.glob("*.vcf")):
            p = parse_card(path.read_text(encoding="utf-8")).projection
            out[path.name] = (p.name, p.number)
        return out

    def names(self) -> Counter[str]:
        """How often each name is in the vdir."""
        return Counter(name for name, _ in self.contacts().values())


def vcard(uid: str, name: str, number: str) -> str:
    """A small hand-written vCard 3.0."""
    return (
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:;{name};;;\r\n"
        f"TEL;TYPE=CELL:{number}\r\nEND:VCARD\r\n"
    )


class Phone:
    """One phone: a config file and a state dir; syncs run as ``simsync sync`` processes."""

    def __init__(self, root: Path, *, reader: str = READERS[0], pin: str = PIN) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.reader = reader
        self.config = root / "phone.toml"
        self.pin_file = root / "pin"
        self.pin_file.write_text(pin + "\n")
        self.pdas: dict[str, tuple[PdaProc, str]] = {}
        self.write_config()

    def write_config(self) -> None:
        """(Re)write the TOML config from the PDAs known so far."""
        lines = [
            f'[node]\nid = "phone"\nstate_dir = "{self.root / "state"}"\n',
            f'[card]\nreader = "{self.reader}"\npin_file = "{self.pin_file}"\n',
        ]
        for name, (pda, policy) in self.pdas.items():
            lines.append(
                f'[[pda]]\nname = "{name}"\naddress = "{pda.url or "tcp://127.0.0.1:9"}"\n'
                f'device_id = "{pda.device_id}"\nconflict = "{policy}"\n'
            )
        self.config.write_text("\n".join(lines))

    def device_id(self) -> str:
        """``simsync id --config``: the id to allow on a PDA."""
        return cli("id", "--config", str(self.config), check=True).stdout.strip()

    def pair(
        self, name: str, pda: PdaProc, *, policy: str = "duplicate", allow: bool = True
    ) -> None:
        """Add the PDA to the config and (with ``allow``) allow this phone on it."""
        self.pdas[name] = (pda, policy)
        self.write_config()
        if allow:
            cli("pda", "allow", str(pda.path), self.device_id(), check=True)

    def sync_proc(self, pda: str, *extra: str) -> subprocess.CompletedProcess[str]:
        """``simsync sync --json`` as it ran."""
        return cli("sync", "--config", str(self.config), "--pda", pda, "--json", *extra)

    def sync(self, pda: str, *extra: str) -> dict[str, Any]:
        """One sync; the parsed result object (exit status checked against ``ok``)."""
        proc = self.sync_proc(pda, *extra)
        result: dict[str, Any] = json.loads(proc.stdout)
        assert (proc.returncode == 0) == result["ok"], (proc.returncode, result, proc.stderr)
        return result
