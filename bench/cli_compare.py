"""`simsync sync` against vdirsyncer on the same vdir with the same 5 changes, as processes.

    .venv/bin/python -m bench.cli_compare [--contacts 10000] [--runs 5]

The PDA is a real ``simsync pda serve`` process on loopback TCP + TLS (started once,
as it runs in the field); each sync is a ``simsync sync`` process (card: the
emulator image, ``[card] image``). vdirsyncer 0.21 (the ``bench`` extra) syncs the
same vdir with a filesystem mirror. Each round edits the same 5 contacts' files,
then times both. Prints wall and CPU (user + system, the server's share included
for simsync) as medians with min-max, and the server's resident memory; asserts
nothing. Targets (issue 9): 10,000 contacts, simsync <= 0.45 s wall and <= 0.3x
vdirsyncer.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import procstat
from bench.book import BookRig

BIN = Path(sys.executable).parent
TIMEOUT = 600


@dataclass
class Runs:
    """Wall and CPU seconds of one tool's runs."""

    label: str
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)

    def line(self) -> str:
        """Medians (min-max) in ms."""
        w = [t * 1000 for t in self.walls]
        c = [t * 1000 for t in self.cpus]
        return (
            f"{self.label:30s} wall {statistics.median(w):7.0f} ms ({min(w):5.0f}-{max(w):5.0f})"
            f"  cpu {statistics.median(c):7.0f} ms ({min(c):5.0f}-{max(c):5.0f})"
        )


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(argv: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr[-2000:]}")


class PdaServe:
    """``simsync pda serve`` on a free loopback port, stopped by PID."""

    def __init__(self, pda_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [BIN / "simsync", "pda", "serve", str(pda_dir), "--listen", "tcp://127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        words = self.proc.stdout.readline().split()
        if len(words) != 3 or words[0] != "listening":
            self.stop()
            raise RuntimeError("simsync pda serve did not start")
        self.url = words[1]

    def cpu(self) -> float:
        """CPU seconds the server used so far."""
        return procstat.cpu_ms(self.proc.pid) / 1000

    def memory_mb(self) -> tuple[float, float]:
        """(resident now, peak resident) in MiB."""
        pid = self.proc.pid
        return procstat.rss_kib(pid) / 1024, procstat.peak_rss_kib(pid) / 1024

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _vdirsyncer_config(root: Path, vdir: Path) -> Path:
    mirror = root / "mirror"
    mirror.mkdir()
    config = root / "vdirsyncer.conf"
    config.write_text(
        f'[general]\nstatus_path = "{root / "vdirsyncer-status"}/"\n\n'
        '[pair contacts]\na = "pda"\nb = "mirror"\ncollections = null\n'
        'conflict_resolution = "a wins"\n\n'
        f'[storage pda]\ntype = "filesystem"\npath = "{vdir}/"\nfileext = ".vcf"\n\n'
        f'[storage mirror]\ntype = "filesystem"\npath = "{mirror}/"\nfileext = ".vcf"\n'
    )
    return config


@dataclass
class Compared:
    """One book size's comparison."""

    contacts: int
    simsync: Runs
    vdirsyncer: Runs | None
    server_rss_mb: float
    server_peak_mb: float


def compare(rig: BookRig, root: Path, runs: int) -> Compared:
    """Sync a built book once both ways, then `runs` rounds of 5 edits each, timed.

    `root` is a scratch directory for vdirsyncer's mirror, config and status.
    """
    contacts = rig.contacts
    root.mkdir(parents=True, exist_ok=True)
    vdir = rig.pda_dir / "contacts"
    server = PdaServe(rig.pda_dir)
    try:
        config = rig.root / "phone.toml"
        rig.config(server.url)  # writes phone.toml
        sync = [str(BIN / "simsync"), "sync", "--config", str(config)]
        _run(sync, rig.root)  # the first, slow sync
        vds: list[str] | None = None
        if (BIN / "vdirsyncer").exists():
            base = [str(BIN / "vdirsyncer"), "-c", str(_vdirsyncer_config(root, vdir))]
            _run([*base, "discover"], root)
            vds = [*base, "sync"]
            _run(vds, root)
        ours, theirs = Runs("simsync sync"), Runs("vdirsyncer sync")
        for _ in range(runs):
            rig.edit(5)
            for label, argv, into in (("simsync", sync, ours), ("vdirsyncer", vds, theirs)):
                if argv is None:
                    continue
                cpu, server_cpu = _children_cpu(), server.cpu() if label == "simsync" else 0.0
                started = time.perf_counter()
                _run(argv, root)
                into.walls.append(time.perf_counter() - started)
                spent = _children_cpu() - cpu
                if label == "simsync":
                    spent += server.cpu() - server_cpu
                into.cpus.append(spent)
        rss, peak = server.memory_mb()
    finally:
        server.stop()
    return Compared(contacts, ours, theirs if vds else None, rss, peak)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, compare, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="simsync-cli-") as tmp:
        rig = BookRig(Path(tmp) / "rig", args.contacts)
        rig.build()
        load = os.getloadavg()[0]
        got = compare(rig, Path(tmp), args.runs)
    print(
        f"{args.contacts} contacts, 5 changed per round, {args.runs} rounds; load average "
        f"{load:.1f} -> {os.getloadavg()[0]:.1f} (others' work inflates wall times)"
    )
    print(got.simsync.line())
    if got.vdirsyncer is None:
        print("vdirsyncer: not installed (pip install -e '.[bench]')")
    else:
        print(got.vdirsyncer.line())
        ratio = statistics.median(got.simsync.walls) / statistics.median(got.vdirsyncer.walls)
        print(f"simsync / vdirsyncer, median wall: {ratio:.2f}")
    print(f"simsync pda serve: resident {got.server_rss_mb:.0f} MiB, peak {got.server_peak_mb:.0f}")


if __name__ == "__main__":
    main()
