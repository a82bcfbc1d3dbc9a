"""What /proc says of a process the benchmarks started: memory, CPU time, wake-ups."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cpu_ms", "peak_rss_kib", "rss_kib", "switches"]


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), KiB."""
    return _status_kib(pid, "VmRSS:")


def peak_rss_kib(pid: int) -> int:
    """The most resident memory ``pid`` has had (VmHWM), KiB."""
    return _status_kib(pid, "VmHWM:")


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def cpu_ms(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (all its threads), ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def switches(pid: int) -> int:
    """Context switches of every thread of ``pid`` so far (each wake-up is one or more)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total
