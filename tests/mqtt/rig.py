"""`simsync daemon` as a subprocess against a real mosquitto, with a World's card and PDAs.

The card is the World's emulator image (``[card] image``), the PDAs are real
``PdaServer``s in the test's event loop (tests/e2e/harness.py), the broker is the
``mosquitto`` fixture's, and the daemon runs as ``python -m daemon.cli daemon`` so
that signals, ``kill -9`` and the Last Will are real.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from syncproto import ProtocolError
from syncproto.codec import decode
from tests.e2e.harness import Pda, World
from tests.fixtures.mosquitto import USERS, Broker
from tests.fixtures.pcsc import REPO, terminate
from transports import FrameLink

ROOT = "simsync/phone"


def mqtt_table(broker: Broker, tmp: Path, *, user: str | None = None, **extra: object) -> str:
    """An ``[mqtt]`` table for ``broker`` (``extra`` keys are written as TOML values)."""
    lines = ["[mqtt]", f'url = "{broker.url}"']
    if broker.auth:
        user = user or "phone"
        pw = tmp / f"{user}.password"
        pw.write_text(USERS[user][0] + "\n")
        lines += [f'username = "{user}"', f'password_file = "{pw}"']
    if broker.ca_file is not None:
        lines.append(f'ca_file = "{broker.ca_file}"')
    for key, value in extra.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def write_config(world: World, *tables: str) -> Path:
    """The World's phone config plus ``tables`` (``[mqtt]``, ``[triggers]``, ``[daemon]``)."""
    world.config()  # writes phone.toml for the World's card and PDAs
    path = world.tmp / "phone.toml"
    path.write_text(path.read_text() + "\n" + "\n".join(tables))
    return path


class DaemonProc:
    """One ``simsync daemon`` process; its stderr goes to ``log``."""

    def __init__(
        self,
        config: Path,
        *,
        env: dict[str, str] | None = None,
        python_args: tuple[str, ...] = (),
        verbosity: tuple[str, ...] = ("-vv",),
    ) -> None:
        self.config = config
        self.log = config.parent / "daemon.log"
        self.env = env
        # Put before ``-m daemon.cli``: e.g. ``("-m", "cProfile", "-o", FILE)`` (bench/).
        self.python_args = python_args
        self.verbosity = verbosity
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProc:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.python_args, "-m", "daemon.cli", *self.verbosity,
                 "daemon", "--config", str(self.config)],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(self.env or {})},
            )  # fmt: skip
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def exited(self) -> int:
        """The exit status, awaited without blocking the loop (PDAs serve in it)."""
        assert self.proc is not None
        return await asyncio.to_thread(self.proc.wait, 20.0)

    def kill9(self) -> None:
        """SIGKILL: no goodbye, the broker sends the Last Will."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM by PID (SIGKILL if it hangs); no-op when gone."""
        terminate(self.proc)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


class Gate:
    """Holds an in-process PDA's message of type ``kind`` until ``release()``.

    ``reached`` is set when the PDA is about to send it: the phone is then waiting
    at a known point of the sync (after its card writes for ``Prepared``, after
    STORESYNC for ``Done``).
    """

    def __init__(self, pda: Pda, kind: type) -> None:
        assert pda.server is not None
        self.kind = kind
        self.reached = asyncio.Event()
        self._open = asyncio.Event()
        original = pda.server._session

        async def session(link: FrameLink) -> None:
            await original(cast(FrameLink, _GatedLink(link, self)))

        pda.server._session = session  # type: ignore[method-assign]

    def release(self) -> None:
        self._open.set()

    async def hold(self, frame: bytes) -> None:
        try:
            msg = decode(frame)
        except ProtocolError:
            return
        if isinstance(msg, self.kind):
            self.reached.set()
            await self._open.wait()


class _GatedLink:
    def __init__(self, link: FrameLink, gate: Gate) -> None:
        self._link = link
        self._gate = gate

    async def send(self, frame: bytes) -> None:
        await self._gate.hold(frame)
        await self._link.send(frame)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._link, name)
