"""The crash matrix's world: a synced template, the edits since, and the real processes.

:func:`make_template` builds, once per module, a card image and a PDA directory
that have synced once (slow, then fast) with a phone state directory, in-process
for speed. Each row copies it (:class:`World`), makes the same edits on both
sides, and then runs everything as separate processes: ``card serve`` through
pcscd + vpcd, ``pda serve`` (optionally :mod:`tests.crash.pda_run` with a crash
hook) and ``simsync sync --json`` (optionally :mod:`tests.crash.phone_run`).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.config import load_config
from daemon.sync import phone_identity, run_sync
from pda.cardstate import CardStateDB
from pda.node import PdaDir, PdaServer
from pda.store import Projection
from pda.vdir import VdirStore
from simcard import DEFAULT_ICCID, create_image
from tests.e2e.harness import Card
from tests.fixtures.pcsc import READERS, REPO, terminate

PIN = "0000"
DB_ADN = 0x6F3A
RECORDS = 30
POLICY = "card-wins"  # no intentional duplicates: every duplicate the checks see is a bug
PROCESS_TIMEOUT = 60.0

#: Before the first sync: the card's records and the PDA's contacts.
CARD_START = {n: (f"Anna {n:02d}", f"+491000{n:04d}") for n in range(1, 9)}
PDA_START = [(f"Bert {n:02d}", f"+492000{n:04d}") for n in range(1, 5)]
NO_NUMBER = "Nonumber"  # stays on the PDA only (skipped): it may not appear on the card

#: What both sides hold after the edits below have been synced (card-wins conflict).
EXPECTED = Counter(
    [
        CARD_START[1],
        ("Anna 02", "+4919999902"),  # modified on the card
        ("Anna 04 card", CARD_START[4][1]),  # the conflict, won by the card
        ("Anna 05", "+4928888805"),  # modified on the PDA
        CARD_START[7],
        CARD_START[8],
        ("Card New", "+4930000020"),  # added on the card
        PDA_START[0],
        ("Bert 02 pda", PDA_START[1][1]),  # renamed on the PDA
        PDA_START[2],
        PDA_START[3],
        ("Pda New", "+4940000001"),  # added on the PDA
    ]
)  # Anna 03 deleted on the card, Anna 06 deleted on the PDA


def write_config(
    path: Path, *, state_dir: Path, pin_file: Path, card: str, address: str, device_id: str
) -> Path:
    """A phone config; ``card`` is the ``[card]`` key line (reader or image)."""
    path.write_text(
        f'[node]\nid = "phone"\nstate_dir = "{state_dir}"\n\n'
        f'[card]\n{card}\npin_file = "{pin_file}"\n\n'
        f'[[pda]]\nname = "pda"\naddress = "{address}"\ndevice_id = "{device_id}"\n'
        f'conflict = "{POLICY}"\n'
    )
    return path


def _uid(store: VdirStore, name: str) -> str:
    uids = [u for u, c in store.scan().items() if c.projection.name == name]
    assert len(uids) == 1, f"{name!r} held {len(uids)} times on the PDA"
    return uids[0]


def make_template(root: Path) -> Path:
    """The world after one slow and one fast sync (in-process, for speed)."""
    root.mkdir(parents=True, exist_ok=True)
    create_image(root / "card.img", records=RECORDS, pin=PIN)
    card = Card(root / "card.img")
    for n, (name, number) in CARD_START.items():
        card.write(n, name, number)
    (root / "pin").write_text(PIN + "\n")
    pda = PdaDir.init(root / "pda")
    store = VdirStore(pda.contacts)
    for name, number in PDA_START:
        store.create(Projection(name, number))
    store.create(Projection(NO_NUMBER, None))

    async def two_syncs() -> list[dict[str, Any]]:
        server = PdaServer(pda)
        url = await server.start("tcp://127.0.0.1:0")
        task = asyncio.create_task(server.serve_forever())
        try:
            path = write_config(
                root / "inproc.toml", state_dir=root / "phone", pin_file=root / "pin",
                card=f'image = "{root / "card.img"}"', address=url,
                device_id=pda.identity().device_id,
            )  # fmt: skip
            config = load_config(path)
            pda.allow(phone_identity(config).device_id)
            first = await run_sync(config, "pda")
            return [first.to_json(), (await run_sync(config, "pda")).to_json()]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await server.close()

    first, second = asyncio.run(two_syncs())
    assert first["ok"], first
    assert first["mode"] == "slow", first
    assert second["ok"], second
    assert second["mode"] == "fast", second
    (root / "inproc.toml").unlink()
    return root


def edit_both_sides(root: Path) -> None:
    """Since the last sync: adds, modifications, a deletion on each side and a conflict."""
    card = Card(root / "card.img")
    card.write(2, "Anna 02", "+4919999902")
    card.write(3, None)
    card.write(4, "Anna 04 card", CARD_START[4][1])
    card.write(20, "Card New", "+4930000020")
    store = VdirStore(root / "pda" / "contacts")
    store.update_projection(_uid(store, "Anna 04"), Projection("Anna 04 pda", CARD_START[4][1]))
    store.update_projection(_uid(store, "Anna 05"), Projection("Anna 05", "+4928888805"))
    store.delete(_uid(store, "Anna 06"))
    store.update_projection(_uid(store, "Bert 02"), Projection("Bert 02 pda", PDA_START[1][1]))
    store.create(Projection("Pda New", "+4940000001"))


def _env(crash_at: str | None, kill: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMSYNC_CRASH_")}
    if crash_at is not None:
        env["SIMSYNC_CRASH_AT"] = crash_at
        env["SIMSYNC_CRASH_KILL"] = "self" if kill is None else str(kill)
    return env


class PdaProcess:
    """``simsync pda serve`` (through :mod:`tests.crash.pda_run` when a hook is given)."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.dir = directory
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.device_id = PdaDir.open(directory).identity().device_id

    def start(self, crash_at: str | None = None) -> None:
        """Start and return once it printed its ``listening`` line."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.crash.pda_run", "pda", "serve", str(self.dir),
                 "--listen", "tcp://127.0.0.1:0"],
                cwd=REPO, env=_env(crash_at, None), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()  # EOF (b"") if it died first
        parts = line.split()
        assert len(parts) == 3, f"pda serve said {line!r}: {self.tail()}"
        assert parts[0] == "listening", line
        assert parts[2] == self.device_id
        self.url = parts[1]

    def wait_killed(self) -> None:
        """The crash hook fired: the process must have died of SIGKILL."""
        assert self.proc is not None
        code = self.proc.wait(timeout=PROCESS_TIMEOUT)
        self._close_pipe()
        assert code == -signal.SIGKILL, f"pda exited with {code}, not by SIGKILL: {self.tail()}"

    def stop(self) -> None:
        """SIGTERM, wait, by PID (SIGKILL if it hangs); no-op when not running."""
        if self.proc is None:
            return
        terminate(self.proc)
        self._close_pipe()

    def _close_pipe(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def tail(self) -> str:
        """The end of its log."""
        return self.log.read_text(errors="replace")[-3000:]


@dataclass(frozen=True)
class PhoneRun:
    """One ``simsync sync --json`` process: exit status, result object (None if killed)."""

    returncode: int
    result: dict[str, Any] | None
    stderr: str


class World:
    """One row's copy of the template, and the processes working on it."""

    def __init__(self, template: Path, root: Path) -> None:
        shutil.copytree(template, root)
        self.root = root
        self.image = root / "card.img"
        self.pda = PdaProcess(root / "pda", root / "pda.log")
        edit_both_sides(root)

    def phone(self, crash_at: str | None = None, kill: int | None = None) -> PhoneRun:
        """Run one sync as the phone (through the crash wrapper when a hook is given)."""
        config = write_config(
            self.root / "phone.toml", state_dir=self.root / "phone", pin_file=self.root / "pin",
            card=f'reader = "{READERS[0]}"', address=self.pda.url, device_id=self.pda.device_id,
        )  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "tests.crash.phone_run", "sync", "--config", str(config),
             "--json"],
            cwd=REPO, env=_env(crash_at, kill), stdin=subprocess.DEVNULL,
            capture_output=True, timeout=PROCESS_TIMEOUT, check=False,
        )  # fmt: skip
        out = proc.stdout.decode().strip()
        return PhoneRun(proc.returncode, json.loads(out) if out else None, proc.stderr.decode())

    def pda_pending(self) -> bool:
        """Whether the PDA holds a pending anchor for the card (a prepared, unpromoted sync)."""
        state = CardStateDB(self.root / "pda" / "state.sqlite")
        try:
            return state.load(DEFAULT_ICCID, DB_ADN).pending is not None
        finally:
            state.close()

    def card_records(self) -> Counter[tuple[str, str]]:
        """The card's records as a multiset of (name, number); the card must not be served."""
        return Counter(Card(self.image).records().values())

    def pda_contacts(self) -> tuple[Counter[tuple[str, str]], list[str]]:
        """The PDA's contacts with a number as (name, number), and the names without one."""
        with_number: Counter[tuple[str, str]] = Counter()
        without: list[str] = []
        for c in VdirStore(self.root / "pda" / "contacts").scan().values():
            if c.projection.number is None:
                without.append(c.projection.name)
            else:
                with_number[(c.projection.name, c.projection.number)] += 1
        return with_number, without
