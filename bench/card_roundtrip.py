"""APDU round trip through real PC/SC versus in-process: prints numbers, asserts nothing.

    sudo .venv/bin/python -m bench.card_roundtrip [--rounds N]

Needs root: when ``/run/pcscd`` is not already a private mount it re-executes itself
under ``unshare -m -n --propagation private -- bash scripts/in-namespace.sh`` so its
pcscd and vpcd ports never meet the machine's. Then it starts ``pcscd -f``, runs
``simsync card serve`` on a fresh image, and times the same APDUs through
pyscard → pcscd → vpcd → card serve (alone, and inside a PC/SC transaction of its own
as ``PcscLink`` sends them) and through ``SimCard.transmit`` in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN_DIR = Path("/run/pcscd")
READER = "Virtual PCD 00 00"
PIN = "0000"

# (label, APDU) pairs timed in a loop; the prologue selects EF.ADN and verifies the PIN.
PROLOGUE = ("a0a40000023f00", "a0a40000027f10", "a0a40000026f3a")
CASES = (
    ("READ RECORD EF.ADN (A0 B2)", "a0b2010420"),
    ("SELECT EF.ADN (A0 A4)", "a0a40000026f3a"),
)


def _verify_apdu() -> bytes:
    return bytes.fromhex("a020000108") + PIN.encode().ljust(8, b"\xff")


def _in_namespace() -> bool:
    return os.path.ismount(RUN_DIR) and not (RUN_DIR / "pcscd.comm").exists()


def _reexec_in_namespace(argv: Sequence[str]) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [
        "unshare", "-m", "-n", "--propagation", "private", "--",
        "bash", str(REPO / "scripts" / "in-namespace.sh"),
        sys.executable, "-m", "bench.card_roundtrip", *argv,
    ]  # fmt: skip
    os.chdir(REPO)
    os.execvp(cmd[0], cmd)


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"card_roundtrip: timed out waiting for {what}")
        time.sleep(0.01)


def _stats(samples_ns: list[int]) -> tuple[float, float]:
    samples = sorted(samples_ns)
    median = statistics.median(samples) / 1000
    p90 = samples[int(len(samples) * 0.9) - 1] / 1000
    return median, p90


def _time(send: Callable[[bytes], bytes], apdu: bytes, rounds: int) -> list[int]:
    for _ in range(min(50, rounds)):  # warm-up
        send(apdu)
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        send(apdu)
        out.append(time.perf_counter_ns() - t0)
    return out


async def _via_link(hex_apdu: str, rounds: int, *, transactions: bool) -> list[int]:
    """Time ``PcscLink.transmit`` as the phone sends commands (or with the transactions off)."""
    from cardio.apdu import Command
    from cardio.pcsc import PcscLink

    class Bare(PcscLink):
        async def _begin(self) -> None:
            pass

        async def _end(self) -> None:
            pass

    link = PcscLink(READER) if transactions else Bare(READER)
    await link.open()
    try:

        def command_of(hex_text: str) -> Command:  # these are case 2 (Le) or case 3 (data)
            raw = bytes.fromhex(hex_text)
            if len(raw) > 5:
                return Command(raw[0], raw[1], raw[2], raw[3], raw[5:])
            return Command(raw[0], raw[1], raw[2], raw[3], b"", raw[4])

        for hex_prologue in PROLOGUE:
            await link.transmit(command_of(hex_prologue))
        command = command_of(hex_apdu)
        out = []
        for i in range(rounds + min(50, rounds)):
            t0 = time.perf_counter_ns()
            await link.transmit(command)
            if i >= min(50, rounds):  # after the warm-up
                out.append(time.perf_counter_ns() - t0)
        return out
    finally:
        await link.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; re-exec into a private namespace first when needed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.card_roundtrip")
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    if not _in_namespace():
        if os.geteuid() != 0:
            print("card_roundtrip: needs root for unshare + mount", file=sys.stderr)
            return 2
        _reexec_in_namespace(argv)

    from smartcard import scard

    from simcard.card import new_memory_card
    from simcard.image import create_image

    with tempfile.TemporaryDirectory() as tmp:
        quiet = subprocess.DEVNULL
        pcscd = subprocess.Popen(["pcscd", "-f"], stdout=quiet, stderr=quiet)
        serve: subprocess.Popen[bytes] | None = None
        ctx = None
        try:
            _wait((RUN_DIR / "pcscd.comm").exists, 10, "pcscd")
            image = Path(tmp) / "card.img"
            create_image(image, pin=PIN)
            serve = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "card", "serve", str(image)],
                cwd=REPO, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            assert hresult == scard.SCARD_S_SUCCESS
            hcard = None

            def connect() -> bool:
                nonlocal hcard
                hresult, card, _p = scard.SCardConnect(
                    ctx, READER, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0
                )
                hcard = card if hresult == scard.SCARD_S_SUCCESS else None
                return hcard is not None

            _wait(connect, 15, "the card in the reader")

            def via_pcsc(apdu: bytes) -> bytes:
                hresult, response = scard.SCardTransmit(hcard, scard.SCARD_PCI_T0, list(apdu))
                assert hresult == scard.SCARD_S_SUCCESS, hresult
                return bytes(response)

            def via_transaction(apdu: bytes) -> bytes:
                # As PcscLink sends a command: in a PC/SC transaction of its own.
                assert scard.SCardBeginTransaction(hcard) == scard.SCARD_S_SUCCESS
                try:
                    return via_pcsc(apdu)
                finally:
                    scard.SCardEndTransaction(hcard, scard.SCARD_LEAVE_CARD)

            local = new_memory_card(pin=PIN)
            local.power_on()
            for send in (via_pcsc, local.transmit):
                for hex_apdu in PROLOGUE:
                    send(bytes.fromhex(hex_apdu))
                assert send(_verify_apdu())[-2:] == b"\x90\x00"

            print(f"APDU round trips, {args.rounds} each, microseconds (median / p90)")
            print(
                f"{'':30} {'PC/SC (pyscard->pcscd->vpcd->serve)':>38}"
                f" {'same, in a transaction':>24} {'in-process':>18}"
            )
            for label, hex_apdu in CASES:
                apdu = bytes.fromhex(hex_apdu)
                pm, p9 = _stats(_time(via_pcsc, apdu, args.rounds))
                tm, t9 = _stats(_time(via_transaction, apdu, args.rounds))
                lm, l9 = _stats(_time(local.transmit, apdu, args.rounds))
                print(
                    f"{label:30} {pm:17.1f} / {p9:8.1f}{'':11} {tm:9.1f} / {t9:8.1f}"
                    f"{'':4} {lm:7.1f} / {l9:7.1f}"
                )
            scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
            print(f"through PcscLink.transmit (a worker thread per call), {args.rounds} each")
            for label, hex_apdu in CASES:
                bare = asyncio.run(_via_link(hex_apdu, args.rounds, transactions=False))
                held = asyncio.run(_via_link(hex_apdu, args.rounds, transactions=True))
                (bm, b9), (hm, h9) = _stats(bare), _stats(held)
                print(
                    f"{label:30} without transactions {bm:7.1f} / {b9:7.1f}"
                    f"   one per command {hm:7.1f} / {h9:7.1f}"
                )
            local.close()
        finally:
            if ctx is not None:
                scard.SCardReleaseContext(ctx)
            if serve is not None:
                serve.terminate()
                serve.wait(timeout=10)
            pcscd.terminate()
            pcscd.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
