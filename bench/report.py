"""All benchmarks in one go: docs/BENCHMARKS.md and its plots.

    .venv/bin/python -m bench.report [--quick] [--out docs]

Needs the ``bench`` extra (``pip install -e '.[bench]'``: matplotlib, vdirsyncer).
Runs bench.startup, bench.book at each book size, bench.card_cost and
bench.cli_compare, then writes ``OUT/BENCHMARKS.md`` and ``OUT/bench/*.png``.
Medians with min-max; wall times depend on the machine and on what else runs on
it (the report records the load average), CPU times much less so, APDU counts
not at all. Full run: about 15-30 minutes; ``--quick``: a few.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import structlog

from bench import card_cost, cli_compare, plots, startup
from bench.book import CARD, BookRig, Timings, measure
from bench.sync import LinkModel

FULL_SIZES = (250, 1_000, 2_500, 10_000, 25_000, 50_000)
QUICK_SIZES = (250, 2_500, 10_000)


@dataclass
class Book:
    """One book size's results."""

    contacts: int
    rows: list[Timings]
    compared: cli_compare.Compared | None


def _machine() -> list[str]:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("simsync", "pyscard", "vobject", "cryptography", "cbor2", "structlog",
                 "vdirsyncer", "matplotlib"):  # fmt: skip
        try:
            versions.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return [
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({sys.executable})",
        f"- Versions: {', '.join(versions)}",
    ]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


def _ms(values: Sequence[float]) -> str:
    v = [x * 1000 for x in values]
    if len(v) == 1:
        return f"{v[0]:.0f}"
    return f"{statistics.median(v):.0f} ({min(v):.0f}–{max(v):.0f})"


async def _book(root: Path, contacts: int, runs: int, cli_runs: int) -> Book:
    rig = BookRig(root / f"book{contacts}", contacts)
    rig.build()
    async with rig:
        rows = await measure(rig, runs)
    compared = cli_compare.compare(rig, root / f"cli{contacts}", cli_runs) if cli_runs else None
    return Book(contacts, rows, compared)


