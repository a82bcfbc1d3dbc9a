"""Memory a stranger or a junk file can make the PDA hold (issue 10). Prints numbers only.

Run: ``python -m bench.hostile [--code DIR] [--junk-mib 64] [--strangers 300]``.
``--code`` points at the source tree to measure (default: this one), so the same
script measures a tree from before the limits for comparison. Everything runs on
loopback and stops by itself:

1. junk: a vdir holding one valid card and one junk ``.vcf`` of ``--junk-mib`` MiB;
   a child process scans it once; its peak RSS (ru_maxrss) and the time are printed.
2. strangers: ``simsync pda serve`` as a child; ``--strangers`` connections at once,
   each announcing a 1 MiB pairing hello and sending it; the server's VmHWM (peak
   RSS) before and after is printed, then every connection is closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
_SCAN = (
    "import sys; from pda.vdir import VdirStore; s = VdirStore(sys.argv[1]); "
    "print(len(s.scan()), len(s.bad_files))"
)


def junk(code: Path, root: Path, mib: int) -> None:
    """Scan a vdir with a junk file in a child; print its peak memory."""
    vdir = root / "junk-vdir"
    vdir.mkdir()
    (vdir / "ok.vcf").write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ok\r\nFN:Ok\r\nEND:VCARD\r\n")
    with open(vdir / "junk.vcf", "wb") as f:
        block = b"junk line that is no vCard property at all\r\n" * 1489  # ~64 KiB
        for _ in range(mib * 16):
            f.write(block)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _SCAN, str(vdir)],
        cwd=code,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    took = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        f"junk {mib} MiB: scan {took:.2f} s, child peak RSS {max(peak, before) / 1024:.0f} MB, "
        f"result {out.stdout.strip() or out.stderr.strip()[-200:]}"
    )


def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


async def _flood(host: str, port: int, count: int) -> int:
    hello = (1 << 20).to_bytes(4, "big") + b"simsync-pair/1 cert:" + bytes((1 << 20) - 20)
    opened: list[asyncio.StreamWriter] = []
    sent = 0
    for start in range(0, count, 50):  # the listen backlog
        for _ in range(min(50, count - start)):
            with contextlib.suppress(OSError):
                _, w = await asyncio.open_connection(host, port)
                opened.append(w)
                w.write(hello)
        for w in opened[start:]:
            with contextlib.suppress(OSError):
                await asyncio.wait_for(w.drain(), 5)
                sent += 1
    await asyncio.sleep(1.0)  # let the server read what it will (a bench, not a test)
    for w in opened:
        w.close()
    return sent


def strangers(code: Path, root: Path, count: int) -> None:
    """Serve a PDA in a child and flood it; print its peak memory."""
    pda = root / "pda"
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "daemon.cli"]
    subprocess.run([*cmd, "pda", "init", str(pda)], cwd=code, env=env, check=True, timeout=60,
                   capture_output=True)  # fmt: skip
    proc = subprocess.Popen(
        [*cmd, "pda", "serve", str(pda), "--listen", "tcp://127.0.0.1:0"],
        cwd=code, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[1]
        host, port = url.removeprefix("tcp://").rsplit(":", 1)
        idle = _vm(proc.pid, "VmHWM")
        sent = asyncio.run(_flood(host, int(port), count))
        print(
            f"strangers {count} x 1 MiB hello ({sent} fully sent): server peak RSS "
            f"{idle / 1024:.0f} MB idle -> {_vm(proc.pid, 'VmHWM') / 1024:.0f} MB"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    """Parse arguments and run both measurements."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=HERE, help="source tree to measure")
    parser.add_argument("--junk-mib", type=int, default=64)
    parser.add_argument("--strangers", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        junk(args.code.resolve(), Path(tmp), args.junk_mib)
        strangers(args.code.resolve(), Path(tmp), args.strangers)


if __name__ == "__main__":
    main()
