"""Whole syncs over a serial line: phone `run_sync` -> noisy ptys -> PDA server, TLS on top."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.e2e.harness import world
from tests.fixtures.ptyline import Noise, PtyLine
from transports import open_transport

# About one byte in 2000 hit: most TLS records cross the line more than once.
NOISE = Noise(corrupt=2e-4, drop=1e-4, dup=1e-4, garbage=5e-5)


async def test_a_sync_over_a_noisy_serial_line_converges(tmp_path: Path) -> None:
    line = PtyLine(noise=NOISE, seed=8)
    try:
        async with world(tmp_path, records=30) as w:
            for n in range(1, 9):
                w.card.write(n, f"Card {n}", f"+49170{n:04d}")
            pda = await w.add_pda("pda1", listen=f"serial://{line.a}", address=f"serial://{line.b}")
            for n in range(1, 6):
                pda.add(f"Pda {n}", f"+33{n:06d}")

            first = await w.sync("pda1")
            assert first["ok"], first["error"]
            assert first["mode"] == "slow"
            w.card.write(2, "Card 2 (edited)", "+491700002")
            pda.add("Pda new", "+33999999")
            second = await w.sync("pda1")
            assert second["ok"], second["error"]
            assert second["mode"] == "fast"
            assert second["to_pda"]["modified"] == 1
            assert second["to_card"]["added"] == 1

            on_card = Counter(name for name, _ in w.card.records().values())
            on_pda = Counter(name for name, _ in pda.contacts().values())
            assert on_card == on_pda
            assert on_card["Card 2 (edited)"] == 1
            assert on_card["Pda new"] == 1
            assert len(on_card) == 14
            assert sum(line.carried) > 0
    finally:
        await line.close()


async def test_a_line_dropped_mid_sync_fails_that_sync_cleanly_and_the_next_one_works(
    tmp_path: Path,
) -> None:
    line = PtyLine(cut_after=3000)  # after the TLS handshake, amid the exchange
    try:
        async with world(tmp_path, records=20) as w:
            w.card.write(1, "Alice", "+4911111")
            pda = await w.add_pda(
                "pda1",
                listen=f"serial://{line.a}?dead_after=1",
                address=f"serial://{line.b}?dead_after=1",
            )
            dropped = await w.sync("pda1")
            assert not dropped["ok"]
            assert dropped["error"]["code"] == "pda_unreachable", dropped["error"]
            assert "went silent" in dropped["error"]["message"]

            line.cut_after = None
            line.resume()
            again = await w.sync("pda1")
            assert again["ok"], again["error"]
            # Whatever the PDA had taken before the drop is matched, not duplicated.
            assert [name for name, _ in pda.contacts().values()] == ["Alice"]
    finally:
        await line.close()


async def test_pda_serve_listens_on_a_tty_and_stops_on_sigterm(tmp_path: Path) -> None:
    line = PtyLine()
    serve = None
    try:
        pda_dir = tmp_path / "pda"
        init = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon.cli", "pda", "init", str(pda_dir),
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        assert await init.wait() == 0
        url = f"serial://{line.a}?baud=9600"
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon.cli", "pda", "serve", str(pda_dir), "--listen", url,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert serve.stdout is not None
        first = await serve.stdout.readline()
        assert first.decode().startswith(f"listening {url} ")
        # The line is really served: a session opens (TLS would follow; the PDA then
        # drops us as an unpaired phone, which is its business).
        link = await open_transport(f"serial://{line.b}?baud=9600", timeout=10)
        await link.close()
        serve.send_signal(signal.SIGTERM)
        assert await serve.wait() == 0
    finally:
        if serve is not None and serve.returncode is None:
            serve.kill()
            await serve.wait()
        await line.close()