def _tables(
    books: list[Book], costs: list[card_cost.Cost], starts: dict[str, list[float]]
) -> list[str]:
    out = ["## Sync duration against the PDA's book size", ""]
    out += [
        "In process (phone, PDA server and emulated card in one process, the server "
        "running across syncs as `simsync pda serve` does), a full 250-record card; "
        "link time not included (see the card table). Wall and CPU ms, median (min–max).",
        "",
        "| contacts | scenario | wall ms | CPU ms | APDUs | card time at 9600 baud |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for b in books:
        for r in b.rows:
            out.append(
                f"| {b.contacts:,} | {r.label} | {_ms(r.walls)} | {_ms(r.cpus)} | "
                f"{r.last.apdus} | {r.last.t0_seconds:.2f} s |"
            )
    out += ["", "![sync duration against book size](bench/sync_vs_book.png)", ""]
    out += ["## Card cost against changed records", ""]
    out += [
        "A full 250-record card synced fast after k records changed on the card (each "
        "read) or k contacts on the PDA (each written), next to the least a phone "
        "without sync objects must do (select, verify, read all 250). Modelled T=0 "
        "at 9600 baud, 2 ms card time per TPDU (`cardio.timing`). Deterministic.",
        "",
        "| k | APDUs, k on card | time | APDUs, k on PDA | time | naive full read | time |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(c.side, c.changed): c for c in costs}
    for k in sorted({c.changed for c in costs}):
        card, pda, naive = by[("card", k)], by[("pda", k)], by[("naive", k)]
        out.append(
            f"| {k} | {card.apdus} | {card.t0_seconds:.2f} s | {pda.apdus} | "
            f"{pda.t0_seconds:.2f} s | {naive.apdus} | {naive.t0_seconds:.2f} s |"
        )
    out += ["", "![card cost against changed records](bench/card_cost.png)", ""]
    out += ["## `simsync sync` and vdirsyncer on the same vdir, same 5 changes", ""]
    out += [
        "Processes as a person runs them: `simsync pda serve` (started once), then per "
        "round 5 contacts' files rewritten and both tools timed one after the other: "
        "`simsync sync` (card: the emulator image) and `vdirsyncer sync` (0.21, the "
        "same vdir against a filesystem mirror). CPU includes the PDA server's share.",
        "",
        "| contacts | tool | wall ms | CPU ms | PDA server RSS |",
        "|---:|---|---:|---:|---:|",
    ]
    for b in books:
        c = b.compared
        if c is None:
            continue
        rss = f"{c.server_rss_mb:.0f} MiB (peak {c.server_peak_mb:.0f})"
        ours = c.simsync
        out.append(
            f"| {b.contacts:,} | simsync sync | {_ms(ours.walls)} | {_ms(ours.cpus)} | {rss} |"
        )
        if c.vdirsyncer is not None:
            v = c.vdirsyncer
            out.append(f"| {b.contacts:,} | vdirsyncer sync | {_ms(v.walls)} | {_ms(v.cpus)} | |")
    out += ["", "![simsync and vdirsyncer](bench/cli_vs_vdirsyncer.png)", ""]
    out += ["## Start-up", "", "Fresh interpreters, bytecode present. The import rows"
            " include the interpreter's own teardown at exit, which `simsync` itself skips"
            " (docs/performance.md).", "",
            "| command | wall ms |", "|---|---:|"]  # fmt: skip
    out += [f"| {label} | {_ms(times)} |" for label, times in starts.items()]
    return out


def write_report(
    out: Path,
    quick: bool,
    sizes: Sequence[int] | None = None,
    cli_sizes: Sequence[int] | None = None,
    runs: int | None = None,
) -> None:
    """Run everything and write the report and plots under `out`."""
    if sizes is None:
        sizes = QUICK_SIZES if quick else FULL_SIZES
    if cli_sizes is None:
        cli_sizes = [n for n in (10_000, 50_000) if n in sizes]
    if runs is None:
        runs = 3 if quick else 5
    began, load_before = time.time(), _load()
    print("start-up ...", flush=True)
    starts = startup.measure(runs=5 if quick else 11)
    books = []
    with tempfile.TemporaryDirectory(prefix="simsync-report-") as tmp:
        for n in sizes:
            print(f"book of {n:,} ...", flush=True)
            cli_runs = runs if n in cli_sizes else 0
            books.append(asyncio.run(_book(Path(tmp), n, runs, cli_runs)))
    print("card cost ...", flush=True)
    costs = card_cost.sweep(LinkModel(9600, 0.002))
    (out / "bench").mkdir(parents=True, exist_ok=True)
    plots.sync_vs_book(out / "bench" / "sync_vs_book.png", [(b.contacts, b.rows) for b in books])
    plots.card_cost(out / "bench" / "card_cost.png", costs)
    plots.cli_vs_vdirsyncer(
        out / "bench" / "cli_vs_vdirsyncer.png",
        [(b.contacts, b.compared) for b in books if b.compared is not None],
    )
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m bench.report{' --quick' if quick else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(began))} in "
        f"{(time.time() - began) / 60:.0f} min. Numbers from this machine, this run:",
        "",
        *_machine(),
        f"- Load average before: {load_before}; after: {_load()} "
        "(other work on the machine inflates wall times; CPU times much less).",
        "",
        *_tables(books, costs, starts),
        "",
    ]
    (out / "BENCHMARKS.md").write_text("\n".join(lines))
    print(f"wrote {out / 'BENCHMARKS.md'} and {out / 'bench'}/*.png")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and runs (minutes)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="default: docs")
    parser.add_argument("--sizes", type=_ints, help="book sizes, e.g. 250,1000 (default: all)")
    parser.add_argument("--cli-sizes", type=_ints, help="sizes to compare with vdirsyncer")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 5, quick 3)")
    args = parser.parse_args(argv)
    if args.sizes and min(args.sizes) < CARD:
        parser.error(f"book sizes start at {CARD} (the card's records)")
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    write_report(args.out, args.quick, args.sizes, args.cli_sizes, args.runs)


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    main()
